"""Resident memory of this process over time (Linux ``/proc``), for memory plots and benchmarks."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["MemoryTrace", "rss_bytes"]


def rss_bytes() -> int:
    """Current resident set size of this process in bytes (0 where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        return 0


class MemoryTrace:
    """Record the resident memory every ``interval`` seconds while the ``with`` block runs.

    Attributes
    ----------
    times, rss
        Seconds since entry and resident bytes at each poll.
    base, peak
        Resident bytes at entry and the largest value seen.

    Examples
    --------
    >>> with MemoryTrace() as trace:  # doctest: +SKIP
    ...     model.train(max_epochs=1)
    >>> (trace.peak - trace.base) / 2**20  # MB above the level at entry  # doctest: +SKIP
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = float(interval)
        self.times: list[float] = []
        self.rss: list[int] = []

    def __enter__(self) -> MemoryTrace:
        self.base = self.peak = rss_bytes()
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            value = rss_bytes()
            self.times.append(time.perf_counter() - self._t0)
            self.rss.append(value)
            self.peak = max(self.peak, value)
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
