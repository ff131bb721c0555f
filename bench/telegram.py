"""W5: Telegram ingress, a webhook update to reply queued, beside W1 and the calibration probes
(performance.md §7 W5 and §4.2).

Run from the repository root::

    .venv/bin/python bench/telegram.py            # default run: 100k residents, about 70 s
    .venv/bin/python bench/telegram.py --quick    # smoke run: 10k residents, about 35 s

Every server runs in its own process pinned to one core (uvloop, access log off); the load generator runs
in this process pinned to the other core. All of it is ``bench/inbound.py``'s machinery. The phases, in
order:

* ``CAL_HTTP``, ``CAL_DB (HTTP)``, ``CAL_DB (step)`` and ``W1 closed loop``: ``inbound.run`` without its
  open loops, with the same residents count and the same number of connections as W5.
* ``W5 closed loop``: Loopline's real server (``bots.app.build`` + ``bots.web.create_app``, the sender not
  started) with Telegram configured, taking webhook updates from residents working through the example
  survey by typing, at N keep-alive connections (40: Telegram's default ``max_connections``).
* ``W5 open loop 50%``: the same server at half of that maximum, latency from the intended send time.
* ``W5 redelivered``: updates already answered are delivered again (same ``update_id``); nothing may be
  stored twice.
* ``W5 presses`` (only with ``--press-probe N``): button presses, one at a time (see bench/README.md).

``TELEGRAM_API_BASE_URL`` points at a tripwire on 127.0.0.1: a listener that serves no Bot API, counts
every connection and closes it. The webhook path must not need the Bot API, so the text phases must leave
it at zero. The table and the targets go to stdout, followed by one JSON document; progress goes to
stderr. Nothing is written inside the repository. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import secrets
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    # Run as a script, bench/ comes first on sys.path, where this very file would shadow
    # python-telegram-bot's ``telegram`` package: put the repository root there instead.
    del sys.path[0]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import inbound  # noqa: E402
from bench.inbound import (  # noqa: E402
    Child,
    PhaseResult,
    Plan,
    RawLoad,
    ResidentCursor,
    phase_warnings,
    run_phase,
    w1_messages,
    write_tables,
)

WEBHOOK_PATH = "/webhooks/telegram"
CHAT_BASE = 6_100_000_000  # resident i writes from the private chat CHAT_BASE + i (a user id's size)
OPEN_FRACTION = 0.5

# Targets: performance.md §7 W5 (each channel >= 0.8 x W1's rate). The ceiling ratios are derived: 0.8 x
# W1's own targets against CAL_DB (HTTP) and CAL_HTTP; the p99 goal is W1's.
TARGET_W5_OVER_W1 = 0.8
TARGET_W5_OVER_CAL_DB = round(TARGET_W5_OVER_W1 * inbound.TARGET_W1_OVER_CAL_DB, 3)
TARGET_W5_OVER_CAL_HTTP = round(TARGET_W5_OVER_W1 * inbound.TARGET_W1_OVER_CAL_HTTP, 3)


def chat_address(index: int) -> str:
    """The Telegram address of resident ``index``: its chat id, as Loopline stores it."""
    return str(CHAT_BASE + index)


def _telegram_fakes() -> ModuleType:
    """``tests.fakes.telegram_api`` (not an installed package): updates shaped as the tests shape them."""
    from tests.fakes import telegram_api

    return telegram_api


class UpdateMaker:
    """Telegram webhook deliveries: an Update from ``tests/fakes/telegram_api.py`` (``update_text``,
    ``update_button``) with the next ``update_id``, as the HTTP request Telegram's servers send (JSON body,
    the secret token header), pre-encoded."""

    def __init__(self, secret: str, seed: int) -> None:
        self.fakes = _telegram_fakes()
        self.secret = secret
        self.update_id = random.Random(seed).randrange(100_000_000, 800_000_000)
        self.head = (
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {inbound.PUBLIC_HOST}\r\n"
            "Content-Type: application/json\r\nAccept-Encoding: gzip, deflate\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {secret}\r\nContent-Length: "
        )

    def _next_id(self) -> int:
        self.update_id += 1
        return self.update_id

    def text(self, chat: str, text: str) -> dict[str, Any]:
        return self.fakes.update_text(int(chat), text, update_id=self._next_id())

    def press(self, chat: str, data: str, message_id: int) -> dict[str, Any]:
        return dict(
            self.fakes.update_button(int(chat), data, message_id=message_id, update_id=self._next_id())
        )

    def request(self, update: dict[str, Any]) -> bytes:
        body = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return f"{self.head}{len(body)}\r\n\r\n".encode("ascii") + body

    def texts(self, messages: Sequence[tuple[str, str]]) -> list[bytes]:
        return [self.request(self.text(chat, text)) for chat, text in messages]

    def self_check(self) -> None:
        """Loopline's own adapter must accept what we send: the secret, the sender, the text, the id."""
        from channels.base import HttpRequest
        from channels.telegram import Telegram

        telegram = Telegram(token=self.fakes.DEFAULT_TOKEN, webhook_secret=self.secret)
        for text in ("PARKS", "parks", "1", "4", *inbound.STEP_TEXTS, "Ça va? £5 & 100%"):
            chat = chat_address(12345)
            update = self.text(chat, text)
            head, _, body = self.request(update).partition(b"\r\n\r\n")
            lines = head.decode("ascii").split("\r\n")[1:]
            headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
            if int(headers["content-length"]) != len(body):
                raise AssertionError("wrong Content-Length")
            if not telegram.verify(
                HttpRequest(url=inbound.PUBLIC_URL + WEBHOOK_PATH, headers=headers, body=body)
            ):
                raise AssertionError("the secret token header does not verify")
            message = telegram.parse_update(body)
            if message is None or (message.sender, message.text, message.provider_id) != (
                chat,
                text,
                str(update["update_id"]),
            ):
                raise AssertionError(f"the update for {text!r} does not parse back: {message}")


