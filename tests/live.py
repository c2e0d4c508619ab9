"""What the tests with real processes share (a worker, gunicorn, a TCP relay): a free local
port, waiting for something to come true with the process's log on failure, and stopping
the processes."""

import socket
import subprocess
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


def stop(processes) -> None:
    """Stop these processes: SIGTERM, then SIGKILL for any still there after 10 s."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
