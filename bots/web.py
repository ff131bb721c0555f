"""The aiohttp application: provider webhooks and a health check. Persist first, then answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from bots.background import Background
from bots.conversation import Acknowledgement, Conversations, Handled
from bots.public_page import published_cards, templates
from channels.base import DeliveryStatus, HttpRequest
from channels.errors import BadRequest
from channels.slack import LooplineSlackApp, dispatch
from channels.telegram import Telegram
from channels.twilio_sms import EMPTY_TWIML, TWIML_CONTENT_TYPE, TwilioSms
from store import outbox, residents
from store.db import Database

log = logging.getLogger(__name__)

OPTED_OUT_CODES = frozenset({"21610"})
INVALID_ADDRESS_CODES = frozenset({"21211", "21612", "21614", "30005", "30006"})


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Services:
    db: Database
    conversations: Conversations
    public_url: str
    sms: TwilioSms | None
    telegram: Telegram | None = None
    slack: LooplineSlackApp | None = None
    clock: Callable[[], datetime] = utc_now
    council: str = "the council"
    public_threshold: int = 10
    background: Background = field(default_factory=Background)

    def follow_up(self, handled: Handled) -> None:
        """After commit: tell the channel about a button press (in the background)."""
        ack = handled.acknowledgement
        if ack is not None and self.telegram is not None and ack.channel == self.telegram.name:
            self.background.spawn(_acknowledge(self.telegram, ack), name="telegram-acknowledge")


async def _acknowledge(telegram: Telegram, ack: Acknowledgement) -> None:
    await telegram.acknowledge(
        ack.press, chat_id=ack.chat, chosen=ack.chosen, notice=ack.notice, original_text=ack.original_text
    )


SERVICES = web.AppKey("services", Services)


def create_app(services: Services) -> web.Application:
    app = web.Application()
    app[SERVICES] = services
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/webhooks/twilio/sms", twilio_sms)
    app.router.add_post("/webhooks/twilio/status", twilio_status)
    app.router.add_post("/webhooks/telegram", telegram_update)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/you-said-we-did", you_said_we_did)
    app.on_cleanup.append(_finish_background)
    return app


async def _finish_background(app: web.Application) -> None:
    await app[SERVICES].background.finish()


async def as_provider_request(request: web.Request) -> HttpRequest:
    """The request as the provider sent it, with the URL it signed: our public URL, not the one we see."""
    public_url = request.app[SERVICES].public_url
    headers = {name.lower(): value for name, value in request.headers.items()}
    return HttpRequest(url=public_url + request.raw_path, headers=headers, body=await request.read())


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    async with services.db.sessions() as session:
        counts = await outbox.counts_by_status(session)
    return web.json_response({"ok": True, "outbox": counts})


def _twiml() -> web.Response:
    return web.Response(body=EMPTY_TWIML, content_type=TWIML_CONTENT_TYPE)


async def _verified_sms(request: web.Request) -> tuple[TwilioSms, HttpRequest]:
    sms = request.app[SERVICES].sms
    if sms is None:
        raise web.HTTPServiceUnavailable(
            text="SMS is not configured (set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)"
        )
    provider_request = await as_provider_request(request)
    if not sms.verify(provider_request):
        log.warning("rejected an unsigned or forged Twilio request", extra={"path": request.path})
        raise web.HTTPForbidden(text="invalid signature")
    return sms, provider_request


async def twilio_sms(request: web.Request) -> web.Response:
    """A resident's text: verify, then one transaction (dedupe, engine, replies to the outbox)."""
    services = request.app[SERVICES]
    sms, provider_request = await _verified_sms(request)
    try:
        message = sms.parse_inbound(provider_request)
    except BadRequest as error:
        raise web.HTTPBadRequest(text=str(error)) from None
    await services.conversations.handle(message, now=services.clock())
    return _twiml()


async def twilio_status(request: web.Request) -> web.Response:
    """A delivery report: move the message's status forward, never back; act on opt-out codes."""
    services = request.app[SERVICES]
    sms, provider_request = await _verified_sms(request)
    try:
        update = sms.parse_status(provider_request)
    except BadRequest as error:
        raise web.HTTPBadRequest(text=str(error)) from None
    if update.status is None or update.status is DeliveryStatus.QUEUED:
        return _twiml()
    now = services.clock()
    async with services.db.writing(), services.db.sessions() as session, session.begin():
        found = await outbox.apply_status(
            session,
            outbox_id=update.outbox_id,
            provider_id=update.provider_id,
            status=update.status.value,
            error_code=update.error_code,
            now=now,
        )
        if found is None:
            log.info("status for an unknown message", extra={"provider_id": update.provider_id})
        elif update.error_code in OPTED_OUT_CODES:
            await residents.mark_opted_out(session, resident_id=found.resident_id, at=now)
        elif update.error_code in INVALID_ADDRESS_CODES:
            await residents.mark_address_invalid(
                session, address_id=found.address_id, reason=update.error_code
            )
    return _twiml()


async def telegram_update(request: web.Request) -> web.Response:
    """A Telegram update: verify the secret token, then the same one transaction as SMS; then 200."""
    services = request.app[SERVICES]
    telegram = services.telegram
    if telegram is None:
        raise web.HTTPServiceUnavailable(text="Telegram is not configured (set TELEGRAM_BOT_TOKEN)")
    provider_request = await as_provider_request(request)
    if not telegram.verify(provider_request):
        log.warning("rejected a Telegram request without the right secret token")
        raise web.HTTPForbidden(text="invalid secret token")
    try:
        message = telegram.parse_update(provider_request.body)
    except BadRequest as error:
        raise web.HTTPBadRequest(text=str(error)) from None
    if message is not None:
        services.follow_up(await services.conversations.handle(message, now=services.clock()))
    return web.Response(status=200)


async def slack_events(request: web.Request) -> web.Response:
    """Slack's events, slash commands, shortcuts and modals: the signature is checked on the raw body
    before Bolt parses anything; reports are stored before Slack is answered."""
    services = request.app[SERVICES]
    if services.slack is None:
        raise web.HTTPServiceUnavailable(
            text="Slack is not configured (set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN)"
        )
    status, headers, body = await dispatch(services.slack, await as_provider_request(request))
    return web.Response(status=status, headers=headers, body=body)


async def you_said_we_did(request: web.Request) -> web.Response:
    """The published You Said, We Did cards: an accessible HTML page, or ``?format=json``."""
    services = request.app[SERVICES]
    found = await published_cards(services.db, threshold=services.public_threshold)
    if request.query.get("format") == "json":
        return web.json_response({"council": services.council, "cards": found})
    page = templates().get_template("you_said_we_did.html").render(council=services.council, cards=found)
    return web.Response(text=page, content_type="text/html")
