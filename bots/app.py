"""Building the running parts from settings: database, channels, conversations, sender."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bots.catalogue import CatalogueCache
from bots.closing import Closing, Rules
from bots.config import Settings
from bots.conversation import ButtonDecoder, Conversations
from bots.sender import Sender, SendingChannel, utc_now
from bots.slack_desk import Slack, optional_themes, start_slack
from bots.web import Services
from channels.telegram import Telegram, decode_button, encode_button
from channels.twilio_sms import TwilioSms
from flows.segments import segments
from store.db import Database, connect


@dataclass(slots=True)
class Loopline:
    settings: Settings
    db: Database
    conversations: Conversations
    sender: Sender
    sms: TwilioSms | None
    telegram: Telegram | None
    clock: Callable[[], datetime]
    closing: Closing
    slack: Slack | None = None

    async def start(self) -> None:
        """Check the providers' credentials before serving: a wrong token stops start-up, loudly."""
        if self.telegram is not None:
            await self.telegram.start()  # getMe
        self.slack = await start_slack(self.settings, self.db, self.clock)  # auth.test

    def services(self) -> Services:
        return Services(
            db=self.db,
            conversations=self.conversations,
            public_url=self.settings.public_url,
            sms=self.sms,
            telegram=self.telegram,
            slack=self.slack.app if self.slack else None,
            clock=self.clock,
            council=self.settings.policy.council,
        )

    async def close(self) -> None:
        if self.sms is not None:
            await self.sms.close()
        if self.telegram is not None:
            await self.telegram.close()
        if self.slack is not None:
            await self.slack.close()
        await self.db.dispose()


def build(
    settings: Settings,
    *,
    extra_channels: Mapping[str, SendingChannel] | None = None,
    button_channels: Mapping[str, ButtonDecoder] | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Loopline:
    """Wire everything (call inside the event loop). ``extra_channels`` adds e.g. the simulator, and
    ``button_channels`` says which of those show buttons; ``clock`` lets tests choose the time."""
    db = connect(settings.database_url, synchronous=settings.sqlite_synchronous)
    sms = _sms(settings)
    telegram = telegram_channel(settings)
    channels: dict[str, SendingChannel] = dict(extra_channels or {})
    rates: dict[str, float] = {}
    decoders: dict[str, ButtonDecoder] = dict(button_channels or {})
    if sms is not None and settings.twilio is not None:
        channels[sms.name] = sms
        rates[sms.name] = settings.twilio.segments_per_second
    if telegram is not None and settings.telegram is not None:
        channels[telegram.name] = telegram
        rates[telegram.name] = settings.telegram.messages_per_second
        decoders[telegram.name] = decode_button
    sender = Sender(
        db,
        channels,
        rates=rates,
        max_attempts=settings.send_max_attempts,
        retry_base_seconds=settings.retry_base_seconds,
        clock=clock,
        costs={"sms": segments},  # Twilio counts segments; Telegram counts messages
        button_data={name: encode_button for name in decoders},
    )
    conversations = Conversations(
        db=db,
        catalogue=CatalogueCache(),
        policy=settings.policy,
        timezone=settings.timezone,
        on_queued=sender.wake,
        buttons_on=frozenset(decoders),
        button_decoders=decoders,
    )
    rules = Rules(
        timezone=settings.timezone,
        quiet_hours=settings.quiet_hours,
        bank_holidays=settings.bank_holidays,
        purdah=settings.purdah,
        budget=settings.yswd_budget,
        budget_window=timedelta(days=settings.budget_window_days),
        price_per_segment=settings.sms_price_per_segment,
    )
    closing = Closing(
        db=db, rules=rules, themes=optional_themes(settings), clock=clock, on_queued=sender.wake
    )
    return Loopline(settings, db, conversations, sender, sms, telegram, clock, closing)


def _sms(settings: Settings) -> TwilioSms | None:
    twilio = settings.twilio
    if twilio is None:
        return None
    return TwilioSms(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        status_callback_url=f"{settings.public_url}/webhooks/twilio/status",
        from_number=twilio.from_number,
        messaging_service_sid=twilio.messaging_service_sid,
        api_base_url=twilio.api_base_url,
        timeout=twilio.timeout,
    )


def telegram_channel(settings: Settings) -> Telegram | None:
    telegram = settings.telegram
    if telegram is None:
        return None
    return Telegram(
        token=telegram.token,
        webhook_secret=telegram.webhook_secret,
        api_base_url=telegram.api_base_url,
        timeout=telegram.timeout,
        per_chat_interval=telegram.per_chat_seconds,
    )
