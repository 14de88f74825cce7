"""hrm-puzzles: small Hierarchical Reasoning Models that learn to solve puzzles.

This package holds three layers, each importing only those below it (``tests/test_imports.py``
checks): the models (``layers``, ``segment_model``, ``model``, ``act``, ``flops``,
``inference`` and ``kinds``, the table of model kinds, with the baselines of ``baselines/``),
training (``config``, ``train``, ``checkpoint``, ``presets``, ``progress``), and at the top the
``hrm`` command (``cli``), which alone may import ``eval``. Nothing here imports ``eval`` but
the command.
"""

__version__ = "0.1.0"
