"""A replay venue added over the API reads only files in the replay directories (`..` and links
cannot escape them), and a bad file's error names its line, never what the file holds."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from meltica.config import Settings
from meltica.marketdata import adapters
from meltica.topics import VENUE_COMMANDS
from tests.control.conftest import DATA, ControlStack

SECRET = "root:$6$SECRETHASH:19000:0:99999:7:::"


def written(stack: ControlStack) -> int:
    return sum(stack.log.end_offset(VENUE_COMMANDS, p) for p in range(stack.log.partitions(VENUE_COMMANDS)))


def replay(stack: ControlStack, name: str, path: str) -> Any:
    body = {"name": name, "adapter": "replay", "params": {"path": path, "symbol": "USDJPY"}, "start": True}
    return stack.client.post("/v1/venues", json=body, headers=stack.auth("ops"))


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file no replay directory holds."""
    path = tmp_path_factory.mktemp("elsewhere") / "shadow"
    path.write_text(f"header\n{SECRET}\n")
    return path


def test_a_file_outside_the_replay_directories_is_refused(
    make_stack: Any, tmp_path: Path, outside: Path
) -> None:
    stack = make_stack()  # replay directories: tests/data and tmp_path
    (tmp_path / "link").symlink_to(outside)
    before = written(stack)
    for path in (
        str(outside),
        str(tmp_path / ".." / outside.parent.name / outside.name),  # `..` out of a replay directory
        str(tmp_path / "link"),  # a link inside pointing out
        "/etc/passwd",
    ):
        r = replay(stack, "leak", path)
        assert r.status_code == 422, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:meltica:problem:path-not-allowed"
        assert "outside the replay directories" in r.json()["detail"]
        assert "SECRETHASH" not in r.text
    assert replay(stack, "fx", str(DATA / "usdjpy-ticks.csv")).status_code == 202
    stack.wait_venue("fx", "STOPPED")
    after_add = written(stack)
    moved = stack.client.patch(
        "/v1/venues/fx", json={"params": {"path": str(outside)}}, headers=stack.auth("ops")
    )
    assert moved.status_code == 422, moved.text
    assert moved.json()["type"] == "urn:meltica:problem:path-not-allowed"
    assert after_add > before
    assert written(stack) == after_add  # nothing refused went into the log


def test_a_bad_file_fails_naming_its_line_not_its_content(
    make_stack: Any, tmp_path: Path, outside: Path
) -> None:
    stack = make_stack()
    inside = tmp_path / "shadow.csv"
    shutil.copyfile(outside, inside)
    assert replay(stack, "fx", str(inside)).status_code == 202
    reason = stack.wait_venue("fx", "FAILED")["reason"]
    assert reason == "ValueError: shadow.csv:2: not a valid truefx row"
    inside.write_bytes(b"timestamp,bid,ask\n\xff\xfeSECRETHASH\n")  # not text at all
    assert stack.client.post("/v1/venues/fx/start", headers=stack.auth("ops")).status_code == 202
    stack.until(lambda: "UnicodeDecodeError" in stack.venue("fx")["reason"])
    assert (
        stack.venue("fx")["reason"]
        == "ValueError: shadow.csv: not a readable truefx file (UnicodeDecodeError)"
    )


def test_the_replay_directories_default_to_the_data_folder_and_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MELTICA_REPLAY_DIRS", raising=False)
    roots = Settings(data_dir=tmp_path / "data").replay_roots()
    assert roots == ((tmp_path / "data" / "replay").resolve(), tmp_path.resolve())
    (tmp_path / "tests").mkdir()
    assert adapters.outside(Path("tests/ticks.csv"), roots) is None  # relative to where it started
    assert adapters.outside(Path("../x.csv"), roots) is not None
    monkeypatch.setenv("MELTICA_REPLAY_DIRS", '["/srv/ticks"]')
    assert Settings(data_dir=tmp_path).replay_roots() == (Path("/srv/ticks").resolve(),)


def test_an_operator_file_may_name_any_path(outside: Path) -> None:
    adapters.check("replay", {"path": str(outside), "symbol": "USDJPY"})  # no roots: the operator's own
    with pytest.raises(adapters.PathRefusedError):
        adapters.check("replay", {"path": str(outside), "symbol": "USDJPY"}, (DATA,))
