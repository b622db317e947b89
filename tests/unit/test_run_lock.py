"""One writer per local run: a second writer is refused while another process holds the
run's flock, and the refusal leaves the holder's pid in `<run>/.lock` (it used to open the
file for writing, which emptied it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import RunLockedError
from pipelines.run_dir import run_lock

ROOT = Path(__file__).resolve().parents[2]
# Takes the lock, says so, and holds it until its stdin closes.
HOLDER = (
    "import sys\n"
    "from pipelines.run_dir import run_lock\n"
    "with run_lock(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)


def test_a_refused_second_writer_leaves_the_holders_pid_in_the_lock(tmp_path):
    lock = tmp_path / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        assert lock.read_text() == str(holder.pid)
        for _ in range(2):  # refused every time, and each refusal names the holder
            with (
                pytest.raises(RunLockedError, match=rf"another process \(pid {holder.pid}\)"),
                run_lock(tmp_path),
            ):
                pytest.fail("a second writer got the lock")
            assert lock.read_text() == str(holder.pid)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert holder.returncode == 0
    # The holder is gone: the next writer takes the lock and writes its own pid.
    with run_lock(tmp_path):
        assert lock.read_text() == str(os.getpid())
