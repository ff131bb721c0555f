"""Starting the Slack side: check the token, load the themes, build the Bolt app around the StaffDesk."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bots.config import ConfigError, Settings
from bots.staff import StaffDesk
from channels.slack import LooplineSlackApp, SlackClient, build_bolt_app, web_client, whoami
from flows.themes import ThemeList, ThemesFileError, parse_themes
from store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Slack:
    app: LooplineSlackApp
    desk: StaffDesk
    client: SlackClient

    async def close(self) -> None:
        session = self.client.session
        if session is not None and not session.closed:
            await session.close()


def load_themes(path: str) -> ThemeList:
    file = Path(path)
    try:
        return parse_themes(file.read_text(encoding="utf-8"), str(file))
    except OSError as error:
        raise ConfigError(f"LOOPLINE_THEMES_FILE: cannot read {file}: {error.strerror}") from None
    except ThemesFileError as error:
        raise ConfigError(str(error)) from None


def optional_themes(settings: Settings) -> ThemeList | None:
    """The configured themes, or None when the themes file is absent (theme features are then off)."""
    if not Path(settings.themes_file).exists():
        return None
    return load_themes(settings.themes_file)


async def start_slack(settings: Settings, db: Database, clock: Callable[[], datetime]) -> Slack | None:
    """None when Slack is not configured. A wrong token or workspace stops start-up, loudly."""
    config = settings.slack
    if config is None:
        return None
    client = web_client(config.bot_token, base_url=config.api_base_url, timeout=config.timeout)
    identity = await whoami(client)
    if config.team_id and identity.team_id != config.team_id:
        raise ConfigError(f"SLACK_BOT_TOKEN belongs to workspace {identity.team_id}, not SLACK_TEAM_ID")
    desk = StaffDesk(
        db=db, client=client, themes=load_themes(settings.themes_file), wards=settings.wards, clock=clock
    )
    app = build_bolt_app(
        signing_secret=config.signing_secret, client=client, handlers=desk, identity=identity
    )
    log.info("Slack is ready", extra={"team": identity.team_id})
    return Slack(app, desk, client)
