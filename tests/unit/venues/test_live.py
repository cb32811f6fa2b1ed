"""Which connections execute, the gateway's parameters, and where credentials may come from."""

from __future__ import annotations

from pathlib import Path

import pytest

from meltica.venues import live


def keys(tmp_path: Path, *names: str) -> dict[str, str]:
    out = {}
    for name in names:
        path = tmp_path / name
        path.write_text(f"value-of-{name}\n")
        out[f"{name}_file"] = str(path)
    return out


def test_a_connection_executes_only_with_an_account_and_an_executing_kind() -> None:
    assert live.execution_venue("binance", {"symbols": "BTCUSDT"}) is None
    assert live.execution_venue("binance", {"account": "ACC-1"}) == "BINANCE"
    assert live.execution_venue("binance", {"account": "ACC-1", "venue": "bn"}) == "BN"
    assert live.execution_venue("okx", {"account": "ACC-1"}) == "OKX"
    assert live.execution_venue("replay", {"account": "ACC-1"}) is None


def test_gateway_parameters_are_checked(tmp_path: Path) -> None:
    creds = keys(tmp_path, "api_key", "secret")
    live.check_gateway("binance", {"account": "ACC-1", **creds})
    with pytest.raises(ValueError, match="external_orders"):
        live.check_gateway("binance", {"account": "ACC-1", "external_orders": "adopt-all", **creds})
    with pytest.raises(ValueError, match="max_request_age_s"):
        live.check_gateway("binance", {"account": "ACC-1", "max_request_age_s": "-1", **creds})
    with pytest.raises(ValueError, match="needs account="):
        live.check_gateway("binance", {"external_orders": "cancel"})
    with pytest.raises(ValueError, match="does not execute"):
        live.check_gateway("replay", {"account": "ACC-1"})
    with pytest.raises(ValueError, match="secret_file"):
        live.check_gateway("binance", {"account": "ACC-1", "api_key_file": creds["api_key_file"]})
    with pytest.raises(ValueError, match="passphrase_file"):
        live.check_gateway("okx", {"account": "ACC-1", **creds})


def test_credentials_from_files_with_home_expanded_or_from_file_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "k").write_text("the-key\n")
    (tmp_path / "s").write_text("the-secret\n")
    made = live.make_execution("binance", {"account": "ACC-1", "api_key_file": "~/k", "secret_file": "~/s"})
    assert made.venue == "BINANCE"
    monkeypatch.setenv("MELTICA_BINANCE_API_KEY_FILE", str(tmp_path / "k"))
    monkeypatch.setenv("MELTICA_BINANCE_SECRET_FILE", str(tmp_path / "s"))
    live.check_gateway("binance", {"account": "ACC-1"})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        live.check_gateway("binance", {"account": "ACC-1", "secret_file": str(tmp_path / "empty")})


def test_over_the_api_credential_files_must_be_in_a_secret_directory(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    inside = keys(secrets, "api_key", "secret")
    params = {"symbols": "BTCUSDT", "account": "ACC-1", **inside}
    live.check("binance", params, secret_roots=[secrets])
    outside = {**params, "secret_file": "/etc/hostname"}
    with pytest.raises(live.SecretPathRefusedError, match="secret directories"):
        live.check("binance", outside, secret_roots=[secrets])
    sneaky = {**params, "secret_file": str(secrets / ".." / "elsewhere")}
    with pytest.raises(live.SecretPathRefusedError):  # refused before the file is looked at
        live.check("binance", sneaky, secret_roots=[secrets])
    live.check("binance", outside)  # the operator's configuration file may name any path
