"""Offline RL baselines on offgen loaders: one file per algorithm, one shared training loop."""
