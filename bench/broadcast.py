"""W3, W4 and W6 for You Said, We Did: planning a sending, draining it at the provider's rate, and the
scheduler that starts it (performance.md §7 W3, W4, W6 and §4.2).

Run from the repository root::

    .venv/bin/python bench/broadcast.py            # default run: 100k participants, about 4 minutes
    .venv/bin/python bench/broadcast.py --quick    # smoke run: 10k participants, about 50 s
    .venv/bin/python bench/broadcast.py --big      # W3 with 1M participants too (several minutes more)

Loopline's own code runs in child processes pinned to core 0 (uvloop); the fake Twilio API runs in its own
process and this process (set-up, the webhook load, the analysis) on core 1. In order:

* **W3 enqueue.** A bilingual card for ``examples/parks.yaml`` is scheduled (``Closing.schedule``, timed)
  for N participants (residents, addresses, responses and rating answers written set-based), then a child
  process that is Loopline (``bots.app.build``) runs ``Closing.send_due()`` once: one outbox row per
  recipient (``store.cards.plan``, set-based INSERT … SELECT). Timed, with its peak RSS growth (the
  kernel's high-water mark, reset just before planning through ``/proc/self/clear_refs``, and a sampling
  thread as a cross-check), the longest event-loop stall and how long other writers waited for
  ``db.writing()``. The same is done for a second card aimed at low ratings (an audience filter). The
  ceilings, in another child on a copy of the same database: ``sqlite3.executemany`` of N outbox rows into
  Loopline's own outbox table (same indexes, foreign keys on), into a minimal outbox-like table (the shape
  of performance.md §4.2's 552k rows/s), and a raw set-based INSERT … SELECT.
* **W4 send rate.** The real server (``bots.app.build`` + ``create_app`` + ``Sender.run`` + the scheduler,
  as ``loopline serve`` wires them) drains the planned sending against ``tests/fakes/twilio_api.py``'s
  ``FakeTwilio`` in a separate process, with ``TWILIO_SEGMENTS_PER_SECOND`` = L for L = 10 and 100. The
  fake answers after ``--latency-ms`` (150), logs every message with its arrival time and its segments as
  Twilio counts them, keeps the provider's queue (L segments a second) to see how far ahead Loopline gets,
  and answers 429 (code 20429) above 100 concurrent requests. Meanwhile residents who are not participants
  text ``PARKS`` (Twilio-signed webhooks, open loop): reply latency is from the webhook to the reply
  reaching the fake. Then the send path's ceiling: L = 100,000 against an instant fake.
* **W6 scheduler.** (a) During the L = 10 phase (default run only), ``bots.serve.schedule_jobs`` itself
  (``send_due`` every 30 s) with a few hundred small sendings due over 28 s: APScheduler's own firing
  lateness, and each sending's lateness (``planned_at - due_at``). (b) The same job every
  ``--interval`` s (1) with sendings due over 20 s (8 with ``--quick``); the server is killed (SIGKILL)
  part-way and started again: no sending may be lost or planned twice (``sends``, outbox rows per sending,
  ``unique(send_id, resident_id)``, the audit log).

Bounded: under 5 minutes by default and under a minute with ``--quick`` (not counting ``--big``). The table
and the targets go to stdout, then one JSON document; progress to stderr. Nothing is written inside the
repository; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import platform
import random
import re
import resource
import signal
import sqlite3
import sys
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import uvloop

SELF = Path(__file__).resolve()
ROOT = SELF.parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    # Run as a script, bench/ comes first on sys.path, where bench/telegram.py and bench/slack.py would
    # shadow python-telegram-bot's and slack_sdk's packages: the repository root instead.
    del sys.path[0]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import inbound  # noqa: E402
from bench.inbound import Child, RawLoad  # noqa: E402

SURVEY_SLUG = "parks-2026"
W6_SLUG = "parks-w6"  # a second survey with a few participants: W6's many small sendings
W6_PARTICIPANTS = 5
WELSH_EVERY = 50  # 2 % of participants answered in Welsh: their message is UCS-2 ("â")
LONDON = ZoneInfo("Europe/London")

CARD = """\
title: {en: Play areas, cy: Mannau chwarae}
survey: %s
languages: [en, cy]
you_said:
  en: Play areas need repairs and the swings at Elm Park are broken.
  cy: Mae angen trwsio'r mannau chwarae ac mae siglenni Parc Elm wedi torri.
we_did:
  en: We will renew the Elm Park swings in January.
  cy: Byddwn yn adnewyddu siglenni Parc Elm ym mis Ionawr, ynghyd â'r llithren.
cannot_change:
  en: We can't increase the total budget, which was set in February.
  cy: Ni allwn gynyddu'r gyllideb gyfan, a bennwyd ym mis Chwefror.
status: planned
lead_contact: parks@example.gov.uk
"""
LOW_RATINGS = "audience:\n  max_rating: {rating: 2}\n"

# Targets: performance.md §7 (W3, W4, W6).
TARGET_ENQUEUE_OVER_RAW = 0.4
TARGET_RSS_GROWTH_MB = 50.0
TARGET_SCHEDULE_CALL_MS = 200.0  # W3 "interactive latency"
TARGET_ADD_JOB_MS = 5.0  # W6 add_job on the persistent store (Loopline's "job" is a sends row)
TARGET_R_SEND = (0.98, 1.00)
TARGET_AHEAD_S = 1.0
TARGET_REPLY_P99_S = 2.0
TARGET_SEND_CEILING = 2000.0  # msgs/s on one core against an instant stub (0.4 x the raw client's 5.2k)
TARGET_CPU_AT_100 = 0.05  # cores, L = 100
TARGET_TICK_P99_MS = 50.0
MISFIRE_GRACE_S = 1.0
CONCURRENCY_LIMIT = 100  # Twilio's REST concurrency (performance.md §3.1): more in flight gets 429
AHEAD_TOLERANCE_S = 0.1  # network jitter can bunch messages the sender spaced out
REPLY_MARGIN_S = 4.0  # no webhook in a phase's last seconds: twice the reply target


def phone(index: int) -> str:
    """Resident ``index``'s number: +44770 and 7 digits (a possible UK mobile number, up to 10M)."""
    return f"+44770{index:07d}"


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") <= _status_kb("VmRSS") + 64


class RssSampler(threading.Thread):
    """VmRSS every 2 ms: the cross-check of the high-water mark (and the method where it cannot reset)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak = max(self.peak, _status_kb("VmRSS"))
            time.sleep(0.002)


class LoopProbe:
    """How late the event loop wakes a 10 ms sleep (its longest stall), and how long a would-be writer
    waits for ``db.writing()`` (what a webhook arriving then would wait)."""

    def __init__(self, db: Any = None) -> None:
        self.db = db
        self.started = time.perf_counter()
        self.lag: list[tuple[float, float]] = []  # (stall, seconds since the start)
        self.write_wait: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._lag()))
        if self.db is not None:
            self._tasks.append(asyncio.create_task(self._writer()))

    async def _lag(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lag.append((time.perf_counter() - t0 - 0.01, t0 - self.started))

    async def _writer(self) -> None:
        while True:
            t0 = time.perf_counter()
            async with self.db.writing():
                self.write_wait.append(time.perf_counter() - t0)
            await asyncio.sleep(0.02)

    async def stop(self) -> dict[str, float]:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        lag = sorted(x for x, _ in self.lag)
        worst = max(self.lag, default=(0.0, 0.0))
        later = max((x for x, at in self.lag if at >= 3.0), default=0.0)
        return {
            "loop_lag_max_ms": round(1000 * worst[0], 2),
            "loop_lag_max_at_s": round(worst[1], 2),
            "loop_lag_max_after_3s_ms": round(1000 * later, 2),
            "loop_lag_p99_ms": round(1000 * inbound._pick(lag, 0.99), 2) if lag else 0.0,
            "writer_wait_max_ms": round(1000 * max(self.write_wait, default=0.0), 1),
        }


# ---------------------------------------------------------------------------------------------------
# Loopline's settings and clock, shared by this process and the children
# ---------------------------------------------------------------------------------------------------


def quiet_hours_away_from_now() -> str:
    """A one-minute quiet window twelve hours from now (London time), so that no sending of this run
    waits for the morning: the bench measures the send path, not the council's rules."""
    start = (datetime.now(LONDON) + timedelta(hours=12)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=1)
    return f"{start:%H:%M}-{end:%H:%M}"


def loopline_env(url: str, synchronous: str, rate: float, api_url: str, quiet: str) -> dict[str, str]:
    env = inbound.loopline_env(url, synchronous, inbound._twilio_fakes())
    env.update(
        {
            "TWILIO_API_BASE_URL": api_url,
            "TWILIO_SEGMENTS_PER_SECOND": f"{rate:g}",
            "TWILIO_TIMEOUT_SECONDS": "10",
            "LOOPLINE_QUIET_HOURS": quiet,
            "LOOPLINE_YSWD_BUDGET": "1000000",  # many sendings to the same people in one run
            "LOOPLINE_THEMES_FILE": str(ROOT / "examples" / "themes.yaml"),
        }
    )
    return env


def shifted_clock(offset: float) -> Callable[[], datetime]:
    """The real clock, or shifted into the example survey's dates (as bench/inbound.py does)."""
    if not offset:
        return lambda: datetime.now(UTC)
    delta = timedelta(seconds=offset)
    return lambda: datetime.now(UTC) + delta


def build_loopline(args: argparse.Namespace) -> Any:
    from bots.app import build
    from bots.config import Settings
    from bots.logs import configure_logging

    env = loopline_env(args.url, args.synchronous, args.rate, args.api, args.quiet)
    settings = Settings.from_env(env)
    configure_logging(settings.log_level)
    return build(settings, clock=shifted_clock(args.clock_offset))


# ---------------------------------------------------------------------------------------------------
# Child processes
# ---------------------------------------------------------------------------------------------------


