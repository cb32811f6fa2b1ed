"""The YAML configuration: clear errors naming key and line, environment above the file, and the
`meltica config` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meltica.cli.app import app
from meltica.config import load_settings
from meltica.config_file import ConfigFileError

EXAMPLE = Path(__file__).parents[2] / "examples" / "meltica.yaml"
runner = CliRunner()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "meltica.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        load_settings(path)
    return caught.value.problems


def test_the_example_configuration_is_valid() -> None:
    settings = load_settings(EXAMPLE)
    assert [v.name for v in settings.venues] == ["sim", "usdjpy-replay"]
    assert {s.kind for s in settings.strategies} == {"logging", "delay"}
    assert settings.bar_widths == ["1m"]


def test_wrong_type_names_the_key_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "api_host: 0.0.0.0\napi_port: eighty\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:2: api_port: ")
    assert "valid integer" in problem
    assert "'eighty'" in problem


def test_unknown_key_names_the_line_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "log_backend: sqlite\n\nlog_backnd: kafka\n")
    assert problems(path) == [f"{path}:3: log_backnd: unknown setting (did you mean 'log_backend'?)"]


def test_nested_errors_point_into_lists(tmp_path: Path) -> None:
    text = """risk:
  - scope: ACCOUNT
    scope_id: A
  - scope: ACCOUNT
    scope_id: B
    max_position: -5
venues:
  - name: sim
    adapter: synthetic
    parms: {}
"""
    found = problems(write(tmp_path, text))
    assert any(":6: risk[1].max_position: Input should be greater than 0 (got -5)" in p for p in found)
    assert any(":10: venues[0].parms: Extra inputs are not permitted" in p for p in found)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: no such configuration file"]
    [problem] = problems(write(tmp_path, "risk: [\n  {scope: GLOBAL\n"))
    assert problem.startswith(f"{tmp_path / 'meltica.yaml'}:3: not valid YAML")


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "api_port: 9000\nnamespace: file\n")
    monkeypatch.setenv("MELTICA_API_PORT", "9100")
    settings = load_settings(path)
    assert (settings.api_port, settings.namespace) == (9100, "file")
    monkeypatch.setenv("MELTICA_API_PORT", "ninety")
    [problem] = problems(path)
    assert problem.startswith("environment (MELTICA_*): api_port:")


def test_bad_bar_width_is_refused(tmp_path: Path) -> None:
    [problem] = problems(write(tmp_path, "bar_widths: [1m, 7x]\n"))
    assert ":1: bar_widths: " in problem
    assert "'7x'" in problem


def test_cli_check_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MELTICA_DATABASE_URL", "MELTICA_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # they would win over the file
    good = write(
        tmp_path, "database_url: postgresql+psycopg://meltica:s3cret@db:5432/meltica\napi_key: mk_abc\n"
    )
    result = runner.invoke(app, ["config", "check", "--config", str(good)])
    assert result.exit_code == 0
    assert "configuration OK" in result.output
    shown = runner.invoke(app, ["--config", str(good), "config", "show"])
    assert shown.exit_code == 0
    data = json.loads(shown.stdout)
    assert data["database_url"] == "postgresql+psycopg://meltica:***@db:5432/meltica"
    assert data["api_key"] == "***"
    assert "s3cret" not in shown.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("api_port: x\n")
    result = runner.invoke(app, ["--config", str(bad), "version"])
    assert result.exit_code == 2
    assert f"{bad}:1: api_port:" in result.output
