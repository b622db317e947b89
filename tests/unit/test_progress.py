"""Progress lines: the bar's text, throttling in logs, redrawing on a terminal."""

from __future__ import annotations

import io

from pipelines.progress import ProgressLine, bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_text():
    assert bar(0, 20) == "[....................]   0% 0/20"
    assert bar(7, 20) == "[#######.............]  35% 7/20"
    assert bar(1500, 1500, width=4) == "[####] 100% 1,500/1,500"
    assert bar(0, 0, width=2) == "[..]   0% 0/0"


def test_log_lines_are_throttled_and_deduplicated():
    out = io.StringIO()
    line = ProgressLine(interval=3600, stream=out)
    line.update("a")  # the first one always prints
    line.update("b")  # within the interval: dropped
    line.update("b", force=True)  # forced (e.g. 100 %): printed
    line.update("b", force=True)  # unchanged: never repeated
    line.close()
    assert out.getvalue() == "a\nb\n"


def test_first_line_prints_on_a_freshly_booted_machine(monkeypatch):
    """time.monotonic() is near 0 right after boot: the first line must still print, and the
    throttle must still hold after it (the clock is pinned, not read from this machine)."""
    from pipelines import progress

    clock = iter([0.0, 0.5, 0.5 + 3600])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    line = ProgressLine(interval=10, stream=out)
    line.update("first")  # at uptime 0 s
    line.update("second")  # 0.5 s later: throttled
    line.update("third")  # an hour later: printed
    assert out.getvalue() == "first\nthird\n"


def test_terminal_redraws_one_line_and_close_ends_it():
    out = _Terminal()
    line = ProgressLine(interval=0.0001, stream=out)
    line.update("first")
    line.update("second", force=True)
    line.close()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.startswith("\rfirst") and "\rsecond" in text


def test_zero_interval_turns_progress_off():
    out = io.StringIO()
    line = ProgressLine(interval=0, stream=out)
    line.update("x", force=True)
    line.close()
    assert out.getvalue() == ""


def test_watching_spark_imports_nothing(monkeypatch):
    """The poller runs beside a stage that may be importing pyspark right then: it must not
    import it itself (a concurrent import broke `from pyspark.sql import SparkSession`)."""
    import sys
    import time

    from pipelines.progress import watch_spark

    monkeypatch.delitem(sys.modules, "pyspark", raising=False)
    with watch_spark("[t]", interval=0.01):
        time.sleep(0.1)
    assert "pyspark" not in sys.modules
