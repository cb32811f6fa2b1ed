"""scripts/test-streams.sh, the suite as three concurrent pytest streams: each stream's exit code
counts (no test collected is a failure), every output is printed, and a last line sums them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def streams(
    tmp_path: Path, distributed: str, rest: str, faults: str = "test_pass.py"
) -> subprocess.CompletedProcess[str]:
    """The script with small test files for its streams (of the plugins only pytest-timeout, which
    the script uses: a quick start)."""
    files = {
        "test_pass.py": "def test_one():\n    pass\n\ndef test_two():\n    pass\n",
        "test_fail.py": "def test_wrong():\n    assert 1 == 2\n",
        "test_none.py": "VALUE = 1\n",
    }
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    env = {
        **os.environ,
        "MELTICA_TEST_DISTRIBUTED_ARGS": f"{tmp_path / distributed} -p no:cacheprovider -p pytest_timeout",
        "MELTICA_TEST_REST_ARGS": f"{tmp_path / rest} -p no:cacheprovider -p pytest_timeout",
        "MELTICA_TEST_FAULTS_ARGS": f"{tmp_path / faults} -p no:cacheprovider -p pytest_timeout",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "TMPDIR": str(tmp_path),
    }
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "test-streams.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_streams_passing_pass_with_every_output_and_their_times(tmp_path: Path) -> None:
    done = streams(tmp_path, "test_pass.py", "test_pass.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("2 passed") == 3, done.stdout  # each stream's own summary
    assert done.stdout.count("slowest 25 durations") == 3, done.stdout
    assert "stream distributed: exit 0, wall time" in done.stderr
    assert "stream faults: exit 0, wall time" in done.stderr
    assert "stream rest: exit 0, wall time" in done.stderr
    assert done.stdout.rstrip().splitlines()[-1] == "pytest: 6 passed, 0 failed, 0 skipped"
    assert not list(tmp_path.glob("meltica-test-streams.*")), "the logs were left behind"


def test_a_failing_stream_fails_the_script(tmp_path: Path) -> None:
    done = streams(tmp_path, "test_pass.py", "test_fail.py")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "test_fail.py::test_wrong" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1] == "pytest: 4 passed, 1 failed, 0 skipped"


def test_a_stream_that_collects_no_test_fails_the_script(tmp_path: Path) -> None:
    done = streams(tmp_path, "test_none.py", "test_pass.py")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "stream distributed collected no tests: that is a failure" in done.stderr


def test_a_failing_faults_stream_fails_the_script(tmp_path: Path) -> None:
    done = streams(tmp_path, "test_pass.py", "test_pass.py", faults="test_fail.py")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "test_fail.py::test_wrong" in done.stdout
    assert "stream faults: exit 1, wall time" in done.stderr


def test_the_three_streams_run_every_test_file_once(tmp_path: Path) -> None:
    """The streams' own arguments (a stand-in `python3` notes them) name every test file of the
    suite, and none twice: moving tests between streams cannot drop or double any."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> {calls}\necho "1 passed in 0.01s"\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_TEST_")}
    env |= {"PATH": f"{bin_dir}:{env['PATH']}", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "test-streams.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    streams: dict[str, set[Path]] = {}
    for call in calls.read_text().splitlines():
        args = call.split()
        [name] = [a.rsplit("/", 1)[1] for a in args if a.startswith("cache_dir=")]
        ignored = [ROOT / a.removeprefix("--ignore=") for a in args if a.startswith("--ignore=")]
        files: set[Path] = set()
        for arg in (a for a in args[2:] if not a.startswith("-") and "=" not in a):
            path = ROOT / arg
            files |= set(path.rglob("test_*.py")) if path.is_dir() else {path}
        streams[name] = {f for f in files if not any(f.is_relative_to(i) for i in ignored)}
    assert sorted(streams) == ["distributed", "faults", "rest"]
    every = set((ROOT / "tests").rglob("test_*.py"))
    assert sum(len(files) for files in streams.values()) == len(every), "a file in two streams"
    assert set().union(*streams.values()) == every
    assert ROOT / "tests" / "backtest" / "test_sma_cross.py" in streams["faults"]
