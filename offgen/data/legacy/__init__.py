"""The predecessor's per-episode files: write them exactly, read them safely.

File name: ``<YYYYmmddTHHMMSS>_<index>_<T>_<level_seed>_<return:.2f>.<npz|npy>`` (the return may be
negative). Content: a dict with

* ``observations`` ``(T+1, 3, 64, 64)`` float32 holding 0-255, channel first; row ``T`` is the next
  level's first frame (Procgen auto-reset), not the true final frame;
* ``actions`` ``(T, 1)`` int64; ``rewards`` ``(T, 1)`` float32;
* ``dones`` ``(T,)`` float32, only the last is 1.

The collector wrote ``np.savez_compressed`` ``.npz`` files; the published archives hold ``.npy``
files that are a *pickled* 0-d object array wrapping the dict. Unpickling runs arbitrary code, so
:func:`read_legacy_episode` parses ``.npy`` files with a restricted unpickler that can only rebuild
plain numpy arrays, dtypes and dicts, and raises :class:`~offgen.errors.UnsafeFileError` for
anything else. ``.npz`` files are read with ``allow_pickle=False``.

What the files do not hold: the level seed and return live only in the file name, and there is no
terminated / truncated flag. offgen infers ``truncated`` when the length equals the game's time
limit (:attr:`offgen.registry.GameSpec.max_episode_steps`) and ``terminated`` otherwise; an agent
that happened to finish on exactly the last allowed step is labelled truncated.

One job per module: :mod:`~offgen.data.legacy.names` (file names, finding files),
:mod:`~offgen.data.legacy.npy` and :mod:`~offgen.data.legacy.npy_walk` (the pickled ``.npy``
files: restricted unpickler and zero-copy walker), :mod:`~offgen.data.legacy.npz` (the ``.npz``
files), :mod:`~offgen.data.legacy.frames` (frame decoding), :mod:`~offgen.data.legacy.read` (one
file to a checked episode) and :mod:`~offgen.data.legacy.write` (writing ``.npz`` files).
"""

from offgen.data.legacy.frames import COMPILED_DECODE, LegacyFrames
from offgen.data.legacy.names import LEGACY_KEYS, LegacyName, find_legacy_files
from offgen.data.legacy.read import legacy_arrays, open_legacy_episode, read_legacy_episode
from offgen.data.legacy.write import write_npz_episode

__all__ = [
    "COMPILED_DECODE",
    "LEGACY_KEYS",
    "LegacyFrames",
    "LegacyName",
    "find_legacy_files",
    "legacy_arrays",
    "open_legacy_episode",
    "read_legacy_episode",
    "write_npz_episode",
]
