"""``make demo`` (``python -m offgen.demo``) at a tiny size: its evaluation step included, and
(slow) its behaviour-cloning step through ``train_offline`` / ``evaluate_offline``."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("envpool")

TINY = ["--transitions", "600", "--num-envs", "2", "--batches", "2", "--eval-episodes", "3"]


def test_demo_evaluates_two_policies_on_seeded_train_and_test_levels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from offgen.demo import main

    args = [*TINY, "--bc-updates", "0"]
    main(args)
    out = capsys.readouterr().out
    assert "4. evaluation on the dataset's environment (coinrun, training levels 0-199)" in out
    rows = re.findall(
        r"^   (random|run-right) +train (\S+) ± \S+ \(normalised (\S+)\), "
        r"test (\S+) ± \S+ \(normalised (\S+)\)",
        out,
        flags=re.M,
    )
    assert [r[0] for r in rows] == ["random", "run-right"]
    for _name, train, train_norm, test, test_norm in rows:
        # coinrun's constants: normalised = (R - 5) / 5
        assert float(train_norm) == pytest.approx((float(train) - 5) / 5, abs=0.006)
        assert float(test_norm) == pytest.approx((float(test) - 5) / 5, abs=0.006)
    paired = re.search(
        r"paired difference run-right - random: train .*\((\d+) wins, (\d+) losses\)", out
    )
    assert paired is not None and int(paired[1]) + int(paired[2]) <= 3
    # a second run reuses the store and plays the same seeded levels: the same numbers
    main(args)
    again = capsys.readouterr().out
    assert "already complete, reused" in again
    assert re.findall(r"^   (?:random|run-right) .*(?= \[)", again, flags=re.M) == re.findall(
        r"^   (?:random|run-right) .*(?= \[)", out, flags=re.M
    )


@pytest.mark.slow
def test_demo_trains_bc_and_prints_its_normalised_returns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("torch")
    from offgen.demo import main

    args = [*TINY, "--bc-updates", "3"]
    main(args)
    out = capsys.readouterr().out
    assert "5. behaviour cloning on the dataset: 3 updates" in out
    row = re.search(
        r"^   offline-bc train (\S+) \(normalised (\S+)\), test (\S+) \(normalised (\S+)\)",
        out,
        flags=re.M,
    )
    assert row is not None, out
    train, train_norm, test, test_norm = map(float, row.groups())
    assert train_norm == pytest.approx((train - 5) / 5, abs=0.006)
    assert test_norm == pytest.approx((test - 5) / 5, abs=0.006)
    # a second run reuses the finished BC run and replays the same seeded levels
    main(args)
    assert row[0] in capsys.readouterr().out
