"""One error base for offgen_tools, and optional dependencies that name their extra."""

from __future__ import annotations

import sys

import pytest
from offgen_tools import errors
from offgen_tools._optional import require
from offgen_tools.errors import MissingDependencyError, OffgenToolsError


@pytest.mark.parametrize(
    "cls",
    [
        errors.ConfigError,
        errors.FilterError,
        errors.GridError,
        errors.LayoutError,
        errors.ResultError,
        errors.SubmitError,
        errors.WandbFileError,
    ],
)
def test_input_errors_share_the_base_and_stay_value_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, OffgenToolsError)
    assert issubclass(cls, ValueError)


@pytest.mark.parametrize(
    ("module", "extra"),
    [("yaml", "wandb"), ("matplotlib.pyplot", "plots"), ("submitit", "slurm"), ("wandb", "wandb")],
)
def test_missing_optional_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import of this name now fails
    with pytest.raises(MissingDependencyError) as info:
        require(module, extra)
    assert isinstance(info.value, OffgenToolsError)
    assert isinstance(info.value, ImportError)
    assert f"pip install 'offgen[{extra}]'" in str(info.value)
    assert module.partition(".")[0] in str(info.value)


def test_present_dependency_is_returned() -> None:
    assert require("json", "wandb") is sys.modules["json"]