async def _child_plan(args: argparse.Namespace) -> dict[str, Any]:
    """W3: Loopline plans a sending (``Closing.send_due``), measured in a warm process.

    First ``send_due`` plans the small warm-up sending the parent scheduled (a fresh process pays for
    parsing, validation and statement compiling once; ``loopline serve`` is a long-lived process), then
    this child says ``WARM`` and waits for ``go`` while the parent schedules the sending to measure. With
    ``--probe``, the send path's transactions are then timed on the backlog just planned (rolled back)."""
    loopline = build_loopline(args)
    loop = asyncio.get_running_loop()
    try:
        t0 = time.perf_counter()
        await loopline.closing.send_due()
        cold = time.perf_counter() - t0
        sys.stdout.write("WARM\n")
        sys.stdout.flush()
        await loop.run_in_executor(None, sys.stdin.readline)
        rss_before = _status_kb("VmRSS")
        reset = _reset_peak_rss()
        sampler = RssSampler()
        sampler.start()
        probe = LoopProbe(loopline.db)
        probe.start()
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        planned = await loopline.closing.send_due()
        seconds = time.perf_counter() - t0
        await asyncio.sleep(0.03)
        stalls = await probe.stop()
        sampler.stopped.set()
        sampler.join()
        hwm = _status_kb("VmHWM")
        result = {
            "planned": planned,
            "seconds": seconds,
            "cold_warm_up_s": cold,
            "rss_before_mb": rss_before / 1024,
            "rss_growth_hwm_mb": (hwm - rss_before) / 1024 if reset else None,
            "rss_growth_sampled_mb": (sampler.peak - rss_before) / 1024,
            "rss_after_mb": _status_kb("VmRSS") / 1024,
            **stalls,
        }
        if args.probe:
            result["probe"] = await send_path_probe(loopline)
        return result
    finally:
        await loopline.close()


async def send_path_probe(loopline: Any) -> dict[str, Any]:
    """What the Sender's two transactions cost on the backlog just planned (each rolled back): claiming
    a batch (``outbox.claim_due``) and recording a batch as sent (``outbox.mark_sent``)."""
    from sqlalchemy import text

    from store import outbox

    db = loopline.db
    async with db.sessions() as session:
        queued = int(await session.scalar(text("SELECT count(*) FROM outbox WHERE status = 'queued'")) or 0)
    claims: dict[int, float] = {}
    claimed: list[Any] = []
    for limit in (1, 10, 50):
        times = []
        for _ in range(3):
            async with db.writing(), db.sessions() as session:
                t0 = time.perf_counter()
                async with session.begin():
                    claimed = await outbox.claim_due(
                        session, now=loopline.clock(), channels=["sms"], limit=limit
                    )
                    times.append(time.perf_counter() - t0)
                    await session.rollback()
        claims[limit] = 1000 * sorted(times)[1]
    batch = [(c.id, f"SMbench{c.id:024d}") for c in claimed]
    marks = []
    for _ in range(3):
        async with db.writing(), db.sessions() as session:
            t0 = time.perf_counter()
            async with session.begin():
                await outbox.mark_sent(session, batch, now=loopline.clock())
                marks.append(time.perf_counter() - t0)
                await session.rollback()
    async with db.sessions() as session:
        rows = await session.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT outbox.id FROM outbox JOIN addresses ON addresses.id = "
                "outbox.address_id JOIN residents ON residents.id = outbox.resident_id WHERE "
                "outbox.status = 'queued' AND outbox.next_attempt_at <= '9999' AND outbox.channel IN "
                "('sms') ORDER BY outbox.priority, outbox.id LIMIT 50"
            )
        )
        plan = [str(row[-1]) for row in rows.all()]
    return {
        "queued": queued,
        "claim_ms": claims,
        "mark_batch": len(batch),
        "mark_batch_ms": 1000 * sorted(marks)[1],
        "claim_query_plan": plan,
    }


def _child_raw(args: argparse.Namespace) -> dict[str, Any]:
    """W3's ceilings on a copy of Loopline's database: executemany into its outbox table (same indexes,
    foreign keys on, as Loopline's connections have them), into a minimal outbox-like table, and a raw
    set-based INSERT ... SELECT."""
    conn = sqlite3.connect(args.sqlite, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={args.synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    survey_id, send_id = conn.execute(
        "SELECT c.survey_id, s.id FROM sends s JOIN cards c ON c.id = s.card_id ORDER BY s.id DESC LIMIT 1"
    ).fetchone()
    recipients = conn.execute(
        "SELECT r.resident_id, a.id FROM responses r JOIN addresses a ON a.resident_id = r.resident_id "
        "AND a.channel = r.channel WHERE r.survey_id = ?",
        (survey_id,),
    ).fetchall()
    stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    body = "x" * 309  # the English message's length
    rows = [
        (
            rid,
            aid,
            "sms",
            body,
            None,
            "you_said_we_did",
            1,
            "queued",
            0,
            0,
            stamp,
            stamp,
            stamp,
            send_id,
            None,
        )
        for rid, aid in recipients
    ]
    columns = (
        "resident_id, address_id, channel, body, buttons, kind, priority, status, status_rank, attempts, "
        "next_attempt_at, created_at, updated_at, send_id, error"
    )
    result: dict[str, Any] = {"rows": len(rows)}

    rss_before = _status_kb("VmRSS")
    reset = _reset_peak_rss()
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO outbox ({columns}) VALUES ({', '.join('?' * 15)})", rows)
    conn.execute("COMMIT")
    result["executemany_outbox_s"] = time.perf_counter() - t0
    result["executemany_rss_growth_mb"] = (_status_kb("VmHWM") - rss_before) / 1024 if reset else None

    conn.execute(
        "CREATE TABLE bench_outbox (id INTEGER PRIMARY KEY, resident_id INTEGER NOT NULL, body TEXT NOT NULL,"
        " status TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX ix_bench_outbox_status ON bench_outbox (status)")
    minimal = [(rid, body, "queued", stamp) for rid, _ in recipients]
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO bench_outbox (resident_id, body, status, created_at) VALUES (?, ?, ?, ?)", minimal
    )
    conn.execute("COMMIT")
    result["executemany_minimal_s"] = time.perf_counter() - t0

    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO sends (card_id, due_at, state, recipients, scheduled_by, created_at, planned_at) "
        "SELECT card_id, due_at, state, recipients, scheduled_by, created_at, planned_at FROM sends "
        "WHERE id = ?",
        (send_id,),
    )
    other = conn.execute("SELECT max(id) FROM sends").fetchone()[0]
    conn.execute("COMMIT")
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute(
        f"INSERT INTO outbox ({columns}) SELECT r.resident_id, a.id, 'sms', ?, NULL, 'you_said_we_did', 1,"
        " 'queued', 0, 0, ?, ?, ?, ?, NULL FROM responses r JOIN addresses a ON a.resident_id = r.resident_id"
        " AND a.channel = r.channel WHERE r.survey_id = ? ON CONFLICT DO NOTHING",
        (body, stamp, stamp, stamp, other, survey_id),
    )
    conn.execute("COMMIT")
    result["insert_select_s"] = time.perf_counter() - t0
    conn.close()
    return result


def _paced_twilio(rate: float, latency: float) -> Any:
    """``FakeTwilio`` that logs each message's arrival and segments (Twilio's count), keeps the provider's
    queue at ``rate`` segments a second, answers after ``latency`` s and 429s above the concurrency limit."""
    from aiohttp import web

    twilio = inbound._twilio_fakes()

    class PacedTwilio(twilio.FakeTwilio):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.log: list[tuple[float, int, int, str]] = []  # (arrival, segments, status, To)
            self.inflight = 0
            self.max_inflight = 0
            self.too_many = 0
            self.backlog = 0.0
            self.backlog_at = 0.0
            self.max_ahead = 0.0

        async def _create_message(self, request: web.Request) -> web.StreamResponse:
            arrived = time.perf_counter()
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                if self.inflight > CONCURRENCY_LIMIT:
                    self.too_many += 1
                    self.log.append((arrived, 0, 429, "", 0))
                    return self._json(429, twilio.twilio_error_body(429, 20429))
                posted = await request.post()  # aiohttp keeps it: FakeTwilio reads the same form
                body, to = str(posted.get("Body", "")), str(posted.get("To", ""))
                segments = twilio.sms_segments(body)
                # the provider's queue for this sender, at the moment the message arrives
                drained = (arrived - self.backlog_at) * rate
                self.backlog = max(0.0, self.backlog - drained) + segments
                self.backlog_at = arrived
                self.max_ahead = max(self.max_ahead, self.backlog / rate)
                if latency:
                    await asyncio.sleep(latency)
                response = await super()._create_message(request)
                accepted = response.status == 201
                self.log.append(
                    (arrived, segments if accepted else 0, response.status, to, zlib.crc32(body.encode()))
                )
                self.messages.clear()  # the fake's own records would grow without bound
                self.attempts.clear()
                self.requests.clear()
                return response
            finally:
                self.inflight -= 1

    return PacedTwilio()


async def _child_fake_twilio(args: argparse.Namespace) -> None:
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # a client gone mid-request is expected here
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await loop.connect_read_pipe(lambda: inbound._StopOnEof(stop), sys.stdin)
    fake = _paced_twilio(args.rate, args.latency)
    await fake.start()
    sys.stdout.write(f"READY {fake.base_url.rsplit(':', 1)[1]}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        document = {
            "log": fake.log,
            "max_inflight": fake.max_inflight,
            "too_many": fake.too_many,
            "max_ahead_s": fake.max_ahead,
            "cpu_s": time.process_time(),
        }
        Path(args.out).write_text(json.dumps(document))  # noqa: ASYNC240 - once, at exit
        await fake.stop()


