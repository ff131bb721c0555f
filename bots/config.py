"""Settings, read once from the environment. No other module reads ``os.environ``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flows.quiet_hours import QuietHours
from flows.sending_rules import Purdah
from flows.state import Policy
from store.db import DEFAULT_URL


class Secret(str):
    """A string that keeps itself out of logs and tracebacks."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('**********')"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    account_sid: str
    auth_token: Secret = field(repr=False)
    from_number: str | None
    messaging_service_sid: str | None
    api_base_url: str | None
    segments_per_second: float
    timeout: float


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token: Secret = field(repr=False)
    webhook_secret: Secret = field(repr=False)
    api_base_url: str | None
    messages_per_second: float
    per_chat_seconds: float
    timeout: float


@dataclass(frozen=True, slots=True)
class SlackSettings:
    signing_secret: Secret = field(repr=False)
    bot_token: Secret = field(repr=False)
    app_token: Secret | None = field(repr=False)
    team_id: str | None
    api_base_url: str | None
    reports_channel: str | None
    timeout: float


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    sqlite_synchronous: str
    public_url: str
    host: str
    port: int
    timezone: ZoneInfo
    quiet_hours: QuietHours
    policy: Policy
    send_max_attempts: int
    retry_base_seconds: float
    twilio: TwilioSettings | None
    telegram: TelegramSettings | None
    slack: SlackSettings | None
    themes_file: str
    wards: tuple[str, ...]
    bank_holidays: frozenset[date]
    purdah: tuple[Purdah, ...]
    yswd_budget: int
    budget_window_days: int
    sms_price_per_segment: Decimal
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def number(key: str, default: float) -> float:
            raw = env.get(key, "").strip()
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise ConfigError(f"{key} must be a number, not {raw!r}") from None

        try:
            timezone = ZoneInfo(env.get("LOOPLINE_TIMEZONE", "Europe/London"))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"LOOPLINE_TIMEZONE is not a known time zone: {exc}") from None
        try:
            quiet = QuietHours.parse(env.get("LOOPLINE_QUIET_HOURS", "21:00-08:00"))
        except ValueError as exc:
            raise ConfigError(f"LOOPLINE_QUIET_HOURS: {exc}") from None
        policy = Policy(
            council=env.get("LOOPLINE_COUNCIL_NAME", "the council"),
            help_contact=env.get("LOOPLINE_HELP_CONTACT", ""),
            expiry=timedelta(hours=number("LOOPLINE_SURVEY_EXPIRY_HOURS", 72)),
            reminder_after=timedelta(hours=number("LOOPLINE_REMINDER_AFTER_HOURS", 48)),
        )
        if policy.reminder_after >= policy.expiry:
            raise ConfigError("LOOPLINE_REMINDER_AFTER_HOURS must be less than LOOPLINE_SURVEY_EXPIRY_HOURS")
        return cls(
            database_url=env.get("LOOPLINE_DATABASE_URL", DEFAULT_URL),
            sqlite_synchronous=env.get("LOOPLINE_SQLITE_SYNCHRONOUS", "NORMAL"),
            public_url=env.get("LOOPLINE_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/"),
            host=env.get("LOOPLINE_HOST", "127.0.0.1"),
            port=int(number("LOOPLINE_PORT", 8080)),
            timezone=timezone,
            quiet_hours=quiet,
            policy=policy,
            send_max_attempts=int(number("LOOPLINE_SEND_MAX_ATTEMPTS", 5)),
            retry_base_seconds=number("LOOPLINE_RETRY_BASE_SECONDS", 5),
            twilio=_twilio(env, number),
            telegram=_telegram(env, number),
            slack=_slack(env, number),
            themes_file=env.get("LOOPLINE_THEMES_FILE", "examples/themes.yaml"),
            wards=tuple(w.strip() for w in env.get("LOOPLINE_WARDS", "").split(",") if w.strip()),
            bank_holidays=_dates(env.get("LOOPLINE_BANK_HOLIDAYS", "")),
            purdah=_periods(env.get("LOOPLINE_PURDAH", "")),
            yswd_budget=int(number("LOOPLINE_YSWD_BUDGET", 4)),
            budget_window_days=int(number("LOOPLINE_BUDGET_WINDOW_DAYS", 30)),
            sms_price_per_segment=_money(env.get("LOOPLINE_SMS_PRICE_PER_SEGMENT", "0.0463")),
            log_level=env.get("LOOPLINE_LOG_LEVEL", "INFO").upper(),
        )


