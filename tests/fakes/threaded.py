"""``ThreadedServer``: a fake venue's aiohttp server on ``127.0.0.1:<free port>`` in a thread of its
own, started and stopped by the test's thread; ``_call`` runs a hook on the server's loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import ClassVar, Self, TypeVar

from aiohttp import web

T = TypeVar("T")


class ThreadedServer:
    """A subclass builds its app in ``_app()`` (on the server's loop) and may release what it holds
    in ``_before_stop()``."""

    NAME: ClassVar[str]  # the venue, as the thread and a failed start name it

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _app(self) -> web.Application:
        raise NotImplementedError

    def _before_stop(self) -> None:
        """Runs first in ``stop()`` (the loop still serves)."""

    def start(self) -> Self:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"fake-{self.NAME.lower()}", daemon=True)
        self._thread.start()
        if not started.wait(30):
            raise RuntimeError(f"fake {self.NAME} did not start")
        return self

    async def _serve(self) -> None:
        self._runner = web.AppRunner(await self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        self._before_stop()
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop and wait for it."""
        assert self._loop is not None, "start() the fake first"

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)