class Tripwire:
    """Where ``TELEGRAM_API_BASE_URL`` points: no Bot API, only a count of the connections made."""

    def __init__(self) -> None:
        self.contacts = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.contacts += 1
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def w1_args_for(args: argparse.Namespace) -> argparse.Namespace:
    """``bench/inbound.py``'s options for the calibration probes and the W1 closed loop of this run."""
    argv = ["--connections", str(args.connections), "--seed", str(args.seed)]
    argv += ["--synchronous", args.synchronous, "--wait-quiet", str(args.wait_quiet)]
    for option in ("residents", "requests", "seconds", "server_core", "client_core"):
        value = getattr(args, option)
        if value is not None:
            argv += [f"--{option.replace('_', '-')}", str(value)]
    if args.quick:
        argv.append("--quick")
    return inbound.parse_args(argv)


async def run(args: argparse.Namespace, plan: Plan, workdir: Path) -> dict[str, Any]:
    synchronous = args.synchronous.upper()
    rng = random.Random(args.seed + 100)
    tripwire = Tripwire()

    # ---- W5 set-up (before any timing): its own database, its residents on Telegram ----
    t_setup = time.perf_counter()
    db_url = f"sqlite+aiosqlite:///{workdir / 'telegram.db'}"
    from store import migrate

    await asyncio.to_thread(migrate.upgrade, db_url)
    await inbound.load_loopline_data(
        db_url, plan.residents, synchronous, channel="telegram", address=chat_address
    )
    secret = secrets.token_urlsafe(32)
    maker = UpdateMaker(secret, args.seed + 200)
    maker.self_check()
    cursor = ResidentCursor(plan.residents, rng)
    slots = max(128, 4 * plan.connections)
    messages, kinds = w1_messages(plan.requests, rng, cursor, slots, address=chat_address)
    closed_requests = maker.texts(messages)
    api_url = await tripwire.start()
    settings = {
        "TELEGRAM_BOT_TOKEN": maker.fakes.DEFAULT_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": secret,
        "TELEGRAM_API_BASE_URL": api_url,
    }
    inbound._log(
        f"W5 set-up done in {time.perf_counter() - t_setup:.1f} s ({plan.residents:,} Telegram residents)"
    )

    try:
        # ---- the calibration probes and W1 (bench/inbound.py), same residents, same connections ----
        outcome = await inbound.run(args.w1_args, plan, workdir)
        results: list[PhaseResult] = outcome["results"]
        server_core = outcome["cores"]["server"]
        core_option = ["--core", str(server_core)] if server_core is not None else []
        setting_options = [
            part for key, value in settings.items() for part in ("--setting", f"{key}={value}")
        ]

        # ---- W5: Loopline's real server with Telegram configured ----
        mix: Counter[str] = Counter()
        answered = 0
        server = await Child.start(
            "loopline",
            *core_option,
            "--url",
            db_url,
            "--synchronous",
            synchronous,
            "--clock-offset",
            str(outcome["clock_offset_s"]),
            *setting_options,
        )
        profile: dict[str, Any] | None = None
        try:
            py_spy = None
            if args.py_spy:
                py_spy = await inbound.start_py_spy(
                    server.pid, plan.warm + plan.w1_seconds, args.py_spy, outcome["cores"]["client"]
                )
            load = RawLoad(server.port, closed_requests, plan.connections)
            w5 = await run_phase("W5 closed loop", load, server.pid, warm=plan.warm, seconds=plan.w1_seconds)
            w5.extra["connections"] = plan.connections
            results.append(w5)
            answered += sum(1 for code in load.record.status if code == 200)
            mix.update(kinds[: w5.requests])
            if w5.requests >= len(closed_requests):
                inbound._log("note: W5 used every pre-built update before its time was up (raise --requests)")
            if py_spy is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(py_spy.wait(), 30)
                inbound._CHILD_PIDS.discard(py_spy.pid)
                profile = inbound.summarise_py_spy(args.py_spy)

            rate = max(1.0, w5.throughput * OPEN_FRACTION)
            count = math.ceil(rate * (plan.warm + plan.open_seconds))
            messages, open_kinds = w1_messages(count, rng, cursor, slots, address=chat_address)
            load = RawLoad(server.port, maker.texts(messages), plan.connections)
            half = await run_phase(
                f"W5 open loop {OPEN_FRACTION:.0%}",
                load,
                server.pid,
                warm=plan.warm,
                seconds=plan.open_seconds,
                rate=rate,
            )
            half.extra["fraction_of_max"] = OPEN_FRACTION
            results.append(half)
            answered += sum(1 for code in load.record.status if code == 200)
            mix.update(open_kinds[: half.requests])

            # Redeliveries: updates answered at the start of the closed loop, sent again as they were.
            again = closed_requests[: min(args.redeliveries, w5.requests)]
            load = RawLoad(server.port, again, min(plan.connections, len(again)))
            redelivered = await run_phase("W5 redelivered", load, server.pid, warm=0.0, seconds=30.0)
            redelivered.mode = "burst"
            results.append(redelivered)
            text_contacts = tripwire.contacts

            presses = None
            if args.press_probe:
                presses = await press_probe(args.press_probe, server, maker, rng, plan.residents)
                results.append(presses)
                answered += presses.requests - presses.errors  # stored, like any update
        finally:
            await server.stop()
        rows = await inbound.count_rows(db_url)
    finally:
        await tripwire.stop()
    return {
        **outcome,
        "results": results,
        "w1_rows": outcome["rows"],
        "w5_rows": rows,
        "w5_answered": answered,
        "w5_mix": dict(mix),
        "w5_wrapped": cursor.wrapped,
        "bot_api_contacts_text": text_contacts,
        "bot_api_contacts_total": tripwire.contacts,
        "profile": profile,
    }


