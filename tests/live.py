"""What the tests with real processes share (a worker, gunicorn, a TCP relay): a free local
port, and waiting for something to come true with the process's log on failure."""

import socket
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, log: Path | None = None):
    """Poll `predicate` until it returns something true (returned), or fail after `timeout`
    seconds with the end of `log`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-4000:] if log is not None else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")
