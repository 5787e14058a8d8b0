"""offgen research tooling: WandB metric export, sweeps by index, SLURM submission, results and plots.

This package is installed with offgen but is independent of it: ``offgen`` never imports
``offgen_tools`` and ``offgen_tools`` never imports ``offgen``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