def _twilio(env: Mapping[str, str], number: Callable[[str, float], float]) -> TwilioSettings | None:
    sid = env.get("TWILIO_ACCOUNT_SID", "").strip()
    token = env.get("TWILIO_AUTH_TOKEN", "").strip()
    if not sid and not token:
        return None
    if not sid or not token:
        raise ConfigError("set both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or neither")
    sender = env.get("TWILIO_FROM_NUMBER", "").strip() or None
    service = env.get("TWILIO_MESSAGING_SERVICE_SID", "").strip() or None
    if (sender is None) == (service is None):
        raise ConfigError("set exactly one of TWILIO_FROM_NUMBER and TWILIO_MESSAGING_SERVICE_SID")
    return TwilioSettings(
        account_sid=sid,
        auth_token=Secret(token),
        from_number=sender,
        messaging_service_sid=service,
        api_base_url=env.get("TWILIO_API_BASE_URL", "").strip() or None,
        segments_per_second=number("TWILIO_SEGMENTS_PER_SECOND", 10),
        timeout=number("TWILIO_TIMEOUT_SECONDS", 10),
    )


_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


def _telegram(env: Mapping[str, str], number: Callable[[str, float], float]) -> TelegramSettings | None:
    token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        return None
    secret = env.get("TELEGRAM_WEBHOOK_SECRET", "").strip()
    if not _SECRET_TOKEN.match(secret):
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET must be 16-256 characters of A-Z, a-z, 0-9, _ and - "
            "(Telegram sends it back on every webhook call)"
        )
    return TelegramSettings(
        token=Secret(token),
        webhook_secret=Secret(secret),
        api_base_url=env.get("TELEGRAM_API_BASE_URL", "").strip() or None,
        messages_per_second=number("TELEGRAM_MESSAGES_PER_SECOND", 25),
        per_chat_seconds=number("TELEGRAM_PER_CHAT_SECONDS", 1),
        timeout=number("TELEGRAM_TIMEOUT_SECONDS", 10),
    )


def _slack(env: Mapping[str, str], number: Callable[[str, float], float]) -> SlackSettings | None:
    secret = env.get("SLACK_SIGNING_SECRET", "").strip()
    token = env.get("SLACK_BOT_TOKEN", "").strip()
    if not secret and not token:
        return None
    if not secret or not token:
        raise ConfigError("set both SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN, or neither")
    app_token = env.get("SLACK_APP_TOKEN", "").strip()
    return SlackSettings(
        signing_secret=Secret(secret),
        bot_token=Secret(token),
        app_token=Secret(app_token) if app_token else None,
        team_id=env.get("SLACK_TEAM_ID", "").strip() or None,
        api_base_url=env.get("SLACK_API_BASE_URL", "").strip() or None,
        reports_channel=env.get("SLACK_REPORTS_CHANNEL", "").strip() or None,
        timeout=number("SLACK_TIMEOUT_SECONDS", 10),
    )


def _dates(text: str) -> frozenset[date]:
    try:
        return frozenset(date.fromisoformat(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"LOOPLINE_BANK_HOLIDAYS must be dates like 2026-12-25,2026-12-28, not {text!r}"
        ) from None


def _periods(text: str) -> tuple[Purdah, ...]:
    """``2027-03-22..2027-05-06`` (comma-separated)."""
    periods = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            start, end = (date.fromisoformat(d.strip()) for d in part.split(".."))
            periods.append(Purdah(start, end))
        except ValueError:
            raise ConfigError(
                f"LOOPLINE_PURDAH must look like 2027-03-22..2027-05-06, not {part!r}"
            ) from None
    return tuple(periods)


def _money(text: str) -> Decimal:
    try:
        return Decimal(text)
    except ArithmeticError:
        raise ConfigError(f"LOOPLINE_SMS_PRICE_PER_SEGMENT must be a number, not {text!r}") from None
