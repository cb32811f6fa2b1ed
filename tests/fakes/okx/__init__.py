"""A fake OKX spot venue speaking OKX v5's public REST and public websocket protocols."""

from tests.fakes.okx.fake import FakeOkx

__all__ = ["FakeOkx"]
