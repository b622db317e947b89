"""Progress of long stages on stderr: one line that redraws itself on a terminal, and at most
one line per `interval` seconds (only when something changed) in a log file, Airflow or CI.

* `ProgressLine` draws whatever text it is given, throttled as above.
* `bar(done, total)` is the text bar both reporters use.
* `watch_spark(prefix, interval)` polls Spark's status tracker in a daemon thread while a stage
  runs and reports the active jobs' task counts; it never starts a SparkContext itself.

Set `run.progress_seconds = 0` to turn both off.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


def bar(done: int, total: int, width: int = 20) -> str:
    """'[#######.............]  35% 7/20' (a total of 0 shows as empty)."""
    frac = done / total if total else 0.0
    filled = min(width, int(frac * width))
    return f"[{'#' * filled}{'.' * (width - filled)}] {frac:4.0%} {done:,}/{total:,}"


class ProgressLine:
    def __init__(self, interval: float = 10.0, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        # A terminal redraws in place, so it can afford frequent updates.
        self.interval = min(interval, 0.5) if self.tty else interval
        self.enabled = interval > 0
        self._last_text = ""
        # None, not 0.0: time.monotonic() starts near 0 on a freshly booted machine, and the
        # first line must print whatever the uptime.
        self._last_at: float | None = None
        self._drawn = False
        self._lock = threading.Lock()

    def update(self, text: str, force: bool = False) -> None:
        if not self.enabled or text == self._last_text:
            return
        now = time.monotonic()
        if not force and self._last_at is not None and now - self._last_at < self.interval:
            return
        with self._lock:
            self._last_text, self._last_at = text, now
            if self.tty:
                cols = shutil.get_terminal_size((100, 20)).columns - 1
                self.stream.write("\r" + text[:cols].ljust(cols))
                self._drawn = True
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End the redrawn line so that the next message starts on its own line."""
        with self._lock:
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False


def spark_status(sc) -> str | None:  # sc: pyspark.SparkContext
    """'job 3 [####....] 50% 4/8 tasks, 2 running' for every active job; None when idle."""
    tracker = sc.statusTracker()
    parts = []
    for job_id in sorted(tracker.getActiveJobsIds()):
        job = tracker.getJobInfo(job_id)
        if job is None:
            continue
        total = done = running = 0
        for stage_id in job.stageIds:
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                total += info.numTasks
                done += info.numCompletedTasks
                running += info.numActiveTasks
        if total:
            parts.append(f"job {job_id} {bar(done, total)} tasks, {running} running")
    return "; ".join(parts) or None


def _active_context():  # -> pyspark.SparkContext | None
    """The running SparkContext, looked up without importing anything: an import from this
    thread while the stage's thread is importing pyspark breaks that import (a circular
    'partially initialized module' error)."""
    pyspark = sys.modules.get("pyspark")
    context = getattr(pyspark, "SparkContext", None)
    return getattr(context, "_active_spark_context", None)


_WATCHERS: list[str] = []  # prefixes of the active watchers, innermost last


@contextmanager
def watch_spark(prefix: str, interval: float = 10.0) -> Iterator[None]:
    """Report Spark progress as `{prefix} spark: …` while the body runs (see module doc)."""
    if interval <= 0:
        yield
        return
    line = ProgressLine(interval)
    stop = threading.Event()
    t0 = time.monotonic()
    _WATCHERS.append(prefix)

    def poll() -> None:
        # The first report waits one interval: short stages print nothing extra.
        while not stop.wait(min(line.interval, interval)):
            if _WATCHERS[-1] != prefix:  # a nested run (the fit pass) reports its own stages
                continue
            sc = _active_context()
            if sc is None or time.monotonic() - t0 < interval:
                continue
            try:
                status = spark_status(sc)
            except Exception:  # the context is stopping; progress is best effort
                continue
            if status:
                line.update(f"{prefix} spark: {status} ({time.monotonic() - t0:.0f}s)")

    thread = threading.Thread(target=poll, name="spark-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        line.close()
        _WATCHERS.remove(prefix)
