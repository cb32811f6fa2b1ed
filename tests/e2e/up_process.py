"""`meltica up` as a child process on a free port, for tests that need the real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def meltica_up_process(
    data_dir: Path, port: int, **settings: str
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`meltica up --no-demo` on `port` with `settings` (MELTICA_* variables, the caller's own
    MELTICA_* dropped), until its REST API line; yields the process and what it printed so far. At
    the end it is stopped cleanly (SIGINT, exit 0), unless the test SIGKILLed it (then only that is
    checked)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")} | {
        "MELTICA_DATA_DIR": str(data_dir),
        "MELTICA_API_PORT": str(port),
        **settings,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "meltica", "up", "--no-demo", "--tick-ms", "200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    said = []
    for line in proc.stdout:
        said.append(line)
        if "REST API:" in line:
            break
    else:
        raise AssertionError(f"meltica up did not start ({proc.wait()}):\n{''.join(said)}")
    try:
        yield proc, said
    finally:
        if proc.poll() != -signal.SIGKILL:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, "".join(said) + out


@contextmanager
def meltica_up(data_dir: Path, port: int, **settings: str) -> Iterator[list[str]]:
    """`meltica_up_process`, yielding only what it printed while starting."""
    with meltica_up_process(data_dir, port, **settings) as (_, said):
        yield said
