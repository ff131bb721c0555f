"""What every fake provider has in common: an aiohttp app on 127.0.0.1 and a random port, used as an
async context manager, whose hanging handlers are released the moment it stops."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from aiohttp import web


class FakeServer:
    name = "fake"
    path_prefix = ""  # appended to base_url, e.g. "/api/" for Slack

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._stopping = asyncio.Event()

    def add_routes(self, app: web.Application) -> None:
        """The provider's routes; every fake answers unknown paths the way its provider does."""
        raise NotImplementedError

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._stopping = asyncio.Event()
        app = web.Application()
        self.add_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self._runner = runner
        self._base_url = f"http://{host}:{port}{self.path_prefix}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping.set()  # release hanging handlers and long polls so shutdown is immediate
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """Where the fake listens: give it to the channel's ``api_base_url``."""
        if self._base_url is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._base_url
