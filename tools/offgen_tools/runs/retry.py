"""Retry with exponential backoff for rate-limited (HTTP 429) requests."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status code carried by an exception, if any.

    Looks at ``exc.response.status_code`` (requests), ``exc.status_code`` and ``exc.code``,
    then follows ``__cause__``/``__context__`` (WandB wraps requests errors in ``CommError``).

    Args:
        exc: The exception.

    Returns:
        The status code, or None.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        for candidate in (
            getattr(response, "status_code", None),
            getattr(current, "status_code", None),
            getattr(current, "code", None),
        ):
            if isinstance(candidate, int) and 100 <= candidate < 600:
                return candidate
        current = current.__cause__ or current.__context__
    return None


def is_rate_limited(exc: BaseException) -> bool:
    """Whether an exception is an HTTP 429 (too many requests)."""
    return http_status(exc) == 429


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for HTTP 429.

    Attributes:
        max_attempts: Attempts in total (first try included).
        base_delay: Delay before the first retry, in seconds.
        max_delay: Cap on one delay.
        jitter: Fraction of random jitter added to each delay.
    """

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        """The delay after the given failed attempt (1-based)."""
        base = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return float(base * (1.0 + self.jitter * random.random()))


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Any] = time.sleep,
    what: str = "request",
) -> T:
    """Call ``fn``, retrying with backoff while it fails with HTTP 429.

    Args:
        fn: The call.
        policy: Backoff parameters.
        sleep: Sleep function (injectable for tests).
        what: Description for log messages.

    Returns:
        What ``fn`` returns.

    Raises:
        Exception: The last error when it is not a 429 or attempts are exhausted.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            if not is_rate_limited(exc) or attempt >= policy.max_attempts:
                raise
            delay = policy.delay(attempt)
            log.info("%s rate limited (429), retry %d in %.2fs", what, attempt, delay)
            sleep(delay)
