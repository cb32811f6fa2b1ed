"""The browser side of the API: the trader's UI at `/ui`, `/docs` and `/redoc` from vendored assets
(no CDN: they work offline), and `/v1/me`, which tells the UI what its key may do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from meltica.api.auth import api_key, guard_of
from meltica.api.keys import ApiKey

UI = Path(__file__).parent / "ui"
ICON = "/ui/icon.svg"


def install(app: FastAPI) -> None:
    """Serve the UI and the API documentation from the package (create `app` with docs_url=None)."""

    @app.get("/ui", include_in_schema=False)
    async def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    app.mount("/ui", StaticFiles(directory=UI, html=True), name="ui")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/ui/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/ui/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url=ICON,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            redoc_js_url="/ui/vendor/redoc/redoc.standalone.js",
            redoc_favicon_url=ICON,
            with_google_fonts=False,
        )

    @app.get("/v1/me", tags=["keys"])
    def me(request: Request, key: Annotated[ApiKey, Depends(api_key)]) -> dict[str, Any]:
        """The calling key (any scope): its name, scopes and accounts (null: every account)."""
        guard_of(request).admit(key, "read")
        accounts = None if key.all_accounts else sorted(key.accounts or ())
        return {"name": key.name, "scopes": sorted(key.scopes), "accounts": accounts}
