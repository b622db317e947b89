"""One writer per run on object storage: a lease object created with a conditional write.

`<run>/_lock.json` holds its owner (host, pid, a random token) and an expiry. It is created
with If-None-Match: * (a second writer's create fails while it exists), renewed by a
background thread with If-Match on its own ETag (so a lease someone else took over is never
overwritten), and deleted at the end. A lease found expired, or held by a process of this
host that no longer exists (a writer killed with SIGKILL), is taken over with If-Match on the
ETag read, so two writers racing for it cannot both win.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from contextlib import contextmanager

from pipelines import s3_objects
from pipelines.errors import RunLockedError
from pipelines.storage import Location

LEASE = "_lock.json"


def _owner_alive(owner: dict) -> bool:
    """False only when the owner is provably gone: a process of this host that has exited."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner.get("pid", 0)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


class Lease:
    def __init__(self, run_dir: Location, seconds: float) -> None:
        self.obj = run_dir / LEASE
        self.seconds = seconds
        self.token = uuid.uuid4().hex
        self.etag: str | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "token": self.token,
                "expires": time.time() + self.seconds,
            }
        ).encode()

    def acquire(self) -> None:
        for _ in range(5):
            self.etag = s3_objects.put_if_absent(self.obj, self._body())
            if self.etag is not None:
                break
            found = s3_objects.get(self.obj)
            if found is None:
                continue  # released between our create and our read: try again
            body, etag = found
            try:
                holder = json.loads(body)
            except ValueError:
                holder = {}
            expired = float(holder.get("expires", 0)) < time.time()
            if expired or not _owner_alive(holder):
                self.etag = s3_objects.put_if_match(self.obj, self._body(), etag)
                if self.etag is not None:
                    break
                continue
            until = time.strftime("%H:%M:%S UTC", time.gmtime(float(holder["expires"])))
            raise RunLockedError(
                f"run {self.obj.parent} is being written by another process "
                f"(pid {holder.get('pid')} on {holder.get('host')}; its lease runs to {until})",
                hint="wait for it to finish, or use another --run-id",
            )
        else:
            raise RunLockedError(f"could not take the lease {self.obj} (contended)")
        self._thread = threading.Thread(target=self._renew, name="walkrank-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                etag = s3_objects.put_if_match(self.obj, self._body(), self.etag or "")
            except Exception as exc:  # a network blip: the next renewal may still succeed
                print(f"[lease] renewing {self.obj} failed: {exc}", file=sys.stderr, flush=True)
                continue
            if etag is None:
                print(
                    f"[lease] {self.obj} was taken over by another writer: stopping",
                    file=sys.stderr,
                    flush=True,
                )
                self.lost.set()
                return
            self.etag = etag

    def check(self) -> None:
        """Raise when another writer took the lease over (this one must not commit more)."""
        if self.lost.is_set():
            raise RunLockedError(
                f"lost the lease {self.obj} to another writer (expired while this run was "
                "unreachable?): stopping before the next stage",
                hint="re-run once the other writer is done; committed tables are kept",
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost.is_set():
            return
        found = s3_objects.get(self.obj)
        if found is not None and json.loads(found[0]).get("token") == self.token:
            s3_objects.delete(self.obj)


@contextmanager
def lease(run_dir: Location, seconds: float):
    held = Lease(run_dir, seconds)
    held.acquire()
    try:
        yield held
    finally:
        held.release()