async def _child_serve(args: argparse.Namespace) -> None:
    """``loopline serve`` as bots/serve.py wires it (interrupted sends reported, webhooks, the sender, the
    scheduler), with the scheduler either serve's own (``schedule_jobs``: send_due every 30 s) or just
    send_due every ``--interval`` s with the same job options. Scheduler events go to ``--out`` as they
    happen (JSON lines, flushed: they survive a SIGKILL)."""
    from aiohttp import web
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bots.serve import report_interrupted_sends, schedule_jobs
    from bots.web import create_app

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await loop.connect_read_pipe(lambda: inbound._StopOnEof(stop), sys.stdin)
    out = open(args.out, "a", buffering=1)  # noqa: SIM115, ASYNC230 - line-buffered, kept open

    def note(kind: str, **values: Any) -> None:
        out.write(json.dumps({"kind": kind, "at": time.time(), **values}) + "\n")

    loopline = build_loopline(args)
    await loopline.start()
    interrupted = await report_interrupted_sends(loopline)
    note("start", interrupted=len(interrupted))
    runner = web.AppRunner(create_app(loopline.services()), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sender = asyncio.create_task(loopline.sender.run(), name="outbox-sender")
    scheduler: AsyncIOScheduler | None = None
    if args.scheduler == "serve":
        scheduler = schedule_jobs(loopline)
    elif args.scheduler == "interval":
        scheduler = AsyncIOScheduler(timezone=loopline.settings.timezone)

        async def send_due() -> None:
            await loopline.closing.send_due()

        scheduler.add_job(  # serve's options, a shorter interval
            send_due,
            "interval",
            seconds=args.interval,
            id="send_due",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
    submitted: dict[str, float] = {}

    def on_event(event: Any) -> None:
        now = datetime.now(UTC)
        if event.code == EVENT_JOB_SUBMITTED:
            submitted[event.job_id] = time.perf_counter()
            due = max(event.scheduled_run_times)
            note("tick", job=event.job_id, late_ms=(now - due).total_seconds() * 1000)
        elif event.code == EVENT_JOB_EXECUTED:
            started = submitted.pop(event.job_id, None)
            if started is not None:
                note("done", job=event.job_id, ms=(time.perf_counter() - started) * 1000)
        else:
            note("missed" if event.code == EVENT_JOB_MISSED else "error", job=event.job_id)

    if scheduler is not None:
        scheduler.add_listener(
            on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR
        )
        scheduler.start()
    probe = LoopProbe()
    probe.start()
    sys.stdout.write(f"READY {runner.addresses[0][1]}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        note("stop", **(await probe.stop()))
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await runner.cleanup()
        await loopline.close()
        out.close()


def child_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="broadcast.py _child")
    parser.add_argument("role", choices=["plan", "raw", "serve", "fake-twilio"])
    parser.add_argument("--core", type=int)
    parser.add_argument("--url", default="")
    parser.add_argument("--sqlite", default="")
    parser.add_argument("--synchronous", default="NORMAL")
    parser.add_argument("--clock-offset", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--api", default="http://127.0.0.1:9")
    parser.add_argument("--quiet", default="21:00-08:00")
    parser.add_argument("--scheduler", choices=["none", "serve", "interval"], default="none")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--out", default="")
    parser.add_argument("--probe", action="store_true")
    args = parser.parse_args(argv)
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    if args.role == "plan":
        result = uvloop.run(_child_plan(args))
    elif args.role == "raw":
        result = _child_raw(args)
    elif args.role == "serve":
        uvloop.run(_child_serve(args))
        return
    else:
        uvloop.run(_child_fake_twilio(args))
        return
    sys.stdout.write(json.dumps(result) + "\n")


# ---------------------------------------------------------------------------------------------------
# This process: children, set-up, phases
# ---------------------------------------------------------------------------------------------------


async def spawn(role: str, *options: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SELF),
        inbound.CHILD,
        role,
        *options,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    inbound._CHILD_PIDS.add(proc.pid)  # inbound's atexit reaper stops it if this process dies first
    return proc


async def start_child(role: str, *options: str, wait: float = 60.0) -> Child:
    """A server child of this file: it prints ``READY <port>`` when it listens."""
    proc = await spawn(role, *options)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), wait)
    except TimeoutError:
        line = b""
    if not line.startswith(b"READY "):
        await inbound._stop_process(proc)
        raise RuntimeError(f"the {role} child did not start (said {line!r}); see stderr above")
    return Child(proc, int(line.split()[1]))


async def run_child(
    role: str, *options: str, limit: float, when_warm: Callable[[], Any] | None = None
) -> tuple[dict[str, Any], int]:
    """A child that prints one JSON line and exits: (its answer, its peak RSS in kB from getrusage).
    With ``when_warm``, the child first prints ``WARM``: await ``when_warm()``, then tell it ``go``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = await spawn(role, *options)
    assert proc.stdout is not None
    assert proc.stdin is not None
    try:
        async with asyncio.timeout(limit):
            if when_warm is not None:
                line = await proc.stdout.readline()
                if line.strip() != b"WARM":
                    raise RuntimeError(f"the {role} child said {line!r}; see stderr above")
                await when_warm()
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            out = await proc.stdout.read()
            await proc.wait()
    except TimeoutError:
        await inbound._stop_process(proc)
        raise RuntimeError(f"the {role} child took more than {limit:.0f} s") from None
    inbound._CHILD_PIDS.discard(proc.pid)
    if proc.returncode != 0:
        raise RuntimeError(f"the {role} child failed; see stderr above")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(out.decode().strip().splitlines()[-1]), peak if peak > before else 0


def _db_stamp(value: str) -> datetime:
    """A timestamp as SQLAlchemy stores it in SQLite (naive UTC text)."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


@dataclasses.dataclass
class Plan:
    participants: int
    reply_residents: int
    latency: float
    l10_seconds: float
    l100_bulk_seconds: float
    l100_reply_seconds: float
    ceiling_seconds: float
    w6a_sendings: int  # 0: not run
    w6a_span: float
    w6b_sendings: int
    w6b_span: float
    reply_rate_l10: float
    reply_rate_l100: float
    reply_rate_w6: float = 5.0

    @classmethod
    def of(cls, args: argparse.Namespace) -> Plan:
        if args.quick:
            plan = cls(10_000, 300, args.latency_ms / 1000, 9, 3, 7, 3, 0, 0, 60, 6, 1.0, 20.0)
        else:
            plan = cls(100_000, 1_000, args.latency_ms / 1000, 63, 12, 20, 10, 300, 26, 200, 20, 1.0, 20.0)
        if args.participants:
            plan.participants = args.participants
        return plan


class Setup:
    """The database and the parent's own Loopline (to write and schedule cards, as the CLI does)."""

    def __init__(self, args: argparse.Namespace, plan: Plan, workdir: Path) -> None:
        self.args = args
        self.plan = plan
        self.workdir = workdir
        self.path = workdir / "loopline.db"
        self.url = f"sqlite+aiosqlite:///{self.path}"
        self.synchronous = args.synchronous.upper()
        self.quiet = quiet_hours_away_from_now()
        self.offset = inbound._survey_clock_offset()
        self.clock = shifted_clock(self.offset)
        self.loopline: Any = None

    def options(self, rate: float = 10.0, api: str = "http://127.0.0.1:9") -> list[str]:
        return [
            "--url",
            self.url,
            "--synchronous",
            self.synchronous,
            "--clock-offset",
            str(self.offset),
            "--rate",
            f"{rate:g}",
            "--api",
            api,
            "--quiet",
            self.quiet,
        ]

    async def create(self) -> None:
        from bots.app import build
        from bots.config import Settings
        from store import migrate

        plan = self.plan
        await asyncio.to_thread(migrate.upgrade, self.url)
        residents = plan.participants + plan.reply_residents
        await inbound.load_loopline_data(self.url, residents, self.synchronous, address=phone)
        await asyncio.to_thread(self._participants)
        env = loopline_env(self.url, self.synchronous, 10.0, "http://127.0.0.1:9", self.quiet)
        self.loopline = build(Settings.from_env(env), clock=self.clock)
        await self._second_survey()

    def _participants(self) -> None:
        """Everyone but the reply residents took part in the example survey (2 % in Welsh) and rated
        their play area 1-5; the first few also took part in W6's survey."""
        conn = sqlite3.connect(self.path)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        survey_id = conn.execute("SELECT id FROM surveys WHERE slug = ?", (SURVEY_SLUG,)).fetchone()[0]
        conn.execute(
            "INSERT INTO responses (survey_id, resident_id, participant, channel, language, started_at,"
            " ended_at, outcome) SELECT ?, id, printf('P%015d', id), 'sms',"
            f" CASE WHEN id % {WELSH_EVERY} = 0 THEN 'cy' ELSE 'en' END, created_at, created_at, 'completed'"
            " FROM residents WHERE id <= ?",
            (survey_id, self.plan.participants),
        )
        conn.execute(
            "INSERT INTO answers (response_id, question, value, status, answered_at) SELECT id, 'rating',"
            " CAST(1 + (resident_id * 7) % 5 AS TEXT), 'answered', started_at FROM responses"
        )
        conn.commit()
        conn.close()

    async def _second_survey(self) -> None:
        from flows.survey_file import parse_survey
        from store import surveys

        text = inbound.EXAMPLE_SURVEY.read_text()
        text = text.replace(f"slug: {SURVEY_SLUG}", f"slug: {W6_SLUG}").replace(
            "keyword: PARKS", "keyword: PLAYW6"
        )
        survey = parse_survey(text, "w6.yaml")
        db = self.loopline.db
        async with db.sessions() as session, session.begin():
            await surveys.save_survey(session, survey=survey, source="w6.yaml", now=self.clock())
        conn = sqlite3.connect(self.path)
        survey_id = conn.execute("SELECT id FROM surveys WHERE slug = ?", (W6_SLUG,)).fetchone()[0]
        conn.execute(
            "INSERT INTO responses (survey_id, resident_id, participant, channel, language, started_at,"
            " ended_at, outcome) SELECT ?, id, printf('Q%015d', id), 'sms', 'en', created_at, created_at,"
            " 'completed' FROM residents WHERE id <= ?",
            (survey_id, W6_PARTICIPANTS),
        )
        conn.commit()
        conn.close()

    async def approved_card(self, text: str) -> int:
        closing = self.loopline.closing
        card_id = await closing.create(text, "you-said-we-did.yaml", author="priya.comms")
        await closing.approve(card_id, approver="tom.comms")
        return int(card_id)

    async def schedule(self, card_id: int, at: datetime) -> tuple[int, float]:
        """``Closing.schedule`` (the interactive call): the sending's id and how long the call took."""
        t0 = time.perf_counter()
        send_id, _ = await self.loopline.closing.schedule(card_id, at=at, actor="tom.comms")
        return int(send_id), time.perf_counter() - t0

    def clone_cards(self, card_id: int, count: int) -> list[int]:
        """``count`` approved copies of an approved card (W6 needs one card per sending)."""
        conn = sqlite3.connect(self.path)
        first = conn.execute("SELECT max(id) FROM cards").fetchone()[0] + 1
        conn.executemany(
            "INSERT INTO cards (survey_id, definition, state, author, approver, purdah_exempt_reason,"
            " created_at, updated_at) SELECT survey_id, definition, state, author, approver,"
            " purdah_exempt_reason, created_at, updated_at FROM cards WHERE id = ?",
            [(card_id,)] * count,
        )
        conn.commit()
        conn.close()
        return list(range(first, first + count))

    async def close(self) -> None:
        if self.loopline is not None:
            await self.loopline.close()


# -- W3 ----------------------------------------------------------------------------------------------


async def w3(setup: Setup, core: list[str], *, filtered: bool = True, probe: bool = True) -> dict[str, Any]:
    plan = setup.plan
    copy = setup.workdir / "raw.db"
    scheduled: dict[str, Any] = {}

    async def schedule_main(card: int, label: str) -> None:
        send_id, seconds = await setup.schedule(card, setup.clock())
        scheduled[label] = (send_id, seconds)
        if label == "all":  # the ceilings' copy: the same rows, this sending scheduled, nothing planned
            await asyncio.to_thread(_backup, setup.path, copy)

    async def planned_in_child(
        text: str, warm_text: str, label: str, with_probe: bool
    ) -> tuple[dict[str, Any], int]:
        card = await setup.approved_card(text)
        warm = await setup.approved_card(warm_text)
        await setup.schedule(warm, setup.clock())
        options = [*core, *setup.options(), *(["--probe"] if with_probe else [])]
        return await run_child("plan", *options, limit=900, when_warm=lambda: schedule_main(card, label))

    inbound._log(f"W3: planning a sending to {plan.participants:,} participants")
    planned, plan_peak = await planned_in_child(CARD % SURVEY_SLUG, CARD % W6_SLUG, "all", probe)
    raw, _ = await run_child(
        "raw", *core, "--sqlite", str(copy), "--synchronous", setup.synchronous, limit=900
    )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240 - between phases
    low: dict[str, Any] | None = None
    if filtered:
        low_text = (CARD % SURVEY_SLUG).replace("Play areas,", "Play areas (low ratings),") + LOW_RATINGS
        low, _ = await planned_in_child(low_text, CARD % W6_SLUG + LOW_RATINGS, "low", False)
    send_id, schedule_s = scheduled["all"]
    conn = sqlite3.connect(setup.path)
    counts = dict(
        conn.execute(
            "SELECT send_id, count(*) FROM outbox WHERE send_id IN (?, ?) GROUP BY send_id",
            (send_id, scheduled.get("low", (0, 0))[0]),
        ).fetchall()
    )
    bodies = conn.execute(
        "SELECT body, count(*) FROM outbox WHERE send_id = ? GROUP BY body ORDER BY 2 DESC", (send_id,)
    ).fetchall()
    conn.close()
    from flows.segments import segments

    twilio = inbound._twilio_fakes()
    messages = [
        {
            "count": n,
            "characters": len(body),
            "segments_loopline": segments(body),
            "segments_twilio": twilio.sms_segments(body),
        }
        for body, n in bodies
    ]
    n = counts.get(send_id, 0)
    seconds = planned["seconds"]
    result = {
        "participants": plan.participants,
        "rows": n,
        "schedule_call_ms": 1000 * schedule_s,
        "plan": planned,
        "plan_child_max_rss_mb": plan_peak / 1024,
        "raw": raw,
        "rows_per_s": n / seconds if seconds else 0.0,
        "raw_outbox_rows_per_s": raw["rows"] / raw["executemany_outbox_s"],
        "raw_minimal_rows_per_s": raw["rows"] / raw["executemany_minimal_s"],
        "raw_insert_select_rows_per_s": raw["rows"] / raw["insert_select_s"],
        "over_raw_outbox": raw["executemany_outbox_s"] / seconds,
        "over_raw_minimal": raw["executemany_minimal_s"] / seconds,
        "over_raw_insert_select": raw["insert_select_s"] / seconds,
        "filtered": {**low, "rows": counts.get(scheduled["low"][0], 0)} if low else None,
        "messages": messages,
    }
    growth = planned["rss_growth_hwm_mb"]
    inbound._log(
        f"W3: {n:,} rows in {seconds:.2f} s ({result['rows_per_s']:,.0f}/s); executemany into "
        f"the outbox {raw['executemany_outbox_s']:.2f} s, minimal table "
        f"{raw['executemany_minimal_s']:.2f} s; "
        f"RSS growth {growth if growth is not None else planned['rss_growth_sampled_mb']:.1f} MB"
    )
    return result


def _backup(source: Path, target: Path) -> None:
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()


# -- W4 ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class SendPhase:
    name: str
    rate: float
    latency: float
    seconds: float  # the whole phase, from the server's READY
    reply_rate: float = 0.0
    reply_from: float = 0.0  # replies start this long after READY
    scheduler: str = "none"
    interval: float = 1.0


def reply_requests(maker: inbound.FormMaker, first: int, count: int) -> tuple[list[inbound.Req], list[str]]:
    senders = [phone(first + i) for i in range(count)]
    return [maker.make(sender, "PARKS") for sender in senders], senders


async def send_phase(
    setup: Setup,
    phase: SendPhase,
    cores: tuple[list[str], list[str]],
    maker: inbound.FormMaker,
    reply_cursor: list[int],
    py_spy: str | None = None,
    before_stop: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """One server (a given L) draining the outbox against a fresh fake, replies arriving meanwhile;
    ``before_stop`` is awaited at the end of the phase, before the server is stopped."""
    server_core, client_core = cores
    fake_log = setup.workdir / f"fake-{phase.name}.json"
    events = setup.workdir / f"serve-{phase.name}.jsonl"
    fake = await start_child(
        "fake-twilio",
        *client_core,
        "--rate",
        f"{phase.rate:g}",
        "--latency",
        str(phase.latency),
        "--out",
        str(fake_log),
    )
    api = f"http://127.0.0.1:{fake.port}"
    replies: list[inbound.Req] = []
    senders: list[str] = []
    if phase.reply_rate:
        count = math.ceil(phase.reply_rate * (phase.seconds - phase.reply_from)) + 1
        first = setup.plan.participants + reply_cursor[0]
        if reply_cursor[0] + count > setup.plan.reply_residents:
            raise RuntimeError("not enough reply residents for this plan")
        reply_cursor[0] += count
        replies, senders = reply_requests(maker, first, count)
    server = await start_child(
        "serve",
        *server_core,
        *setup.options(phase.rate, api),
        "--scheduler",
        phase.scheduler,
        "--interval",
        str(phase.interval),
        "--out",
        str(events),
    )
    ready = time.perf_counter()
    meter = inbound.CpuMeter(server.pid)
    meter.start()
    spy = None
    if py_spy:
        spy = await inbound.start_py_spy(server.pid, phase.seconds - 1, py_spy, None)
    load: RawLoad | None = None
    cpu_bulk: dict[str, float] | None = None
    try:
        if replies:
            await asyncio.sleep(phase.reply_from)
            if phase.reply_from:
                cpu_bulk = meter.stop()
                meter = inbound.CpuMeter(server.pid)
                meter.start()
            load = RawLoad(server.port, replies, 4)
            remaining = phase.seconds - (time.perf_counter() - ready)
            # the last webhook goes REPLY_MARGIN s before the stop, so that its reply can still arrive
            await load.open_loop(phase.reply_rate, 0.0, max(0.5, remaining - REPLY_MARGIN_S))
        await asyncio.sleep(max(0.0, phase.seconds - (time.perf_counter() - ready)))
        if before_stop is not None:
            await before_stop()
        cpu = meter.stop()
        ended = time.perf_counter()
    finally:
        await server.stop()
        if fake.proc.stdin is not None:
            fake.proc.stdin.close()
        await inbound._stop_process(fake.proc)
        if spy is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(spy.wait(), 15)
            inbound._CHILD_PIDS.discard(spy.pid)
    provider = json.loads(fake_log.read_text())
    result = analyse_sends(phase, provider, ready, ended, load, senders)
    result["server_cpu"] = cpu["server_cpu"]
    result["server_cpu_bulk_only"] = cpu_bulk["server_cpu"] if cpu_bulk else None
    result["foreign_cpu"] = cpu["foreign_cpu"]
    result["fake_cpu_s"] = provider["cpu_s"]
    result["events"] = read_events(events)
    result["events_summary"] = tick_report(result["events"])
    if py_spy:
        result["profile"] = inbound.summarise_py_spy(py_spy)
    inbound._log(
        f"W4 {phase.name}: {result['msgs_per_s']:,.1f} msgs/s, {result['segments_per_s']:,.1f} segments/s, "
        f"R_send {result['r_send']:.3f} (windows {result['r_min']:.3f}-{result['r_max']:.3f}), "
        f"reply p99 {result['reply_p99_ms']:.0f} ms, 429s {result['too_many']}, "
        f"ahead {result['max_ahead_s']:.2f} s, server CPU {cpu['server_cpu']:.2f}"
    )
    return result


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def analyse_sends(
    phase: SendPhase,
    provider: dict[str, Any],
    ready: float,
    ended: float,
    load: RawLoad | None,
    senders: Sequence[str],
) -> dict[str, Any]:
    """R_send over the window (after the initial burst) and over every sliding window; reply latency."""
    log = [(t, s, code, to) for t, s, code, to, _ in provider["log"] if ready <= t <= ended]
    accepted = [(t, s, to) for t, s, code, to in log if code == 201]
    result: dict[str, Any] = {
        "phase": phase.name,
        "L": phase.rate,
        "latency_ms": 1000 * phase.latency,
        "accepted": len(accepted),
        "too_many": provider["too_many"],
        "other_errors": sum(1 for _, _, code, _ in log if code not in (201, 429)),
        "max_inflight": provider["max_inflight"],
        "max_ahead_s": provider["max_ahead_s"],
    }
    if not accepted:
        return {
            **result,
            "msgs_per_s": 0.0,
            "segments_per_s": 0.0,
            "r_send": 0.0,
            "r_min": 0.0,
            "r_max": 0.0,
            "reply_p99_ms": float("nan"),
        }
    first = accepted[0][0]
    start = first + min(2.0, 0.2 * (ended - first))  # after the initial burst (one bucket)
    inside = [(t, s) for t, s, _ in accepted if start <= t <= ended]
    seconds = ended - start
    segments = sum(s for _, s in inside)
    result.update(
        {
            "first_send_after_ready_s": first - ready,
            "window_s": seconds,
            "segments": segments,
            "messages": len(inside),
            "msgs_per_s": len(inside) / seconds,
            "segments_per_s": segments / seconds,
            "r_send": segments / (seconds * phase.rate),
            "r_with_burst": sum(s for _, s, _ in accepted) / ((ended - first) * phase.rate),
        }
    )
    # sliding windows (1 s steps) of min(60 s, the whole window): performance.md's "any 60 s window"
    width = min(60.0, seconds)
    ratios = []
    times = [t for t, _ in inside]
    cumulative = [0]
    for _, s in inside:
        cumulative.append(cumulative[-1] + s)
    import bisect

    at = start
    while at + width <= ended + 1e-9:
        lo = bisect.bisect_left(times, at)
        hi = bisect.bisect_right(times, at + width)
        ratios.append((cumulative[hi] - cumulative[lo]) / (width * phase.rate))
        at += 1.0
    biggest = max((s for _, s in inside), default=1)
    result.update(
        {
            "window_width_s": width,
            "r_min": min(ratios, default=float("nan")),
            "r_max": max(ratios, default=float("nan")),
            "r_tolerance": biggest / (width * phase.rate),  # one message more or less in a window
        }
    )
    # replies: from the webhook's intended send time to the reply's arrival at the fake
    latencies: list[float] = []
    missing = 0
    webhook: dict[str, Any] = {}
    if load is not None and senders:
        record = load.record
        origin = record.window[0]
        arrivals: dict[str, float] = {}
        for t, _, to in accepted:
            arrivals.setdefault(to, t)
        sent = min(len(senders), len(record.status) + record.unfinished)
        for i in range(sent):
            scheduled = origin + i / phase.reply_rate
            arrived = arrivals.get(senders[i])
            if arrived is None:
                missing += 1
            else:
                latencies.append(arrived - scheduled)
        summary = inbound.summarise("replies", "open", record, phase.reply_rate)
        webhook = {
            "p50_ms": summary.p50_ms,
            "p99_ms": summary.p99_ms,
            "max_ms": summary.max_ms,
            "errors": summary.errors,
        }
    latencies.sort()
    result.update(
        {
            "replies": len(latencies) + missing,
            "replies_missing": missing,
            "reply_p50_ms": 1000 * inbound._pick(latencies, 0.5) if latencies else float("nan"),
            "reply_p99_ms": 1000 * inbound._pick(latencies, 0.99) if latencies else float("nan"),
            "reply_max_ms": 1000 * latencies[-1] if latencies else float("nan"),
            "replies_within_10s": sum(1 for x in latencies if x <= 10) / len(latencies)
            if latencies
            else None,
            "webhook": webhook,
        }
    )
    return result


# -- W6 ----------------------------------------------------------------------------------------------


async def wait_planned(setup: Setup, sends: Sequence[int], limit: float) -> None:
    """Until none of ``sends`` is still 'scheduled' (or ``limit`` seconds)."""
    deadline = time.perf_counter() + limit
    marks = ",".join("?" * len(sends))
    while time.perf_counter() < deadline:
        conn = sqlite3.connect(setup.path)
        waiting = conn.execute(
            f"SELECT count(*) FROM sends WHERE state = 'scheduled' AND id IN ({marks})", list(sends)
        ).fetchone()[0]
        conn.close()
        if not waiting:
            return
        await asyncio.sleep(0.5)


async def schedule_sendings(setup: Setup, count: int, first_due: datetime, span: float) -> dict[str, Any]:
    """``count`` small sendings (W6's survey, 5 participants each) due evenly over ``span`` seconds."""
    template = await setup.approved_card(CARD % W6_SLUG)
    cards = [template, *setup.clone_cards(template, count - 1)]
    calls = []
    sends = []
    for i, card in enumerate(cards):
        due = first_due + timedelta(seconds=span * i / max(1, count - 1))
        send_id, seconds = await setup.schedule(card, due)
        sends.append(send_id)
        calls.append(seconds)
    calls.sort()
    return {
        "sends": sends,
        "schedule_call_p50_ms": 1000 * inbound._pick(calls, 0.5),
        "schedule_call_p99_ms": 1000 * inbound._pick(calls, 0.99),
    }


def sending_report(setup: Setup, sends: Sequence[int]) -> dict[str, Any]:
    """From the database: each sending's lateness, and whether any was lost or planned twice."""
    conn = sqlite3.connect(setup.path)
    marks = ",".join("?" * len(sends))
    rows = conn.execute(
        f"SELECT id, due_at, planned_at, state, recipients FROM sends WHERE id IN ({marks})", list(sends)
    ).fetchall()
    outbox = dict(
        conn.execute(
            f"SELECT send_id, count(*) FROM outbox WHERE send_id IN ({marks}) GROUP BY send_id", list(sends)
        ).fetchall()
    )
    twice = conn.execute(
        f"SELECT count(*) FROM (SELECT send_id, resident_id FROM outbox WHERE send_id IN ({marks}) "
        "GROUP BY send_id, resident_id HAVING count(*) > 1)",
        list(sends),
    ).fetchone()[0]
    audits: dict[int, int] = {}
    for (details,) in conn.execute("SELECT details FROM audit_log WHERE action = 'planned'"):
        send = json.loads(details).get("send") if details else None
        if send in set(sends):
            audits[send] = audits.get(send, 0) + 1
    unique = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'outbox' "
        "AND sql LIKE '%UNIQUE (send_id, resident_id)%'"
    ).fetchone()[0]
    conn.close()
    late = []
    not_planned = []
    wrong_rows = []
    for send_id, due, planned, state, recipients in rows:
        if state != "planned" or planned is None:
            not_planned.append(send_id)
            continue
        late.append(((_db_stamp(planned) - _db_stamp(due)).total_seconds(), send_id))
        if outbox.get(send_id, 0) != W6_PARTICIPANTS or recipients != W6_PARTICIPANTS:
            wrong_rows.append(send_id)
    late.sort()
    values = [x for x, _ in late]
    return {
        "sendings": len(sends),
        "planned": len(late),
        "lost": len(not_planned) + (len(sends) - len(rows)),
        "audit_planned_twice": sum(1 for n in audits.values() if n > 1),
        "rows_twice": int(twice),
        "wrong_row_count": len(wrong_rows),
        "unique_constraint": bool(unique),
        "late_p50_s": inbound._pick(values, 0.5) if values else float("nan"),
        "late_p99_s": inbound._pick(values, 0.99) if values else float("nan"),
        "late_max_s": values[-1] if values else float("nan"),
        "late_min_s": values[0] if values else float("nan"),
        "late_by_send": {send_id: seconds for seconds, send_id in late},
    }


def tick_report(events: Sequence[dict[str, Any]], job: str = "send_due") -> dict[str, Any]:
    ticks = sorted(e["late_ms"] for e in events if e["kind"] == "tick" and e.get("job") == job)
    done = sorted(e["ms"] for e in events if e["kind"] == "done" and e.get("job") == job)
    stops = [e for e in events if e["kind"] == "stop"]
    return {
        "ticks": len(ticks),
        "tick_late_p50_ms": inbound._pick(ticks, 0.5) if ticks else float("nan"),
        "tick_late_p99_ms": inbound._pick(ticks, 0.99) if ticks else float("nan"),
        "tick_late_max_ms": ticks[-1] if ticks else float("nan"),
        "send_due_p50_ms": inbound._pick(done, 0.5) if done else float("nan"),
        "send_due_max_ms": done[-1] if done else float("nan"),
        "missed": sum(1 for e in events if e["kind"] == "missed"),
        "errors": sum(1 for e in events if e["kind"] == "error"),
        "loop_lag_max_ms": max((e.get("loop_lag_max_ms", 0.0) for e in stops), default=float("nan")),
        "loop_lag_max_at_s": max(stops, key=lambda e: e.get("loop_lag_max_ms", 0.0)).get("loop_lag_max_at_s")
        if stops
        else None,
        "loop_lag_max_after_3s_ms": max(
            (e.get("loop_lag_max_after_3s_ms", 0.0) for e in stops), default=float("nan")
        ),
        "loop_lag_p99_ms": max((e.get("loop_lag_p99_ms", 0.0) for e in stops), default=float("nan")),
        "interrupted_at_start": [e["interrupted"] for e in events if e["kind"] == "start"],
    }


async def w6_restart(
    setup: Setup, plan: Plan, args: argparse.Namespace, cores: tuple[list[str], list[str]]
) -> dict[str, Any]:
    """Sendings due every ``span / n`` s, send_due every ``--interval`` s; SIGKILL part-way, restart."""
    server_core, client_core = cores
    lead = 4.0  # the server's start-up
    first_due = setup.clock() + timedelta(seconds=lead)
    scheduled = await schedule_sendings(setup, plan.w6b_sendings, first_due, plan.w6b_span)
    sends = scheduled["sends"]
    fake_log = setup.workdir / "fake-w6.json"
    events = setup.workdir / "serve-w6.jsonl"
    fake = await start_child(
        "fake-twilio", *client_core, "--rate", "100", "--latency", "0", "--out", str(fake_log)
    )
    api = f"http://127.0.0.1:{fake.port}"
    options = [
        *server_core,
        *setup.options(100.0, api),
        "--scheduler",
        "interval",
        "--interval",
        str(args.interval),
        "--out",
        str(events),
    ]
    kill_at = first_due + timedelta(seconds=0.4 * plan.w6b_span)
    end_at = first_due + timedelta(seconds=plan.w6b_span + args.interval + 2.0)
    down = 2.0
    try:
        server = await start_child("serve", *options)
        await asyncio.sleep(max(0.0, (kill_at - setup.clock()).total_seconds()))
        killed_at = setup.clock()
        os.kill(server.pid, signal.SIGKILL)
        await server.proc.wait()
        inbound._CHILD_PIDS.discard(server.pid)
        inbound._log(f"W6: killed the server (SIGKILL) at {0.4 * plan.w6b_span:.1f} s of {plan.w6b_span:.0f}")
        await asyncio.sleep(down)
        server = await start_child("serve", *options)
        restarted_at = setup.clock()
        await asyncio.sleep(max(0.0, (end_at - setup.clock()).total_seconds()))
        await server.stop()
    finally:
        if fake.proc.stdin is not None:
            fake.proc.stdin.close()
        await inbound._stop_process(fake.proc)
    result = sending_report(setup, sends)
    conn = sqlite3.connect(setup.path)
    dues = {
        i: _db_stamp(d)
        for i, d in conn.execute(
            f"SELECT id, due_at FROM sends WHERE id IN ({','.join('?' * len(sends))})", sends
        )
    }
    conn.close()
    up = [
        result["late_by_send"][s]
        for s in sends
        if s in result["late_by_send"]
        and not (killed_at - timedelta(seconds=args.interval) < dues[s] <= restarted_at)
    ]
    outage = [
        result["late_by_send"][s]
        for s in sends
        if s in result["late_by_send"]
        and killed_at - timedelta(seconds=args.interval) < dues[s] <= restarted_at
    ]
    up.sort()
    result.update(
        {
            "interval_s": args.interval,
            "killed_after_s": (killed_at - first_due).total_seconds(),
            "down_s": (restarted_at - killed_at).total_seconds(),
            "late_up_p50_s": inbound._pick(up, 0.5) if up else float("nan"),
            "late_up_p99_s": inbound._pick(up, 0.99) if up else float("nan"),
            "late_up_max_s": up[-1] if up else float("nan"),
            "outage_sendings": len(outage),
            "outage_late_max_s": max(outage, default=float("nan")),
            **scheduled,
            **tick_report(read_events(events)),
        }
    )
    del result["late_by_send"]
    del result["sends"]
    inbound._log(
        f"W6 restart: {result['planned']}/{result['sendings']} planned, lost {result['lost']}, twice "
        f"{result['audit_planned_twice'] + result['rows_twice']}; "
        f"lateness p99 {result['late_up_p99_s']:.2f} s "
        f"(interval {args.interval:g} s), tick p99 {result['tick_late_p99_ms']:.1f} ms"
    )
    return result


def delivery_check(setup: Setup) -> dict[str, Any]:
    """The outbox against everything the fakes received, over the whole run: rows 'sent' that Twilio
    never got, rows 'interrupted' (left 'sending' by a stopped server, never resent) that it did or did
    not get, and messages a resident got twice. A message is (To, crc32 of the body)."""
    received: dict[tuple[str, int], int] = {}
    for path in setup.workdir.glob("fake-*.json"):
        for _, _, code, to, crc in json.loads(path.read_text())["log"]:
            if code == 201:
                received[(to, crc)] = received.get((to, crc), 0) + 1
    conn = sqlite3.connect(setup.path)
    rows = conn.execute(
        "SELECT o.status, a.address, o.body FROM outbox o JOIN addresses a ON a.id = o.address_id "
        "WHERE o.status IN ('sent', 'interrupted')"
    ).fetchall()
    conn.close()
    counts = {
        "sent_not_received": 0,
        "interrupted": 0,
        "interrupted_received": 0,
        "interrupted_never_sent": 0,
    }
    for status, address, body in rows:
        got = (address, zlib.crc32(body.encode())) in received
        if status == "sent":
            counts["sent_not_received"] += 0 if got else 1
        else:
            counts["interrupted"] += 1
            counts["interrupted_received" if got else "interrupted_never_sent"] += 1
    w6 = {phone(i) for i in range(W6_PARTICIPANTS)}  # W6's many sendings share one text
    counts["received_twice"] = sum(1 for (to, _), n in received.items() if n > 1 and to not in w6)
    counts["received"] = sum(received.values())
    return counts


# -- the run -----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, plan: Plan, workdir: Path) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    server_core, client_core = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    if args.server_core is not None:
        server_core = args.server_core
    if args.client_core is not None:
        client_core = args.client_core
    inbound._SERVER_CORE[0] = server_core
    cores = (
        ["--core", str(server_core)] if server_core is not None else [],
        ["--core", str(client_core)] if client_core is not None else [],
    )
    setup = Setup(args, plan, workdir)
    outcome: dict[str, Any] = {"cores": {"server": server_core, "client": client_core}, "plan": plan}
    try:
        t0 = time.perf_counter()
        await setup.create()
        outcome["setup_s"] = time.perf_counter() - t0
        inbound._log(
            f"set-up done in {outcome['setup_s']:.1f} s ({plan.participants:,} participants, "
            f"{plan.reply_residents:,} other residents)"
        )
        if client_core is not None:
            os.sched_setaffinity(0, {client_core})
        outcome["background_cpu"] = await inbound.background_load(args.wait_quiet)

        outcome["w3"] = await w3(setup, cores[0], filtered=not args.quick)
        if args.big:
            outcome["w3_big"] = await w3_big(args, workdir, cores[0])

        maker = inbound.FormMaker(signed=True, seed=args.seed)
        maker.self_check()
        reply_cursor = [0]
        phases = []
        l10 = SendPhase("L=10", 10.0, plan.latency, plan.l10_seconds, plan.reply_rate_l10, 0.0, "serve")
        phases.append(await send_phase(setup, l10, cores, maker, reply_cursor))
        if plan.w6a_sendings:
            # W6 (a): serve's own jobs (send_due every 30 s). The sendings fall due between its first
            # run (at start-up) and its second, 30 s later, so the second plans them all at once.
            first_due = setup.clock() + timedelta(seconds=8.0)
            w6a = await schedule_sendings(setup, plan.w6a_sendings, first_due, plan.w6a_span)
            w6_phase = SendPhase("L=100+W6", 100.0, plan.latency, 36.0, plan.reply_rate_w6, 0.0, "serve")

            async def all_planned() -> None:
                await wait_planned(setup, w6a["sends"], 30.0)

            phases.append(
                await send_phase(setup, w6_phase, cores, maker, reply_cursor, before_stop=all_planned)
            )
            report = sending_report(setup, w6a.pop("sends"))
            del report["late_by_send"]
            outcome["w6_serve"] = {
                **report,
                **w6a,
                **tick_report(phases[-1]["events"]),
                "webhook_p99_ms": phases[-1]["webhook"].get("p99_ms"),
                "webhook_max_ms": phases[-1]["webhook"].get("max_ms"),
            }
        l100 = SendPhase(
            "L=100",
            100.0,
            plan.latency,
            plan.l100_bulk_seconds + plan.l100_reply_seconds,
            plan.reply_rate_l100,
            plan.l100_bulk_seconds,
        )
        phases.append(await send_phase(setup, l100, cores, maker, reply_cursor))
        ceiling = SendPhase("ceiling", 100_000.0, 0.0, plan.ceiling_seconds)
        phases.append(await send_phase(setup, ceiling, cores, maker, reply_cursor, py_spy=args.py_spy))
        outcome["w4"] = phases
        outcome["w6_restart"] = await w6_restart(setup, plan, args, cores)
        if args.what_if_claim_index:
            # not Loopline's schema: an index that matches claim_due's ORDER BY, in this run's database
            conn = sqlite3.connect(setup.path)
            conn.execute("CREATE INDEX ix_bench_outbox_claim ON outbox (status, priority, id)")
            conn.close()
            what_if = SendPhase("ceiling+ix", 100_000.0, 0.0, plan.ceiling_seconds)
            outcome["what_if"] = await send_phase(setup, what_if, cores, maker, reply_cursor)
        outcome["delivery"] = await asyncio.to_thread(delivery_check, setup)
        conn = sqlite3.connect(setup.path)
        outcome["outbox"] = dict(
            conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
        )
        outcome["outbox_rows_twice"] = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE send_id IS NOT NULL "
            "GROUP BY send_id, resident_id HAVING count(*) > 1)"
        ).fetchone()[0]
        conn.close()
    finally:
        await setup.close()
    outcome["clock_offset_s"] = setup.offset
    outcome["quiet_hours"] = setup.quiet
    return outcome


