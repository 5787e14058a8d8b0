"""Procgen environments through envpool: level splits, vectorised envs, replay checks."""

from offgen.envs.procgen import (
    DISTRIBUTION_MODES,
    SPLITS,
    EnvSpec,
    EnvSpecError,
    LevelRange,
    available_modes,
    check_available,
    envpool_id,
    import_envpool,
    make_env,
    resolve_split,
)

__all__ = [
    "DISTRIBUTION_MODES",
    "SPLITS",
    "EnvSpec",
    "EnvSpecError",
    "LevelRange",
    "available_modes",
    "check_available",
    "envpool_id",
    "import_envpool",
    "make_env",
    "resolve_split",
]
