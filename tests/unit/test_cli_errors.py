"""The CLI's one-line summary of an engine error names the worker's cause."""

from __future__ import annotations

from pipelines.cli import engine_error_line


def test_worker_traceback_reduces_to_its_cause_line():
    msg = (
        "An exception was thrown from the Python worker. Please see the stack trace below.\n"
        "Traceback (most recent call last):\n"
        '  File "worker.py", line 3, in main\n'
        "    import pyarrow\n"
        "ModuleNotFoundError: No module named 'pyarrow'\n"
    )
    assert engine_error_line(RuntimeError(msg)) == "ModuleNotFoundError: No module named 'pyarrow'"


def test_plain_message_keeps_its_first_line():
    assert engine_error_line(RuntimeError("Job aborted\nmore detail")) == "Job aborted"
    assert engine_error_line(RuntimeError("")) == "RuntimeError"