async def w3_big(args: argparse.Namespace, workdir: Path, core: list[str]) -> dict[str, Any]:
    """W3 alone with 1M participants, in its own database."""
    big_dir = workdir / "big"
    big_dir.mkdir()
    big_args = argparse.Namespace(**{**vars(args), "quick": False, "participants": 1_000_000})
    big_plan = dataclasses.replace(Plan.of(big_args), reply_residents=0)
    setup = Setup(big_args, big_plan, big_dir)
    try:
        t0 = time.perf_counter()
        await setup.create()
        inbound._log(f"--big: set-up of 1,000,000 participants in {time.perf_counter() - t0:.1f} s")
        return await w3(setup, core, probe=False)
    finally:
        await setup.close()


# ---------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------


def _f(value: float | None, spec: str = ",.2f") -> str:
    return inbound._fmt(value, spec)


def _growth(plan: dict[str, Any]) -> float:
    hwm = plan["rss_growth_hwm_mb"]
    return float(hwm if hwm is not None else plan["rss_growth_sampled_mb"])


def targets(outcome: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """(name, value, goal, met) for performance.md's targets."""
    w3r = outcome["w3"]
    phases = {p["phase"]: p for p in outcome["w4"]}
    l10, l100, ceiling = phases["L=10"], phases["L=100"], phases["ceiling"]
    restart = outcome["w6_restart"]
    low, high = TARGET_R_SEND
    ratio = f">= {TARGET_ENQUEUE_OVER_RAW}"
    rows: list[tuple[str, float, str, bool]] = []

    def add(name: str, value: float, goal: str, ok: bool) -> None:
        rows.append((name, value, goal, bool(ok)))

    for label, r in (("W3", w3r), ("W3 1M", outcome.get("w3_big"))):
        if r is None:
            continue
        add(
            f"{label} enqueue / executemany (outbox)",
            r["over_raw_outbox"],
            ratio,
            r["over_raw_outbox"] >= 0.4,
        )
        add(
            f"{label} enqueue / executemany (minimal)",
            r["over_raw_minimal"],
            ratio,
            r["over_raw_minimal"] >= 0.4,
        )
        growth = _growth(r["plan"])
        add(f"{label} RSS growth planning (MB)", growth, f"<= {TARGET_RSS_GROWTH_MB:g}", growth <= 50)
        add(f"{label} schedule call (ms)", r["schedule_call_ms"], "<= 200", r["schedule_call_ms"] <= 200)
    for p in (l10, l100):
        ok = low <= p["r_min"] and p["r_max"] <= high + p["r_tolerance"]
        add(f"W4 R_send L={p['L']:g}, lowest window", p["r_min"], "0.98-1.00", ok)
        add(f"W4 R_send L={p['L']:g}, highest window", p["r_max"], "0.98-1.00", ok)
    too_many = sum(p["too_many"] for p in outcome["w4"])
    add("W4 429s caused (all phases)", float(too_many), "== 0", too_many == 0)
    ahead = max(l10["max_ahead_s"], l100["max_ahead_s"])
    add(
        "W4 provider queue ahead (s)",
        ahead,
        f"<= {TARGET_AHEAD_S:g}",
        ahead <= TARGET_AHEAD_S + AHEAD_TOLERANCE_S,
    )
    for p in (l100, l10):
        p99 = p["reply_p99_ms"] / 1000
        add(
            f"W4 reply p99 at L={p['L']:g} (s)",
            p99,
            "<= 2",
            p99 <= TARGET_REPLY_P99_S and not p["replies_missing"],
        )
    add(
        "W4 send-path ceiling (msgs/s)",
        ceiling["msgs_per_s"],
        ">= 2,000",
        ceiling["msgs_per_s"] >= TARGET_SEND_CEILING,
    )
    cpu = l100["server_cpu_bulk_only"]
    add(
        "W4 CPU at L=100, bulk only (cores)",
        cpu if cpu is not None else float("nan"),
        "<= 0.05",
        cpu is not None and cpu <= TARGET_CPU_AT_100,
    )
    lost = outcome["delivery"]["interrupted_never_sent"]
    add("W4 claimed rows never sent (stops)", float(lost), "== 0", lost == 0)
    twice = outcome["delivery"]["received_twice"]
    add("W4 messages received twice", float(twice), "== 0", twice == 0)
    add(
        "W6 tick lateness p99 (ms)",
        restart["tick_late_p99_ms"],
        "<= 50",
        restart["tick_late_p99_ms"] <= TARGET_TICK_P99_MS,
    )
    cases = [(f"{restart['interval_s']:g} s job", restart["late_up_p99_s"])]
    if outcome.get("w6_serve"):
        cases.append(("serve's 30 s job", outcome["w6_serve"]["late_p99_s"]))
    for label, late in cases:
        add(
            f"W6 late p99 / grace, {label}", late / MISFIRE_GRACE_S, "<= 0.05", late / MISFIRE_GRACE_S <= 0.05
        )
    add("W6 restart: sendings lost", float(restart["lost"]), "== 0", restart["lost"] == 0)
    twice = restart["audit_planned_twice"] + restart["rows_twice"] + restart["wrong_row_count"]
    add("W6 restart: planned twice", float(twice), "== 0", twice == 0)
    add(
        "W6 schedule call p99 (ms)",
        restart["schedule_call_p99_ms"],
        "<= 5",
        restart["schedule_call_p99_ms"] <= 5,
    )
    return rows


def write_w3(out: Any, label: str, r: dict[str, Any]) -> None:
    p, raw = r["plan"], r["raw"]
    line = "{:<34}{:>10,}{:>10.3f}{:>12,.0f}{:>8}\n"
    out.write(line.format(f"{label} send_due (everyone)", r["rows"], p["seconds"], r["rows_per_s"], ""))
    for name, seconds, key in (
        ("  executemany, Loopline's outbox", raw["executemany_outbox_s"], "outbox"),
        ("  executemany, minimal table", raw["executemany_minimal_s"], "minimal"),
        ("  raw INSERT ... SELECT, outbox", raw["insert_select_s"], "insert_select"),
    ):
        rate = r[f"raw_{key}_rows_per_s"]
        out.write(line.format(name, raw["rows"], seconds, rate, f"{r[f'over_raw_{key}']:.3f}"))
    f = r["filtered"]
    if f:
        out.write(
            line.format("  send_due (rating <= 2)", f["rows"], f["seconds"], f["rows"] / f["seconds"], "")
        )
    out.write(
        f"  RSS growth while planning: {_f(p['rss_growth_hwm_mb'], '.1f')} MB (VmHWM, reset just before), "
        f"{p['rss_growth_sampled_mb']:.1f} MB (VmRSS sampled every 2 ms); the child's peak over its life "
        f"{r['plan_child_max_rss_mb']:.0f} MB (getrusage)\n"
        f"  while planning, other writers waited up to {p['writer_wait_max_ms']:,.0f} ms for db.writing(); "
        f"longest event-loop stall {p['loop_lag_max_ms']:.1f} ms; the first send_due of the fresh process "
        f"(5 rows) took {1000 * p['cold_warm_up_s']:.0f} ms\n"
        f"  Closing.schedule() {r['schedule_call_ms']:.1f} ms; messages: "
        + "; ".join(
            f"{m['count']:,} x {m['characters']} characters, {m['segments_loopline']} segments "
            f"(Twilio: {m['segments_twilio']})"
            for m in r["messages"]
        )
        + "\n"
    )


def write_w4(out: Any, plan: Plan, outcome: dict[str, Any]) -> None:
    out.write(
        "\nW4 send rate (segments as Twilio counts them; R_send over sliding windows after the first 2 s)\n"
    )
    header = (
        f"{'phase':<9}{'L':>8}{'window':>7}{'msgs/s':>9}{'segs/s':>9}{'R_send':>7}{'R min':>7}{'R max':>7}"
        f"{'429s':>5}{'ahead':>6}{'replies':>8}{'rep p50':>8}{'rep p99':>8}{'hook p99':>9}{'CPU':>7}\n"
    )
    out.write(header + "-" * (len(header) - 1) + "\n")
    for p in outcome["w4"]:
        out.write(
            f"{p['phase']:<9}{p['L']:>8,.0f}{_f(p.get('window_width_s'), '.0f'):>7}{p['msgs_per_s']:>9,.1f}"
            f"{p['segments_per_s']:>9,.1f}{_f(p['r_send'], '.3f'):>7}{_f(p['r_min'], '.3f'):>7}"
            f"{_f(p['r_max'], '.3f'):>7}{p['too_many']:>5}{_f(p['max_ahead_s'], '.2f'):>6}{p['replies']:>8}"
            f"{_f(p['reply_p50_ms'] / 1000, '.2f'):>8}{_f(p['reply_p99_ms'] / 1000, '.2f'):>8}"
            f"{_f(p['webhook'].get('p99_ms'), '.1f'):>9}{p['server_cpu']:>7.3f}\n"
        )
    out.write(
        "(window: the sliding window's width in s; ahead: the provider's queue at its longest, in s of "
        "sending; rep: webhook -> reply at the fake, s;\n hook p99: the webhook's own answer, ms; CPU: cores "
        "used by the Loopline process)\n"
    )
    phases = {p["phase"]: p for p in outcome["w4"]}
    l10, l100, ceiling = phases["L=10"], phases["L=100"], phases["ceiling"]
    probe = outcome["w3"]["plan"]["probe"]
    per_k = 1000 * ceiling["server_cpu"] / ceiling["msgs_per_s"] if ceiling["msgs_per_s"] else float("nan")
    delivery = outcome["delivery"]
    lags = ", ".join(
        f"{p['phase']} {_f(e['loop_lag_max_ms'], '.0f')} ms at {_f(e['loop_lag_max_at_s'], '.1f')} s"
        f" ({_f(e['loop_lag_max_after_3s_ms'], '.0f')} ms after 3 s)"
        for p in outcome["w4"]
        for e in (p["events_summary"],)
    )
    out.write(
        f"L=100: {_f(l100['server_cpu_bulk_only'], '.3f')} cores while only the bulk drained, "
        f"{l100['server_cpu']:.3f} with {plan.reply_rate_l100:g} replies/s; L=10 replies at "
        f"{plan.reply_rate_l10:g}/s. Ceiling: {ceiling['msgs_per_s']:,.0f} msgs/s at "
        f"{ceiling['server_cpu']:.2f} cores ({per_k:.2f} CPU-ms per send); first send "
        f"{_f(l10.get('first_send_after_ready_s'), '.2f')} s after the server was ready\n"
        f"longest event-loop stall in the server: {lags}\n"
        f"send-path transactions on the {probe['queued']:,} rows just planned: claim_due "
        + ", ".join(f"limit {k}: {v:.1f} ms" for k, v in probe["claim_ms"].items())
        + f"; mark_sent of {probe['mark_batch']} rows: {probe['mark_batch_ms']:.1f} ms (one transaction)\n"
        f"  claim query plan: {' | '.join(probe['claim_query_plan'])}\n"
        f"rows left 'sending' by a stopped server, reported interrupted and never resent: "
        f"{delivery['interrupted']} ({delivery['interrupted_never_sent']} never reached Twilio); "
        f"'sent' rows Twilio never got: {delivery['sent_not_received']}; messages received twice: "
        f"{delivery['received_twice']} (of {delivery['received']:,} received)\n"
    )
    what_if = outcome.get("what_if")
    if what_if:
        out.write(
            f"what-if (not Loopline's schema: an index ON outbox (status, priority, id) added to this run's "
            f"database at the end): ceiling {what_if['msgs_per_s']:,.0f} msgs/s at "
            f"{what_if['server_cpu']:.2f} cores, against {ceiling['msgs_per_s']:,.0f} without\n"
        )
    profile = ceiling.get("profile")
    if profile:
        out.write(
            f"py-spy on the server during the ceiling phase ({profile['samples']} samples), inclusive %:\n"
        )
        for name, pct in profile["inclusive_pct"]:
            out.write(f"    {pct:5.1f}  {name}\n")


def write_w6(out: Any, outcome: dict[str, Any]) -> None:
    out.write("\nW6 scheduler (a sending's lateness: planned_at - due_at; tick: APScheduler's own firing)\n")
    header = (
        f"{'case':<32}{'sendings':>9}{'late p50':>9}{'p99':>7}{'max':>7}{'tick p50':>9}{'p99':>7}{'max':>7}"
        f"{'send_due':>9}{'lost':>5}{'twice':>6}\n"
    )
    out.write(header + "-" * (len(header) - 1) + "\n")
    restart = outcome["w6_restart"]
    cases = []
    if outcome.get("w6_serve"):
        cases.append(("serve's job, every 30 s", outcome["w6_serve"], "late"))
    cases.append((f"every {restart['interval_s']:g} s, killed, restarted", restart, "late_up"))
    for label, r, key in cases:
        out.write(
            f"{label:<32}{r['sendings']:>9}{_f(r[key + '_p50_s'], '.2f'):>9}{_f(r[key + '_p99_s'], '.2f'):>7}"
            f"{_f(r[key + '_max_s'], '.2f'):>7}{_f(r['tick_late_p50_ms'], '.1f'):>9}"
            f"{_f(r['tick_late_p99_ms'], '.1f'):>7}{_f(r['tick_late_max_ms'], '.1f'):>7}"
            f"{_f(r['send_due_p50_ms'], '.0f'):>9}{r['lost']:>5}"
            f"{r['audit_planned_twice'] + r['rows_twice']:>6}\n"
        )
    serve = outcome.get("w6_serve")
    if serve:
        out.write(
            f"serve's job: its run that planned the sendings took {_f(serve['send_due_max_ms'], ',.0f')} ms "
            f"in one transaction under db.writing(); webhooks meanwhile "
            f"({outcome['plan'].reply_rate_w6:g}/s): "
            f"p99 {_f(serve['webhook_p99_ms'], ',.0f')} ms, max {_f(serve['webhook_max_ms'], ',.0f')} ms\n"
        )
    out.write(
        "(late: seconds; tick and send_due: ms, send_due's median run)\n"
        f"restart: SIGKILL {restart['killed_after_s']:.1f} s in, down {restart['down_s']:.1f} s; "
        f"{restart['outage_sendings']} sendings fell due meanwhile, planned at most "
        f"{_f(restart['outage_late_max_s'], '.2f')} s late; rows reported interrupted at each start: "
        f"{restart['interrupted_at_start']}; unique(send_id, resident_id): {restart['unique_constraint']}; "
        f"schedule() p50 {restart['schedule_call_p50_ms']:.1f} ms, "
        f"p99 {restart['schedule_call_p99_ms']:.1f} ms\n"
    )


def report(args: argparse.Namespace, plan: Plan, outcome: dict[str, Any], elapsed: float) -> dict[str, Any]:
    out = sys.stdout
    cores = outcome["cores"]
    scored = targets(outcome)
    out.write(
        f"\nLoopline W3/W4/W6: You Said, We Did planned, sent and scheduled   [sqlite, SQLite WAL "
        f"synchronous={args.synchronous.upper()}, {plan.participants:,} participants, fake Twilio answers in "
        f"{1000 * plan.latency:g} ms{', quick' if args.quick else ''}{', big' if args.big else ''}]\n"
        f"Loopline on core {cores['server']}, the fake and this process on core {cores['client']}; "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, uvloop {inbound.UVLOOP_VERSION}, SQLite {sqlite3.sqlite_version}\n\n"
    )
    out.write("W3 enqueue: one sending planned by Closing.send_due, and the ceilings on a copy of the data\n")
    out.write(f"{'':<34}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'ratio':>8}\n")
    write_w3(out, f"{outcome['w3']['participants']:,}", outcome["w3"])
    if outcome.get("w3_big"):
        write_w3(out, f"{outcome['w3_big']['participants']:,}", outcome["w3_big"])
    write_w4(out, plan, outcome)
    write_w6(out, outcome)
    out.write(
        f"outbox after the run: {outcome['outbox']}\n\n{'target':<38}{'value':>10}  {'goal':<10}result\n"
    )
    for name, value, goal, ok in scored:
        shown = _f(value, ".3f" if abs(value) < 10 else ",.1f")
        out.write(f"{name:<38}{shown:>10}  {goal:<10}{'PASS' if ok else 'MISS'}\n")
    warnings = []
    if outcome["background_cpu"] > 0.15:
        warnings.append(f"other processes used {outcome['background_cpu']:.2f} cores before the run: noisy")
    for p in outcome["w4"]:
        if p["foreign_cpu"] > 0.25:
            warnings.append(f"W4 {p['phase']}: other processes used {p['foreign_cpu']:.2f} cores meanwhile")
        for key, what in (
            ("other_errors", "answers other than 201/429"),
            ("replies_missing", "replies missing"),
        ):
            if p[key]:
                warnings.append(f"W4 {p['phase']}: {p[key]} {what}")
        if p["webhook"].get("errors"):
            warnings.append(f"W4 {p['phase']}: {p['webhook']['errors']} webhook errors")
    if args.quick:
        warnings.append("--quick: W4 windows are shorter than 60 s; W6 with serve's 30 s job is not run")
    if warnings:
        out.write("\nwarnings:\n" + "".join(f"  - {w}\n" for w in warnings))
    out.write(f"\ntotal time {elapsed:.1f} s\n\n")
    document = {
        "benchmark": "W3/W4/W6 You Said, We Did: enqueue, send rate, scheduler",
        "config": {**vars(args), "plan": dataclasses.asdict(plan)},
        "environment": {
            "cpus": os.cpu_count(),
            "cores": cores,
            "background_cpu_before": outcome["background_cpu"],
            "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "uvloop": inbound.UVLOOP_VERSION,
            "sqlite": sqlite3.sqlite_version,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "clock_offset_s": outcome["clock_offset_s"],
            "quiet_hours_used": outcome["quiet_hours"],
        },
        **{
            key: outcome.get(key)
            for key in ("w3", "w3_big", "w4", "w6_serve", "w6_restart", "what_if", "delivery", "outbox")
        },
        "targets": [{"name": n, "value": v, "goal": g, "pass": ok} for n, v, g, ok in scored],
        "warnings": warnings,
        "seconds": round(elapsed, 1),
    }
    out.write(json.dumps(inbound._no_nan(document), default=inbound._json_default, allow_nan=False) + "\n")
    out.flush()
    return document


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/broadcast.py",
        description="W3 (enqueue), W4 (send rate) and W6 (scheduler) for You Said, We Did.",
    )
    parser.add_argument(
        "--participants", type=int, help="participants of the example survey (100000; quick 10000)"
    )
    parser.add_argument(
        "--big", action="store_true", help="also W3 with 1,000,000 participants (own database)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=150.0, help="fake Twilio's answer time at L=10/100 (150)"
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, help="send_due interval for W6's restart case (1)"
    )
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL", "normal", "full"])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (< 60 s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--wait-quiet", type=float, default=0.0, metavar="S", help="wait up to S s for a quiet machine"
    )
    parser.add_argument("--server-core", type=int)
    parser.add_argument("--client-core", type=int)
    parser.add_argument(
        "--py-spy", metavar="FILE", help="py-spy the server during the ceiling phase (raw format)"
    )
    parser.add_argument(
        "--what-if-claim-index",
        action="store_true",
        help="at the end, the ceiling again with an index ON outbox (status, priority, id) (bench-only)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] == inbound.CHILD:
        child_main(argv[1:])
        return 0
    args = parse_args(argv)
    plan = Plan.of(args)
    random.seed(args.seed)
    return inbound.run_benchmark(
        lambda workdir: run(args, plan, workdir),
        lambda outcome, seconds: report(args, plan, outcome, seconds),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
