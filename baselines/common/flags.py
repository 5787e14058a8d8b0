"""Command-line flags generated from a trainer's config dataclass (one source of truth).

Every field of the frozen config dataclass becomes ``--<field>`` with the field's default and the
``help`` in its metadata, spelled in snake case or kebab case (``--num_env_steps`` =
``--num-env-steps``, as every offgen command). Booleans accept the predecessor's spellings: ``--resume``,
``--resume=True``, ``--resume false``. Integers accept ``25e6`` (the predecessor wrote step budgets
that way).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar, get_type_hints

__all__ = ["build_parser", "config_from_args", "differing_fields"]

C = TypeVar("C")

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _parse_bool(text: str) -> bool:
    key = text.strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(value)


def build_parser(config_cls: type[Any], *, prog: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser with one ``--<field>`` flag per field of ``config_cls``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        kind = hints[field.name]
        help_text = field.metadata.get("help", "")
        default = field.default
        names = [f"--{field.name}"]
        if "_" in field.name:
            names.append(f"--{field.name.replace('_', '-')}")
        if kind is bool:
            parser.add_argument(
                *names,
                dest=field.name,
                type=_parse_bool,
                nargs="?",
                const=True,
                default=default,
                help=help_text,
            )
        elif kind is int:
            parser.add_argument(
                *names, dest=field.name, type=_parse_int, default=default, help=help_text
            )
        elif kind is float:
            parser.add_argument(
                *names, dest=field.name, type=float, default=default, help=help_text
            )
        else:
            parser.add_argument(*names, dest=field.name, type=str, default=default, help=help_text)
    return parser


def config_from_args(
    config_cls: type[C], argv: Sequence[str] | None, *, prog: str, description: str
) -> C:
    """Parse ``argv`` into a ``config_cls`` instance (its ``__post_init__`` validates values)."""
    parser = build_parser(config_cls, prog=prog, description=description)
    namespace = parser.parse_args(argv)
    return config_cls(**vars(namespace))


def differing_fields(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, ignore: Collection[str] = ()
) -> list[str]:
    """``name: saved -> current`` for every compared setting that differs (sorted by name)."""
    names = sorted((set(saved) | set(current)) - set(ignore))
    return [
        f"{name}: {saved.get(name, '<unset>')!r} -> {current.get(name, '<unset>')!r}"
        for name in names
        if saved.get(name, "<unset>") != current.get(name, "<unset>")
    ]
