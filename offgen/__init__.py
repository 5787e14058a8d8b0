"""offgen: datasets, hub and tooling for offline reinforcement learning on Procgen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from offgen._lazy import lazy_attributes
from offgen._version import __version__

# offgen.load is kept light (no numpy / zarr at import) so `import offgen` stays fast. Importing the
# function here also makes `offgen.load` the function rather than the submodule of the same name.
from offgen.load import load

if TYPE_CHECKING:
    from offgen.data import OffgenDataset, mix
    from offgen.hub import download_dataset, pull_store, push_store
    from offgen.registry import DATASETS, GAMES

__all__ = [
    "DATASETS",
    "GAMES",
    "OffgenDataset",
    "__version__",
    "download_dataset",
    "load",
    "mix",
    "pull_store",
    "push_store",
]

# The other public names, imported on first use so that `import offgen` loads no numpy / zarr.
_HOME = {
    "DATASETS": "offgen.registry",
    "GAMES": "offgen.registry",
    "OffgenDataset": "offgen.data",
    "mix": "offgen.data",
    "download_dataset": "offgen.hub",
    "pull_store": "offgen.hub",
    "push_store": "offgen.hub",
}


__getattr__, __dir__ = lazy_attributes("offgen", _HOME, __all__, globals())
