"""An embedded stack with the control plane: engine, projector, venue manager, REST API, and a
configuration file that can be reloaded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from meltica.api.app import Services, create_app
from meltica.api.waiting import follow_engine
from meltica.config import load_settings
from meltica.control.reload import Reloader
from meltica.control.venues import VenueManager
from tests.api.conftest import Api
from tests.read_models import FreshReadModels

DATA = Path(__file__).parents[1] / "data"


class ControlStack(Api):
    """The API stack plus the venue manager and, with `config`, a reloadable configuration file."""

    def __init__(self, url: str, config: Path | None = None, replay_dirs: tuple[Path, ...] = ()) -> None:
        super().__init__(url)
        self.venues = VenueManager(self.log, self.codec, self.publisher, report_every=0.05)
        self.threads.append(threading.Thread(target=self.venues.run, args=(self.stop, 0.01), daemon=True))
        self.config = config
        self.reloader: Reloader | None = None
        if config is not None:
            self.reloader = Reloader(config, load_settings(config), self.log, self.codec, self.publisher)
        reload = None if self.reloader is None else self.reloader.apply
        services = Services(self.log, self.publisher, self.db, reload, replay_dirs=replay_dirs)
        self.app = create_app(services)
        follow_engine(self.engine, self.app.state.parts.waiter)  # `?wait=` from the engine's commits
        self.client = TestClient(self.app)

    def get(self, path: str, who: str = "ops") -> Any:
        response = self.client.get(path, headers=self.auth(who))
        assert response.status_code == 200, response.text
        return response.json()

    def venue(self, name: str) -> dict[str, Any]:
        return self.get(f"/v1/venues/{name}")

    def wait_venue(self, name: str, state: str, timeout: float = 60) -> dict[str, Any]:
        def reached() -> bool:
            found = [v for v in self.get("/v1/venues?include_removed=true")["items"] if v["venue"] == name]
            return bool(found) and found[0]["state"] == state

        self.until(reached, timeout)
        return next(v for v in self.get("/v1/venues?include_removed=true")["items"] if v["venue"] == name)


@pytest.fixture
def make_stack(tmp_path: Path, fresh_read_models: FreshReadModels) -> Iterator[Any]:
    stacks: list[ControlStack] = []

    def make(config: Path | None = None, url: str | None = None) -> ControlStack:
        if url is None:
            url = fresh_read_models.sqlite(tmp_path / f"rm{len(stacks)}.db")
        else:
            url = fresh_read_models.postgres(url)
        stack = ControlStack(url, config, (DATA, tmp_path))  # replay files the tests may name
        stack.start()
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()
        stack.venues.shutdown()
