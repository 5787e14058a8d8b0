"""offgen.data: the episode schema, the offgen store, legacy files and samplers."""

from offgen.data.convert import convert_legacy
from offgen.data.dataset import OffgenDataset
from offgen.data.info import StoreInfo
from offgen.data.legacy import LegacyName, read_legacy_episode, write_npz_episode
from offgen.data.mixing import mix
from offgen.data.sampling import SamplerOptions, StreamOptions, TransitionBatch, WindowBatch
from offgen.data.schema import (
    FRAME_SHAPE_CHW,
    FRAME_SHAPE_HWC,
    NUM_ACTIONS,
    Episode,
    Layout,
    make_episode,
    to_layout,
)
from offgen.data.store import OffgenStore
from offgen.data.table import EpisodeTable
from offgen.data.writer import StoreWriter

__all__ = [
    "FRAME_SHAPE_CHW",
    "FRAME_SHAPE_HWC",
    "NUM_ACTIONS",
    "Episode",
    "EpisodeTable",
    "Layout",
    "LegacyName",
    "OffgenDataset",
    "OffgenStore",
    "SamplerOptions",
    "StoreInfo",
    "StoreWriter",
    "StreamOptions",
    "TransitionBatch",
    "WindowBatch",
    "convert_legacy",
    "make_episode",
    "mix",
    "read_legacy_episode",
    "to_layout",
    "write_npz_episode",
]
