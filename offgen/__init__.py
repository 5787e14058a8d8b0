"""offgen: datasets, hub and tooling for offline reinforcement learning on Procgen."""

__version__ = "0.1.0"
