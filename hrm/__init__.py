"""hrm-puzzles: small Hierarchical Reasoning Models that learn to solve puzzles."""

__version__ = "0.1.0"
