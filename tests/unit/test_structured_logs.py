"""Process logs: MELTICA_LOG_FORMAT=json gives JSON lines naming the service and the current span's
trace and span ids; the CLI sets it up for every command."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from typer.testing import CliRunner

from meltica import structured_logs
from meltica.cli.app import app


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structured_logs.set_service("meltica")


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_a_line_logged_inside_a_span_carries_its_trace_and_span_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    structured_logs.configure("json", service="risk")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("process") as span:
        logging.getLogger("meltica.risk").info("denied %s", "ORD-1", extra={"reason": "limit"})
    context = span.get_span_context()
    [line] = _lines(capsys.readouterr().err)
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["service"] == "risk"
    assert line["level"] == "info"
    assert line["logger"] == "meltica.risk"
    assert line["message"] == "denied ORD-1"
    assert line["reason"] == "limit"
    assert str(line["timestamp"]).endswith("+00:00")


def test_outside_a_span_there_is_no_trace_id_and_exceptions_are_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    structured_logs.configure("json", service="orders")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    [line] = _lines(capsys.readouterr().err)
    assert "trace_id" not in line
    assert "ValueError: boom" in str(line["exception"])


def test_text_format_names_the_service(capsys: pytest.CaptureFixture[str]) -> None:
    structured_logs.configure("text", service="bars")
    logging.getLogger("meltica.bars").warning("late tick")
    err = capsys.readouterr().err
    assert " WARNING bars meltica.bars: late tick" in err
    assert not _lines(err)


def test_configuring_twice_keeps_one_handler() -> None:
    structured_logs.configure("json")
    structured_logs.configure("text")
    mine = [h for h in logging.getLogger().handlers if isinstance(h, structured_logs._StderrHandler)]
    assert len(mine) == 1


def test_the_cli_configures_json_logs_from_meltica_log_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MELTICA_LOG_FORMAT", "json")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0, result.output
    [handler] = [h for h in logging.getLogger().handlers if isinstance(h, structured_logs._StderrHandler)]
    assert isinstance(handler.formatter, structured_logs.JsonFormatter)
    assert logging.getLogger().level == logging.WARNING  # one-shot commands: warnings only
    record = logging.makeLogRecord({"msg": "hello", "levelname": "WARNING", "name": "t"})
    assert json.loads(handler.format(record))["service"] == "version"


def test_the_cli_refuses_an_unknown_log_format(monkeypatch: pytest.MonkeyPatch) -> None:
    from meltica.config import Settings

    monkeypatch.setenv("MELTICA_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()


def test_meltica_run_names_its_service_in_every_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MELTICA_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("MELTICA_CONFIG_PATH", raising=False)
    monkeypatch.setenv("MELTICA_LOG_FORMAT", "json")
    result = CliRunner().invoke(app, ["run", "risk"])
    assert result.exit_code != 0  # no broker configured: it stops at once
    assert "MELTICA_KAFKA_BOOTSTRAP" in result.output
    assert structured_logs._state["service"] == "risk"
    assert logging.getLogger().level == logging.INFO  # services log INFO
