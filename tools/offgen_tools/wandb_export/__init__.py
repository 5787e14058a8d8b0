"""WandB metric export: download presets (folder layouts) and the YAML-driven NumPy/CSV exporter."""

from offgen_tools.errors import LayoutError
from offgen_tools.wandb_export.layouts import BUILTIN_LAYOUTS, Layout, load_layouts
from offgen_tools.wandb_export.presets import DownloadOptions, DownloadSummary, download

__all__ = [
    "BUILTIN_LAYOUTS",
    "DownloadOptions",
    "DownloadSummary",
    "Layout",
    "LayoutError",
    "download",
    "load_layouts",
]
