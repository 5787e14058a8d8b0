"""The package version, in a module of its own so that lower modules need not import ``offgen``."""

__version__ = "0.1.0"
