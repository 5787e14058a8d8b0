"""``info.json`` as typed values: :class:`StoreInfo` and the records it is made of.

The file is parsed once, against its schema, when a store is opened (:meth:`StoreInfo.from_bytes`);
every consumer reads typed attributes (``info.observation.final_frame_is_true``,
``info.codec.shard_frames``) instead of looking keys up. Writers build a :class:`StoreInfo` and
write :meth:`StoreInfo.to_bytes`, which produces the same JSON (keys, values, layout) as earlier
offgen versions, so stores written before and after read alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from offgen._io import atomic_write_bytes
from offgen.data._fields import Fields, corrupt, frozen_json, load_json
from offgen.data.format import CHUNK_STEPS, FORMAT_NAME, FORMAT_VERSION, INFO, ZSTD_LEVEL
from offgen.data.schema import FRAME_SHAPE_HWC, NUM_ACTIONS
from offgen.errors import ChecksumError, FormatVersionError
from offgen.registry import GAMES

__all__ = [
    "Codec",
    "Counts",
    "EnvOptions",
    "FinalFrame",
    "MergedRecipe",
    "MixtureShare",
    "ObservationSpec",
    "RatioRecipe",
    "RecipeCandidate",
    "Status",
    "StoreInfo",
    "check_info_seal",
    "read_info",
    "write_info",
]

Status = Literal["writing", "complete"]
FinalFrame = Literal["true", "next_level_first_frame"]

_RESTORE = (
    "Restore the store from its source (re-download it, or rerun `offgen convert` / "
    "`offgen collect`)."
)
_FIX_INFO = (
    "info.json is damaged; restore the store from its source (re-download it, or rerun "
    "`offgen convert` / `offgen collect`)"
)


@dataclass(frozen=True)
class ObservationSpec:
    """What the frames are: ``(64, 64, 3)`` uint8 HWC, and what row ``T`` of an episode holds.

    Attributes:
        final_frame: ``"true"``: row ``T`` is the episode's true final frame (offgen collection);
            ``"next_level_first_frame"``: it is the next level's first frame (the predecessor's
            files, Procgen auto-reset).
    """

    final_frame: FinalFrame = "true"

    @property
    def final_frame_is_true(self) -> bool:
        """Whether row ``T`` of each episode is its true final frame."""
        return self.final_frame == "true"

    @classmethod
    def parse(cls, f: Fields) -> ObservationSpec:
        """Read the ``observation`` object."""
        f.only(("shape", "dtype", "layout", "final_frame"))
        if f.array("shape") != list(FRAME_SHAPE_HWC):
            corrupt(f.source, f"observation.shape is {f.raw['shape']}, expected [64, 64, 3]", f.fix)
        f.text("dtype", choices=("uint8",))
        f.text("layout", choices=("HWC",))
        if "final_frame" not in f.raw:  # early stores left it out: they were all collected
            return cls("true")
        final = f.text("final_frame", choices=("true", "next_level_first_frame"))
        return cls("true" if final == "true" else "next_level_first_frame")

    def to_json(self) -> dict[str, Any]:
        """The JSON object."""
        return {
            "shape": list(FRAME_SHAPE_HWC),
            "dtype": "uint8",
            "layout": "HWC",
            "final_frame": self.final_frame,
        }


@dataclass(frozen=True)
class Codec:
    """How the arrays are chunked and compressed (zstd with per-chunk checksums)."""

    chunk_frames: int
    shard_frames: int
    level: int = ZSTD_LEVEL
    checksum: bool = True
    chunk_steps: int = CHUNK_STEPS

    @classmethod
    def parse(cls, f: Fields) -> Codec:
        """Read the ``codec`` object; shard and chunk sizes must be positive and nest."""
        f.only(("name", "level", "checksum", "chunk_frames", "shard_frames", "chunk_steps"))
        f.text("name", choices=("zstd",))
        codec = cls(
            chunk_frames=f.integer("chunk_frames", minimum=1),
            shard_frames=f.integer("shard_frames", minimum=1),
            level=f.integer("level"),
            checksum=f.flag("checksum"),
            chunk_steps=f.integer("chunk_steps", minimum=1),
        )
        if codec.shard_frames % codec.chunk_frames:
            corrupt(
                f.source,
                f"codec.shard_frames {codec.shard_frames} is not a multiple of "
                f"codec.chunk_frames {codec.chunk_frames}",
                f.fix,
            )
        return codec

    def to_json(self) -> dict[str, Any]:
        """The JSON object."""
        return {
            "name": "zstd",
            "level": self.level,
            "checksum": self.checksum,
            "chunk_frames": self.chunk_frames,
            "shard_frames": self.shard_frames,
            "chunk_steps": self.chunk_steps,
        }


@dataclass(frozen=True)
class Counts:
    """Totals recorded when the store is finished (zeros while it is being written).

    Attributes:
        mean_return: Mean episode return; ``None`` before the store is finished or when it holds
            no episode.
    """

    episodes: int = 0
    transitions: int = 0
    frames: int = 0
    mean_return: float | None = None

    @classmethod
    def parse(cls, f: Fields) -> Counts:
        """Read the ``counts`` object."""
        f.only(("episodes", "transitions", "frames", "mean_return"))
        return cls(
            episodes=f.integer("episodes", minimum=0),
            transitions=f.integer("transitions", minimum=0),
            frames=f.integer("frames", minimum=0),
            mean_return=f.opt_number("mean_return"),
        )

    def to_json(self, *, finished: bool) -> dict[str, Any]:
        """The JSON object; ``mean_return`` is written once known or the store is finished
        (a store being written never recorded it)."""
        out: dict[str, Any] = {
            "episodes": self.episodes,
            "transitions": self.transitions,
            "frames": self.frames,
        }
        if finished or self.mean_return is not None:
            out["mean_return"] = self.mean_return
        return out


_ENV_TYPES: dict[str, tuple[type, ...]] = {
    "game": (str,),
    "distribution_mode": (str,),
    "start_level": (int,),
    "num_levels": (int,),
    "split": (str, type(None)),
}


@dataclass(frozen=True)
class EnvOptions:
    """The Procgen options the episodes were played with, as recorded (``info.json`` ``env``).

    Which keys are present depends on the writer (collection records a whole
    :class:`~offgen.envs.EnvSpec`, conversion the published data's level range), so the options
    stay a checked mapping with typed accessors for the known keys.
    """

    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, f: Fields) -> EnvOptions:
        """Read the ``env`` object; known keys must have their types, other values be scalars."""
        for key, value in f.raw.items():
            ok = _ENV_TYPES.get(key, (str, int, float, bool, type(None)))
            if (isinstance(value, bool) and bool not in ok) or not isinstance(value, ok):
                corrupt(f.source, f"env.{key} has the wrong type ({value!r})", f.fix)
            if isinstance(value, int) and key in ("start_level", "num_levels") and value < 0:
                corrupt(f.source, f"env.{key} is {value}, must be >= 0", f.fix)
        return cls(frozen_json(f.raw))

    @classmethod
    def from_json(cls, value: object, source: str) -> EnvOptions:
        """Check and convert an ``env`` object (e.g. :meth:`offgen.envs.EnvSpec.to_dict`)."""
        return cls.parse(Fields(value, source, "env"))

    @property
    def distribution_mode(self) -> str:
        """Procgen distribution mode (``"easy"`` when not recorded, as in the published data)."""
        return str(self.options.get("distribution_mode", "easy"))

    @property
    def num_levels(self) -> int | None:
        """Number of levels of the range (0: unbounded), if recorded."""
        value = self.options.get("num_levels")
        return None if value is None else int(value)

    @property
    def start_level(self) -> int | None:
        """First level seed of the range, if recorded."""
        value = self.options.get("start_level")
        return None if value is None else int(value)

    def to_json(self) -> dict[str, Any]:
        """The JSON object, as recorded."""
        return frozen_json(self.options)


@dataclass(frozen=True)
class RecipeCandidate:
    """One checkpoint a ratio collection considered, with its measured return."""

    path: str
    kind: str
    step: int | None
    name_return: float | None
    measured_return: float
    measured_length: float

    @classmethod
    def parse(cls, f: Fields) -> RecipeCandidate:
        """Read one ``recipe.candidates`` entry."""
        return cls(
            path=f.text("path"),
            kind=f.text("kind"),
            step=f.opt_integer("step"),
            name_return=f.opt_number("name_return"),
            measured_return=f.number("measured_return"),
            measured_length=f.number("measured_length"),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object."""
        return asdict(self)


@dataclass(frozen=True)
class MixtureShare:
    """One checkpoint of the collection mixture and the environments that played it."""

    path: str
    num_envs: int
    weight_envs: float
    measured_return: float

    @classmethod
    def parse(cls, f: Fields) -> MixtureShare:
        """Read one ``recipe.mixture`` entry."""
        return cls(
            path=f.text("path"),
            num_envs=f.integer("num_envs", minimum=0),
            weight_envs=f.number("weight_envs"),
            measured_return=f.number("measured_return"),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object."""
        return asdict(self)


@dataclass(frozen=True)
class RatioRecipe:
    """How a ratio-mode collection chose its checkpoints (see ``docs/collection.md``).

    ``achieved_return``, ``achieved_ratio`` and ``within_tolerance`` are ``None`` until the
    collection finished and compared the dataset's mean return with the target.
    """

    mode: str
    ratio: float
    final_checkpoint: str
    final_return: float
    target_return: float
    tolerance_ratio: float
    predicted_return: float
    measurement: Mapping[str, Any] = field(default_factory=dict)
    candidates: tuple[RecipeCandidate, ...] = ()
    mixture: tuple[MixtureShare, ...] = ()
    achieved_return: float | None = None
    achieved_ratio: float | None = None
    within_tolerance: bool | None = None

    @classmethod
    def parse(cls, f: Fields) -> RatioRecipe:
        """Read a ``recipe`` object."""
        return cls(
            mode=f.text("mode"),
            ratio=f.number("ratio"),
            final_checkpoint=f.text("final_checkpoint"),
            final_return=f.number("final_return"),
            target_return=f.number("target_return"),
            tolerance_ratio=f.number("tolerance_ratio"),
            predicted_return=f.number("predicted_return"),
            measurement=frozen_json(f.obj("measurement").raw),
            candidates=tuple(RecipeCandidate.parse(c) for c in f.items("candidates")),
            mixture=tuple(MixtureShare.parse(m) for m in f.items("mixture")),
            achieved_return=f.opt_number("achieved_return"),
            achieved_ratio=f.opt_number("achieved_ratio"),
            within_tolerance=f.opt_flag("within_tolerance"),
        )

    @classmethod
    def from_json(cls, value: object, source: str = "recipe") -> RatioRecipe:
        """Check and convert a recipe's JSON object (as :mod:`offgen.collect.ratio` builds it)."""
        return cls.parse(Fields(value, source, "recipe"))

    def to_json(self) -> dict[str, Any]:
        """The JSON object."""
        out: dict[str, Any] = {
            "mode": self.mode,
            "ratio": self.ratio,
            "final_checkpoint": self.final_checkpoint,
            "final_return": self.final_return,
            "target_return": self.target_return,
            "tolerance_ratio": self.tolerance_ratio,
            "measurement": frozen_json(self.measurement),
            "candidates": [c.to_json() for c in self.candidates],
            "mixture": [m.to_json() for m in self.mixture],
            "predicted_return": self.predicted_return,
        }
        if self.within_tolerance is not None:
            out["achieved_return"] = self.achieved_return
            out["achieved_ratio"] = self.achieved_ratio
            out["within_tolerance"] = self.within_tolerance
        return out


@dataclass(frozen=True)
class MergedRecipe:
    """The recipes of merged stores that did not agree (``offgen merge``), one per input."""

    parts: tuple[RatioRecipe | None, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON object."""
        return {"merged": [None if p is None else p.to_json() for p in self.parts]}


def _recipe(f: Fields) -> RatioRecipe | MergedRecipe | None:
    value = f.raw.get("recipe")
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {"merged"}:
        parts = f.obj("recipe").array("merged")
        return MergedRecipe(
            tuple(
                None if p is None else RatioRecipe.parse(Fields(p, f.source, "recipe.merged"))
                for p in parts
            )
        )
    return RatioRecipe.parse(f.obj("recipe"))


def _status(text: str) -> Status:
    return "complete" if text == "complete" else "writing"


_SEAL = "info_sha256"

_INFO_KEYS = (
    "format",
    "format_version",
    "status",
    "game",
    "dataset",
    "env",
    "observation",
    "action",
    "reward",
    "codec",
    "counts",
    "provenance",
    "recipe",
    "created",
    "updated",
    "offgen_version",
    "manifest_sha256",
    _SEAL,
)


@dataclass(frozen=True)
class StoreInfo:
    """The content of a store's ``info.json``, checked and typed.

    Attributes:
        game: Canonical Procgen game name.
        status: ``"writing"`` (being written, or its writer was killed) or ``"complete"``.
        observation: Frame format and what row ``T`` of an episode holds.
        codec: Chunking and compression of the arrays.
        env: Procgen options the episodes were played with.
        counts: Totals (recorded when the store is finished).
        dataset: Dataset name (``"expert_1M"``), if any.
        provenance: Free-form provenance (source files, collection settings, merge inputs).
        recipe: The ratio-mode recipe, for datasets collected by return ratio.
        created: Creation time (ISO 8601, UTC).
        updated: Last change (ISO 8601, UTC).
        offgen_version: The offgen version that last wrote the store.
        format_version: The store format version.
        manifest_sha256: sha256 of ``manifest.json`` (finished stores written by offgen since
            the manifest was sealed; ``None`` before).
    """

    game: str
    status: Status
    observation: ObservationSpec
    codec: Codec
    env: EnvOptions = field(default_factory=EnvOptions)
    counts: Counts = field(default_factory=Counts)
    dataset: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    recipe: RatioRecipe | MergedRecipe | None = None
    created: str | None = None
    updated: str | None = None
    offgen_version: str | None = None
    format_version: int = FORMAT_VERSION
    manifest_sha256: str | None = None

    @property
    def complete(self) -> bool:
        """Whether the store is finished."""
        return self.status == "complete"

    @property
    def final_frame_is_true(self) -> bool:
        """Whether row ``T`` of each episode is its true final frame (False for legacy data)."""
        return self.observation.final_frame_is_true

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> StoreInfo:
        """Parse and check the bytes of an ``info.json`` (``source`` names it in errors).

        Raises:
            CorruptStoreError: If the file is not valid JSON or does not match the schema.
            FormatVersionError: If it is not an offgen store or its version is newer than
                supported.
        """
        return cls.from_json(load_json(data, source, _FIX_INFO), source)

    @classmethod
    def from_json(cls, value: object, source: str) -> StoreInfo:
        """Check and convert a parsed ``info.json`` object (see :meth:`from_bytes`)."""
        f = Fields(value, source, fix=_FIX_INFO)
        if f.raw.get("format") != FORMAT_NAME:
            raise FormatVersionError(
                f"{source}: not an offgen store (format={f.raw.get('format')!r}, "
                f"expected {FORMAT_NAME!r})"
            )
        version = f.raw.get("format_version")
        if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
            raise FormatVersionError(
                f"{source}: store format version {version!r} is not supported by this offgen "
                f"(reads version {FORMAT_VERSION}). Upgrade offgen: pip install -U offgen"
            )
        f.only(_INFO_KEYS)
        action, reward = f.obj("action"), f.obj("reward", required=False)
        action.only(("n", "dtype"))
        if action.integer("n") != NUM_ACTIONS or action.text("dtype") != "uint8":
            corrupt(source, f"action is {action.raw}, expected 15 uint8 actions", _FIX_INFO)
        reward.only(("dtype",))
        if reward.raw and reward.text("dtype") != "float32":
            corrupt(source, f"reward is {reward.raw}, expected float32", _FIX_INFO)
        return cls(
            game=f.text("game", choices=GAMES),
            status=_status(f.text("status", choices=("writing", "complete"))),
            observation=ObservationSpec.parse(f.obj("observation")),
            codec=Codec.parse(f.obj("codec")),
            env=EnvOptions.parse(f.obj("env", required=False)),
            counts=Counts.parse(f.obj("counts")) if "counts" in f.raw else Counts(),
            dataset=f.opt_text("dataset"),
            provenance=frozen_json(f.obj("provenance", required=False).raw),
            recipe=_recipe(f),
            created=f.opt_text("created"),
            updated=f.opt_text("updated"),
            offgen_version=f.opt_text("offgen_version"),
            format_version=version,
            manifest_sha256=_digest(f, "manifest_sha256"),
        )

    def to_json(self) -> dict[str, Any]:
        """The ``info.json`` object without its seal (see :meth:`to_bytes`)."""
        out = {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "status": self.status,
            "game": self.game,
            "dataset": self.dataset,
            "env": self.env.to_json(),
            "observation": self.observation.to_json(),
            "action": {"n": NUM_ACTIONS, "dtype": "uint8"},
            "reward": {"dtype": "float32"},
            "codec": self.codec.to_json(),
            "counts": self.counts.to_json(finished=self.complete),
            "provenance": frozen_json(self.provenance),
            "recipe": None if self.recipe is None else self.recipe.to_json(),
            "created": self.created,
            "updated": self.updated,
            "offgen_version": self.offgen_version,
        }
        if self.manifest_sha256 is not None:
            out["manifest_sha256"] = self.manifest_sha256
        return out

    def to_bytes(self) -> bytes:
        """The file's bytes (indented, sorted keys, trailing newline), sealed: ``info_sha256``
        is the sha256 of the rest of the content (see :func:`check_info_seal`)."""
        content = self.to_json()
        content[_SEAL] = _seal(content)
        return (json.dumps(content, indent=2, sort_keys=True) + "\n").encode()


def read_info(root: Path) -> StoreInfo:
    """The checked ``info.json`` of the local store at ``root``."""
    return StoreInfo.from_bytes((root / INFO).read_bytes(), str(root / INFO))


def write_info(root: Path, info: StoreInfo) -> None:
    """Atomically (re)write the ``info.json`` of the local store at ``root``."""
    atomic_write_bytes(root / INFO, info.to_bytes())


def _digest(f: Fields, key: str) -> str | None:
    value = f.opt_text(key)
    if value is not None and (len(value) != 64 or value.strip("0123456789abcdef")):
        corrupt(f.source, f"{key} is not a sha256 hex digest", f.fix)
    return value


def _seal(content: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``info.json`` without its seal (whitespace and key order
    do not matter; every key and value does)."""
    body = {k: v for k, v in content.items() if k != _SEAL}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def check_info_seal(data: bytes, source: str) -> bool:
    """Check ``info.json`` against its own checksum (``info_sha256``).

    A store written before offgen sealed ``info.json`` has neither ``info_sha256`` nor
    ``manifest_sha256``: its content can only be checked against the schema.

    Args:
        data: The file's bytes (already accepted by :meth:`StoreInfo.from_bytes`).
        source: The file, for messages.

    Returns:
        ``True`` if the file is sealed and intact, ``False`` if it predates sealing.

    Raises:
        ChecksumError: If the content does not match its seal, or a finished store's seal or
            manifest checksum is missing while the other is present.
    """
    content = load_json(data, source, _FIX_INFO)
    seal = content.get(_SEAL)
    if seal is None:
        if "manifest_sha256" in content:
            raise ChecksumError(
                f"{source}: records manifest_sha256 but not its own info_sha256; the file was "
                f"edited or damaged. {_RESTORE}"
            )
        return False
    if seal != _seal(content):
        raise ChecksumError(
            f"{source}: content does not match its checksum (info_sha256); the file was edited "
            f"or damaged. {_FIX_INFO[0].upper()}{_FIX_INFO[1:]}."
        )
    if content.get("status") == "complete" and content.get("manifest_sha256") is None:
        raise ChecksumError(
            f"{source}: a finished, sealed store must record manifest_sha256; the file was "
            f"edited or damaged. {_RESTORE}"
        )
    return True
