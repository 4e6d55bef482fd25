"""Progress lines for long stages, so `tail -f` on a rule's log shows where a job is.

    p = Progress(log, "scored", total=len(frames), unit="frames", prefix=clip_uid)
    for ...:
        ...
        p.update()          # or p.update(5), or p.set(done)
    p.done()                # the final "scored 861/861 frames (100%, 12.3/s, 70 s)" line

A line is logged at most every `every_s` seconds (default 10; the environment variable
VQ3D_PROGRESS_SECONDS overrides it, 0 logs every update), plus the final one from `done()`:
    "clip-a: scored 300/861 frames (35%, 12.3/s, ~46 s left)"
Thread-safe: workers of a pool may call update() directly. Stdlib only."""

from __future__ import annotations

import logging
import os
import threading
import time

ENV_SECONDS = "VQ3D_PROGRESS_SECONDS"
DEFAULT_SECONDS = 10.0


def interval(default: float = DEFAULT_SECONDS) -> float:
    """Seconds between progress lines: $VQ3D_PROGRESS_SECONDS, else `default`."""
    try:
        return max(0.0, float(os.environ[ENV_SECONDS]))
    except (KeyError, ValueError):
        return default


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Rate-limited "<what> <done>/<total> <unit>" lines on `logger` at INFO."""

    def __init__(self, logger: logging.Logger, what: str, total: int | None = None, *,
                 unit: str = "", prefix: str = "", every_s: float | None = None,
                 level: int = logging.INFO):
        self.logger, self.what, self.total, self.unit = logger, what, total, unit
        self.prefix = f"{prefix}: " if prefix else ""
        self.every_s = interval() if every_s is None else every_s
        self.level = level
        self.done_count = 0
        self._start = time.monotonic()
        self._last = self._start
        self._lock = threading.Lock()
        self._finished = False
        self._logged: int | None = None

    def message(self, extra: str = "") -> str:
        elapsed = time.monotonic() - self._start
        n, total = self.done_count, self.total
        count = f"{n}/{total}" if total else f"{n}"
        text = f"{self.prefix}{self.what} {count}{' ' + self.unit if self.unit else ''}"
        parts = []
        if total:
            parts.append(f"{100 * n / total:.0f}%")
        if elapsed > 0 and n:
            rate = n / elapsed
            parts.append(f"{rate:.1f}/s" if rate >= 0.1 else f"{elapsed / n:.0f} s each")
            if total and n < total:
                parts.append(f"~{_duration((total - n) / rate)} left")
            elif total:
                parts.append(_duration(elapsed))
        if extra:
            parts.append(extra)
        return text + (f" ({', '.join(parts)})" if parts else "")

    def _record(self, done: int | None, add: int, extra: str) -> None:
        with self._lock:
            self.done_count = self.done_count + add if done is None else done
            now = time.monotonic()
            if self._finished or now - self._last < self.every_s:
                return
            self._last = now
            self._logged = self.done_count
            msg = self.message(extra)
        self.logger.log(self.level, "%s", msg)

    def set(self, done: int, extra: str = "") -> None:
        """Record that `done` units are finished; log if the interval has passed."""
        self._record(done, 0, extra)

    def update(self, n: int = 1, extra: str = "") -> None:
        """`n` more units are finished; log if the interval has passed."""
        self._record(None, n, extra)

    def done(self, extra: str = "") -> None:
        """Log the final line (once, and not if the last line already said the same count)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if self._logged == self.done_count and not extra:
                return
            msg = self.message(extra)
        self.logger.log(self.level, "%s", msg)
