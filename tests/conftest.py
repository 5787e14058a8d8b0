"""Fixtures shared by every offgen test.

Every test runs with ``OFFGEN_HOME`` (and HF / WandB homes) pointed at a temporary directory, so no
test reads or writes the real cache. Test data (episodes, stores, predecessor files, collections,
checkpoints) comes from the factory fixtures of ``tests/fixtures/factories.py``, registered here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["fixtures.factories", "fixtures.s3_server"]


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("offgen_home")
    monkeypatch.setenv("OFFGEN_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("OFFGEN_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield home


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--learning",
        action="store_true",
        help="also run the proofs that a trainer learns (minutes of training each)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Learning proofs train for minutes; `make test` and CI stay fast, `pytest --learning` runs them.
    if config.getoption("--learning"):
        return
    skip = pytest.mark.skip(reason="a learning proof (minutes of training): run with --learning")
    for item in items:
        if "learning" in item.keywords:
            item.add_marker(skip)
