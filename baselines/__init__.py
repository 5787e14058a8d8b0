"""Training baselines on Procgen built on offgen: one readable file per algorithm.

``baselines.ppo`` trains the online PPO behaviour policy (``python -m baselines.ppo`` or
``offgen-ppo``); ``baselines.common`` holds only what every trainer shares (devices and threads,
checkpoints, logging, progress, evaluation, flags). ``offgen`` never imports this package.
"""
