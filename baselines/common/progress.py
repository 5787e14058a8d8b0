"""A progress bar over updates that shows environment steps/s and the recent mean return."""

from __future__ import annotations

import math
import time
from types import TracebackType

from tqdm.auto import tqdm

__all__ = ["Progress"]


class Progress:
    """``tqdm`` over updates, postfix ``steps/s`` (since this process started) and mean return.

    Args:
        total_updates: Updates of the whole run.
        done_updates: Updates already done (a resumed run starts there).
        steps_per_update: Environment steps per update.
        enabled: Show the bar (``False`` in tests and non-interactive logs).
    """

    def __init__(
        self, total_updates: int, done_updates: int, steps_per_update: int, *, enabled: bool = True
    ) -> None:
        self._bar = tqdm(
            total=total_updates, initial=done_updates, unit="update", disable=not enabled
        )
        self._steps_per_update = steps_per_update
        self._start = time.perf_counter()
        self._updates = 0

    def advance(self, mean_return: float) -> float:
        """One update done; returns the steps/s of this process so far."""
        self._updates += 1
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        rate = self._updates * self._steps_per_update / elapsed
        shown = "n/a" if math.isnan(mean_return) else f"{mean_return:.2f}"
        self._bar.set_postfix_str(f"steps/s={rate:.0f} return={shown}", refresh=False)
        self._bar.update(1)
        return rate

    def close(self) -> None:
        """Close the bar."""
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
