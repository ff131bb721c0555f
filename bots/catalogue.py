"""The surveys the engine can offer, cached briefly so the hot path does not re-read definitions."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from flows.engine import Catalogue
from store import surveys


class CatalogueCache:
    """Reloads from the database at most every ``max_age`` seconds (survey loads from the CLI show
    up within that time), or at once after ``invalidate()``."""

    def __init__(self, max_age: float = 5.0) -> None:
        self._max_age = max_age
        self._catalogue: Catalogue | None = None
        self._loaded_at = 0.0

    async def get(self, session: AsyncSession) -> Catalogue:
        if self._catalogue is None or time.monotonic() - self._loaded_at > self._max_age:
            self._catalogue = Catalogue.of(await surveys.all_surveys(session))
            self._loaded_at = time.monotonic()
        return self._catalogue

    def invalidate(self) -> None:
        self._catalogue = None