async def press_probe(
    count: int, server: Child, maker: UpdateMaker, rng: random.Random, residents: int
) -> PhaseResult:
    """Button presses one at a time, for questions Loopline never sent: each is stored, answered 200 and
    found stale; then its acknowledgement runs in the background against the tripwire."""
    from channels.telegram import encode_button

    data = encode_button("visits", "weekly")
    requests = [
        maker.request(maker.press(chat_address(rng.randrange(residents)), data, rng.randrange(10**6)))
        for _ in range(count)
    ]
    load = RawLoad(server.port, requests, 1)
    result = await run_phase("W5 presses (stale)", load, server.pid, warm=0.0, seconds=60.0)
    result.mode = "burst"
    await asyncio.sleep(1.0)  # let the last acknowledgement fail
    return result


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def _cpu_ms(result: PhaseResult) -> float | None:
    """Server CPU per answered request (ms)."""
    if not result.server_cpu or not result.throughput:
        return None
    if result.mode == "burst":  # short phases: the whole phase's CPU over all its requests
        answered = result.requests - result.errors
        return round(1000 * result.server_cpu * result.seconds / answered, 3) if answered else None
    return round(1000 * result.server_cpu / result.throughput, 3)


def report(args: argparse.Namespace, plan: Plan, outcome: dict[str, Any], elapsed: float) -> dict[str, Any]:
    results: list[PhaseResult] = outcome["results"]
    by_name = {r.name: r for r in results}
    cal_http, cal_db, step = by_name["CAL_HTTP"], by_name["CAL_DB (HTTP)"], by_name["CAL_DB (step)"]
    w1, w5 = by_name["W1 closed loop"], by_name["W5 closed loop"]
    half = by_name[f"W5 open loop {OPEN_FRACTION:.0%}"]
    redelivered = by_name["W5 redelivered"]
    presses = by_name.get("W5 presses (stale)")
    w5_rows = outcome["w5_rows"]
    stored_twice = max(0, w5_rows["inbound_messages"] - outcome["w5_answered"])
    w5_phases = [r for r in results if r.name.startswith("W5") and r is not presses]

    ratios = {
        "w5_over_w1": _ratio(w5.throughput, w1.throughput),
        "w5_over_cal_db_http": _ratio(w5.throughput, cal_db.throughput),
        "w5_over_cal_http": _ratio(w5.throughput, cal_http.throughput),
        "w5_over_cal_db_step": _ratio(w5.throughput, step.throughput),
        "w1_over_cal_db_http": _ratio(w1.throughput, cal_db.throughput),
        "w1_over_cal_http": _ratio(w1.throughput, cal_http.throughput),
        "cal_db_http_over_cal_http": _ratio(cal_db.throughput, cal_http.throughput),
        # the same comparison by the server's own CPU per message: less sensitive to a shared machine
        "w1_cpu_over_w5_cpu": _ratio(_cpu_ms(w1) or math.nan, _cpu_ms(w5) or math.nan),
    }
    targets = [
        ("W5 / W1 (closed loops)", ratios["w5_over_w1"], f">= {TARGET_W5_OVER_W1}"),
        ("W5 / W1 by server CPU per msg", ratios["w1_cpu_over_w5_cpu"], f">= {TARGET_W5_OVER_W1}"),
        ("W5 / CAL_DB (HTTP)  [0.8 x W1's]", ratios["w5_over_cal_db_http"], f">= {TARGET_W5_OVER_CAL_DB}"),
        ("W5 / CAL_HTTP       [0.8 x W1's]", ratios["w5_over_cal_http"], f">= {TARGET_W5_OVER_CAL_HTTP}"),
        ("W5 p99 at 50% of max (ms) [W1's]", half.p99_ms, f"<= {inbound.TARGET_P99_AT_HALF_MS:g}"),
        ("W5 errors (text + redelivered)", float(sum(r.errors for r in w5_phases)), "== 0"),
        ("Redelivered updates stored twice", float(stored_twice), "== 0"),
        ("Bot API connections (text path)", float(outcome["bot_api_contacts_text"]), "== 0"),
    ]
    checks = [
        ratios["w5_over_w1"] >= TARGET_W5_OVER_W1,
        ratios["w1_cpu_over_w5_cpu"] >= TARGET_W5_OVER_W1,
        ratios["w5_over_cal_db_http"] >= TARGET_W5_OVER_CAL_DB,
        ratios["w5_over_cal_http"] >= TARGET_W5_OVER_CAL_HTTP,
        half.p99_ms <= inbound.TARGET_P99_AT_HALF_MS and half.errors == 0,
        all(r.errors == 0 for r in w5_phases),
        stored_twice == 0 and redelivered.errors == 0,
        outcome["bot_api_contacts_text"] == 0,
    ]
    scored = [(name, value, goal, ok) for (name, value, goal), ok in zip(targets, checks, strict=True)]
    cpu_per_message = {r.name: ms for r in results if r.mode != "loop" and (ms := _cpu_ms(r)) is not None}

    warnings = phase_warnings([r for r in results if r.mode != "burst"])
    warnings += [
        f"{r.name}: {r.errors} errors, first: {r.error_sample}"
        for r in results
        if r.mode == "burst" and r.errors
    ]
    w1_rows = outcome["w1_rows"]
    if w1_rows["inbound_messages"] != outcome["w1_ok"]:
        warnings.append(
            f"W1 database check: {w1_rows['inbound_messages']} inbound rows, "
            f"{outcome['w1_ok']} answered webhooks"
        )
    if w5_rows["inbound_messages"] != outcome["w5_answered"]:
        warnings.append(
            f"W5 database check: {w5_rows['inbound_messages']} inbound rows, "
            f"{outcome['w5_answered']} distinct updates answered"
        )
    if outcome["wrapped"] or outcome["w5_wrapped"]:
        warnings.append("residents were reused (more conversations than residents): other engine paths")
    if outcome["bot_api_contacts_text"]:
        warnings.append(f"the webhook path connected to the Bot API {outcome['bot_api_contacts_text']} times")

    out = sys.stdout
    out.write(
        f"\nLoopline W5: Telegram webhook update -> reply queued   [sqlite, SQLite WAL synchronous="
        f"{args.synchronous.upper()}, {plan.residents:,} residents, {plan.connections} connections"
        f"{', quick' if args.quick else ''}]\n"
    )
    cores = outcome["cores"]
    out.write(
        f"server core {cores['server']}, load generator core {cores['client']}; "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, uvloop {inbound.UVLOOP_VERSION}, SQLite {sqlite3.sqlite_version}\n\n"
    )
    write_tables(out, results, scored)
    cpu_text = ", ".join(f"{name} {ms:.3f}" for name, ms in cpu_per_message.items())
    out.write(
        f"\nTelegram {w5.throughput:,.0f} updates/s (p50 {w5.p50_ms:.2f} ms, p99 {w5.p99_ms:.2f} ms) vs "
        f"SMS {w1.throughput:,.0f} msgs/s (p50 {w1.p50_ms:.2f} ms, p99 {w1.p99_ms:.2f} ms), "
        f"both at {plan.connections} connections\n"
        f"server CPU per message (ms): {cpu_text}; W1/W5 {ratios['w1_cpu_over_w5_cpu']:.3f}\n"
        f"other ratios: W5/CAL_DB(step) {ratios['w5_over_cal_db_step']:.3f}, "
        f"W1/CAL_DB(HTTP) {ratios['w1_over_cal_db_http']:.3f}, W1/CAL_HTTP {ratios['w1_over_cal_http']:.3f}, "
        f"CAL_DB(HTTP)/CAL_HTTP {ratios['cal_db_http_over_cal_http']:.3f}\n"
        f"W5 update mix: {outcome['w5_mix']}; W1 message mix: {outcome['mix']}\n"
        f"rows after the run: W5 {w5_rows}; W1 {w1_rows}\n"
        f"Bot API connections: {outcome['bot_api_contacts_text']} during the text phases, "
        f"{outcome['bot_api_contacts_total']} in all\n"
    )
    if presses is not None:
        out.write(
            f"press probe: {presses.requests} stale presses one at a time, p50 {presses.p50_ms:.2f} ms, "
            f"server CPU {_fmt_ms(_cpu_ms(presses))} ms per press against {_fmt_ms(_cpu_ms(w5))} per text "
            "update (each press's acknowledgement needs the Bot API)\n"
        )
    if outcome["clock_offset_s"]:
        out.write(
            f"note: the servers' clock was shifted by {outcome['clock_offset_s']:.0f} s "
            "into the survey dates\n"
        )
    inbound.write_tail(out, "the W5 server during the closed loop", outcome["profile"], warnings, elapsed)

    document = {
        "benchmark": "W5 Telegram ingress: webhook update to reply queued",
        "config": {
            "db": "sqlite",
            "synchronous": args.synchronous.upper(),
            "residents": plan.residents,
            "requests": plan.requests,
            "connections": plan.connections,
            "quick": args.quick,
            "seed": args.seed,
            "redeliveries": args.redeliveries,
            "press_probe": args.press_probe,
            "plan": dataclasses.asdict(plan),
        },
        "environment": {
            "cpus": os.cpu_count(),
            "cores": cores,
            "background_cpu_before": outcome["background_cpu"],
            "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "uvloop": inbound.UVLOOP_VERSION,
            "sqlite": sqlite3.sqlite_version,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "phases": [dataclasses.asdict(r) for r in results],
        "telegram": {"updates_per_s": w5.throughput, "p50_ms": w5.p50_ms, "p99_ms": w5.p99_ms},
        "sms_w1": {"msgs_per_s": w1.throughput, "p50_ms": w1.p50_ms, "p99_ms": w1.p99_ms},
        "ratios": ratios,
        "server_cpu_ms_per_message": cpu_per_message,
        "targets": [{"name": n, "value": v, "goal": g, "pass": ok} for n, v, g, ok in scored],
        "db_rows": {"w5": w5_rows, "w1": w1_rows},
        "w5_answered": outcome["w5_answered"],
        "w1_answered": outcome["w1_ok"],
        "w5_mix": outcome["w5_mix"],
        "w1_mix": outcome["mix"],
        "bot_api_contacts": {
            "text_phases": outcome["bot_api_contacts_text"],
            "all": outcome["bot_api_contacts_total"],
        },
        "profile": outcome["profile"],
        "warnings": warnings,
        "seconds": round(elapsed, 1),
    }
    out.write(json.dumps(inbound._no_nan(document), default=inbound._json_default, allow_nan=False) + "\n")
    out.flush()
    return document


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/telegram.py",
        description="W5 (Telegram webhook update to reply queued) beside W1, CAL_HTTP and CAL_DB.",
    )
    parser.add_argument("--residents", type=int, help="residents on each side (100000; quick 10000)")
    parser.add_argument("--connections", type=int, default=40, help="closed-loop connections, W5 and W1 (40)")
    parser.add_argument("--requests", type=int, help="updates pre-built for each closed loop (30000/8000)")
    parser.add_argument(
        "--seconds", type=float, help="W1 and W5 closed-loop duration after warm-up (10; quick 4)"
    )
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL", "normal", "full"])
    parser.add_argument("--redeliveries", type=int, default=200, help="updates delivered a second time (200)")
    parser.add_argument(
        "--press-probe", type=int, default=0, metavar="N", help="also send N stale button presses (0: none)"
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (< 45 s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--wait-quiet", type=float, default=0.0, metavar="S", help="wait up to S s for a quiet machine"
    )
    parser.add_argument("--server-core", type=int)
    parser.add_argument("--client-core", type=int)
    parser.add_argument("--py-spy", metavar="FILE", help="py-spy the W5 closed loop into FILE (raw format)")
    args = parser.parse_args(argv)
    if args.redeliveries < 1:
        parser.error("--redeliveries must be at least 1")
    args.w1_args = w1_args_for(args)
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    plan = dataclasses.replace(Plan.of(args.w1_args), open_loads=())  # W1: the closed loop only
    return inbound.run_benchmark(
        lambda workdir: run(args, plan, workdir),
        lambda outcome, seconds: report(args, plan, outcome, seconds),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
