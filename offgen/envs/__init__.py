"""Procgen environments through envpool: level splits, vectorised envs, replay checks."""

from offgen.envs.procgen import (
    DISTRIBUTION_MODES,
    SPLITS,
    DistributionMode,
    EnvSpec,
    EnvSpecError,
    LevelRange,
    available_modes,
    check_available,
    envpool_id,
    import_envpool,
    make_env,
    resolve_distribution_mode,
    resolve_split,
)

__all__ = [
    "DISTRIBUTION_MODES",
    "SPLITS",
    "DistributionMode",
    "EnvSpec",
    "EnvSpecError",
    "LevelRange",
    "available_modes",
    "check_available",
    "envpool_id",
    "import_envpool",
    "make_env",
    "resolve_distribution_mode",
    "resolve_split",
]
