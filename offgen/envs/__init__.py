"""Procgen environments through envpool: level splits, vectorised envs, replay checks."""

from offgen.envs.procgen import (
    DISTRIBUTION_MODES,
    SPLITS,
    EnvSpec,
    LevelRange,
    envpool_id,
    import_envpool,
    make_env,
    resolve_split,
)

__all__ = [
    "DISTRIBUTION_MODES",
    "SPLITS",
    "EnvSpec",
    "LevelRange",
    "envpool_id",
    "import_envpool",
    "make_env",
    "resolve_split",
]
