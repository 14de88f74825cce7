"""Models HRM must beat, trained by the same trainer on the same data: the fixed-depth
transformer (one pass, or HRM's segment loop) and chain of thought.

A model layer: it builds on ``hrm.layers`` and ``hrm.segment_model`` and must not import HRM
itself (``hrm.model``), training (``hrm.train``, ``hrm.config``) or ``eval``.
"""
