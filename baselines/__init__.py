"""Models HRM must beat, trained by the same trainer on the same data."""
