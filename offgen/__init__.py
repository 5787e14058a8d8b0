"""offgen: datasets, hub and tooling for offline reinforcement learning on Procgen."""

__version__ = "0.1.0"

# offgen.load is kept light (no numpy / zarr at import) so `import offgen` stays fast. Importing the
# function here also makes `offgen.load` the function rather than the submodule of the same name.
from offgen.load import load

__all__ = ["__version__", "load"]
