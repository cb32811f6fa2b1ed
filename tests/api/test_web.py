"""`meltica.api.web` without a browser: /ui, /docs and /redoc load only assets of the package, and
/v1/me tells the UI what its key may do (the browser flows are tests/e2e/test_ui.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from meltica.projections import migrations
from tests.api.conftest import Api

OFF_MACHINE = re.compile(r"""(?:src|href)=["']?(?:https?:)?//""")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('web')) / 'rm.db'}"
    migrations.upgrade(url)
    api = Api(url)  # not started: these routes need no engine
    yield api
    api.db.dispose()


def assets(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"'#]+)["']""", html)


@pytest.mark.parametrize("path", ["/ui/", "/docs", "/redoc"])
def test_a_page_loads_only_assets_the_api_serves(app: Api, path: str) -> None:
    page = app.client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert not OFF_MACHINE.search(page.text)
    found = assets(page.text)
    assert found, "no assets: the check would prove nothing"
    for asset in found:
        target = asset if asset.startswith("/") else f"/ui/{asset}"
        assert app.client.get(target).status_code == 200, target


def test_ui_without_a_slash_redirects_and_the_vendored_licenses_ship(app: Api) -> None:
    answer = app.client.get("/ui", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (307, "/ui/")
    for license_ in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"):
        assert app.client.get(f"/ui/vendor/{license_}").status_code == 200
    assert "cdn." not in app.client.get("/ui/vendor/redoc/redoc.standalone.js").text


@pytest.mark.parametrize(
    ("who", "scopes"), [("trader", ["read", "trade"]), ("viewer", ["read"]), ("ops", ["admin"])]
)
def test_me_names_the_keys_scopes_and_accounts(app: Api, who: str, scopes: list[str]) -> None:
    answer = app.client.get("/v1/me", headers=app.auth(who))
    assert answer.json() == {"name": who, "scopes": scopes, "accounts": None}


def test_me_needs_a_key(app: Api) -> None:
    answer = app.client.get("/v1/me")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
