"""`meltica up` rebuilds its state by stepping the log's inputs through its processors again, so it
refuses a data directory whose log processors set up otherwise wrote (the demo strategy or not):
their decisions would differ from what the log records. With the same settings it starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.test_up import PORT, environment
from tests.e2e.up_process import meltica_up


def test_up_refuses_a_log_that_other_processors_wrote(tmp_path: Path) -> None:
    with meltica_up(tmp_path, PORT):  # --no-demo
        pass
    refused = subprocess.run(
        [sys.executable, "-m", "meltica", "up", "--tick-ms", "200"],  # with the demo strategy
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = refused.stdout + refused.stderr
    assert refused.returncode == 2, said
    assert "written by processors set up otherwise" in said
    assert "DemoStrategy:demo" in said
    assert "Traceback" not in said
    with meltica_up(tmp_path, PORT) as started:  # as it was written: it starts
        assert any("REST API:" in line for line in started)
