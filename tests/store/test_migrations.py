"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command

from store import migrate

VERSIONS = Path(migrate.MIGRATIONS) / "versions"


def test_migrations_reach_head_and_match_the_models(database_url: str) -> None:
    command.check(migrate.alembic_config(database_url))  # raises if autogenerate would still change anything


def test_migrations_go_down_and_up_again_from_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(url)
    command.downgrade(migrate.alembic_config(url), "base")
    migrate.upgrade(url)
    command.check(migrate.alembic_config(url))


def test_migration_files_are_numbered_in_order() -> None:
    names = sorted(p.name for p in VERSIONS.glob("*.py"))
    numbers = [int(re.match(r"(\d{4})_", name).group(1)) for name in names]  # type: ignore[union-attr]
    assert numbers == list(range(1, len(names) + 1))


def test_upgrade_is_safe_to_run_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    migrate.upgrade(url)
    migrate.upgrade(url)
    command.check(migrate.alembic_config(url))
