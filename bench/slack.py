"""W5 Slack: signed ``/street`` slash commands and ``app_mention`` events to an acknowledged, stored staff
report, beside W1 and the calibration probes in the same run (performance.md §7 W5 and §4.2).

Run from the repository root::

    .venv/bin/python bench/slack.py            # default run: about 80 s
    .venv/bin/python bench/slack.py --quick    # smoke run: about 35 s

Every server runs in its own process pinned to one core (uvloop, access log off); the load generator runs
in this process pinned to the other core. All of it is ``bench/inbound.py``'s machinery. The phases, in
order:

* ``CAL_HTTP``, ``CAL_DB (HTTP)``, ``CAL_DB (step)`` and ``W1 closed loop``: ``inbound.run`` without its
  open loops, with the same number of connections as the Slack phases.
* ``W5 Slack closed loop``: Loopline's real server (``bots.app.build`` + ``await loopline.start()`` +
  ``bots.web.create_app``, the sender not started) with Slack configured, taking signed ``/street <text>``
  slash commands and ``app_mention`` event callbacks (unique ``event_id``s) at N keep-alive connections.
* ``W5 Slack open loop 50%``: the same server at half of that maximum, latency from the intended send time.
* ``W5 Slack retries``: a sample of events already answered, delivered again with the same body and
  ``X-Slack-Retry-Num`` 1..3 (re-signed, as Slack re-signs a retry); nothing may be stored twice.
* ``W5 Slack racing retries``: new events, each delivered twice at the same moment (the original and its
  retry 1) on two connections.

The Slack Web API is ``tests/fakes/slack_api.py``'s ``FakeSlack`` in its own process (Loopline calls
``auth.test`` at start-up); it reports every call it received, so the benchmark can show that the ack
path never calls Slack. Requests are built and signed with the same module's ``SlackSigner`` (slack_sdk's
``SignatureVerifier``) at the real current time, before each phase: every phase ends well inside the 300 s
window. The table and the targets go to stdout, followed by one JSON document; progress goes to stderr.
Nothing is written inside the repository. Only 127.0.0.1 is contacted.
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
import signal
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
import uvloop

SELF = Path(__file__).resolve()
ROOT = SELF.parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    # Run as a script, bench/ comes first on sys.path, where this very file would shadow slack_sdk's
    # legacy ``slack`` package (and bench/telegram.py python-telegram-bot's): the repository root instead.
    del sys.path[0]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import inbound  # noqa: E402
from bench.inbound import Child, PhaseResult, Plan, RawLoad, phase_warnings, run_phase, write_tables  # noqa: E402

EVENTS_PATH = "/slack/events"
REPORT_TEXTS = ROOT / "tests" / "flows" / "data" / "street_reports.yaml"
THEMES_FILE = ROOT / "examples" / "themes.yaml"
WARDS = "Northfield,Riverside,Old Town"
OPEN_FRACTION = 0.5
MENTION_SHARE = 0.3  # the rest are /street slash commands
ACK_WINDOW_MS = 3000.0  # Slack retries an event that is not answered within 3 s

# Targets: performance.md §7 W5. The ceiling ratios are derived (0.8 x W1's own targets), as in
# bench/telegram.py.
TARGET_SLACK_OVER_W1 = 0.8
TARGET_SLACK_OVER_CAL_DB = round(TARGET_SLACK_OVER_W1 * inbound.TARGET_W1_OVER_CAL_DB, 3)
TARGET_SLACK_OVER_CAL_HTTP = round(TARGET_SLACK_OVER_W1 * inbound.TARGET_W1_OVER_CAL_HTTP, 3)
TARGET_ACK_P99_MS = 100.0


def _slack_fakes() -> ModuleType:
    """``tests.fakes.slack_api`` (not an installed package): signs exactly as the tests do."""
    from tests.fakes import slack_api

    return slack_api


# ---------------------------------------------------------------------------------------------------
# Child processes: Loopline with Slack, and the fake Slack Web API
# ---------------------------------------------------------------------------------------------------


async def _serve_loopline(args: argparse.Namespace) -> None:
    """Loopline's real server with Slack configured; ``loopline.start()`` calls auth.test on the fake."""
    from aiohttp import web

    from bots.app import build
    from bots.config import Settings
    from bots.logs import configure_logging
    from bots.web import create_app

    slack = _slack_fakes()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await loop.connect_read_pipe(lambda: inbound._StopOnEof(stop), sys.stdin)
    env = inbound.loopline_env(args.url, args.synchronous, inbound._twilio_fakes())
    env.update(
        {
            "SLACK_SIGNING_SECRET": slack.SIGNING_SECRET,
            "SLACK_BOT_TOKEN": slack.DEFAULT_BOT_TOKEN,
            "SLACK_TEAM_ID": slack.TEAM_ID,
            "SLACK_API_BASE_URL": args.slack_api,
            "SLACK_TIMEOUT_SECONDS": "5",
            "LOOPLINE_THEMES_FILE": str(THEMES_FILE),
            "LOOPLINE_WARDS": WARDS,
        }
    )
    settings = Settings.from_env(env)
    configure_logging(settings.log_level)
    loopline = build(settings)
    await loopline.start()
    runner = web.AppRunner(create_app(loopline.services()), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sys.stdout.write(f"READY {runner.addresses[0][1]}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await loopline.close()


async def _serve_fake_slack() -> None:
    """FakeSlack on 127.0.0.1; on EOF it prints the Web API calls it received, by method."""
    slack = _slack_fakes()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await loop.connect_read_pipe(lambda: inbound._StopOnEof(stop), sys.stdin)
    fake = slack.FakeSlack()
    await fake.start()
    port = fake.base_url.rstrip("/").rsplit(":", 1)[1].split("/")[0]
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        calls = Counter(call.method for call in fake.requests)
        sys.stdout.write(json.dumps(dict(calls)) + "\n")
        sys.stdout.flush()
        await fake.stop()


def child_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="slack.py _child")
    parser.add_argument("role", choices=["loopline-slack", "fake-slack"])
    parser.add_argument("--core", type=int)
    parser.add_argument("--url", default="")
    parser.add_argument("--synchronous", default="NORMAL")
    parser.add_argument("--slack-api", default="")
    args = parser.parse_args(argv)
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    if args.role == "fake-slack":
        uvloop.run(_serve_fake_slack())
    else:
        uvloop.run(_serve_loopline(args))


async def start_child(role: str, *options: str, wait: float = 60.0) -> Child:
    """One of this file's children (``inbound.Child`` starts inbound.py's): ``READY <port>`` on stdout."""
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
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), wait)
    except TimeoutError:
        line = b""
    if not line.startswith(b"READY "):
        await inbound._stop_process(proc)
        raise RuntimeError(f"the {role} child did not start (said {line!r}); see stderr above")
    return Child(proc, int(line.split()[1]))


async def stop_fake_slack(child: Child) -> dict[str, int]:
    """Stop the fake and read back the Web API calls it received."""
    proc = child.proc
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.close()
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
    except TimeoutError:
        line = b""
    await inbound._stop_process(proc)
    try:
        return {str(k): int(v) for k, v in json.loads(line).items()}
    except ValueError:
        return {"?": -1}


# ---------------------------------------------------------------------------------------------------
# Requests: what Slack POSTs to /slack/events, signed by tests/fakes/slack_api.py's SlackSigner
# ---------------------------------------------------------------------------------------------------


def report_texts() -> list[str]:
    """Street reports as staff type them (the tagger's test data: reports, then the held-out set)."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(REPORT_TEXTS.read_text(encoding="utf-8"))
    texts = [str(r["text"]) for r in data["reports"]]
    texts += [str(r["text"]) for r in data.get("held_out", [])]
    return texts


@dataclasses.dataclass
class Mention:
    event_id: str
    body: bytes  # the exact JSON body: a retry resends these bytes


class SlackMaker:
    """Signed Slack deliveries as pre-encoded HTTP/1.1 requests for ``RawLoad``."""

    def __init__(self, seed: int) -> None:
        self.fakes = _slack_fakes()
        self.signer = self.fakes.SlackSigner()
        self.rng = random.Random(seed)
        self.texts = report_texts()
        self.nonce = self.rng.getrandbits(24)
        self.count = 0

    def _request(self, body: bytes, headers: dict[str, str]) -> bytes:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = (
            f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: {inbound.PUBLIC_HOST}\r\n{lines}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("ascii") + body

    def event_id(self) -> str:
        self.count += 1
        return f"Ev{self.nonce:06X}{self.count:08X}"

    def command(self, text: str) -> bytes:
        body, headers = self.signer.slash_command(text)
        return self._request(body, headers)

    def mention(self, text: str) -> tuple[bytes, Mention]:
        event = self.signer.app_mention(text)
        body, headers = self.signer.event_callback(event, event_id=self.event_id())
        return self._request(body, headers), Mention(json.loads(body)["event_id"], body)

    def retry(self, mention: Mention, retry_num: int) -> bytes:
        """The same delivery again, as Slack retries it: same body, a new timestamp and signature."""
        headers = self.signer.headers(mention.body, "application/json", retry_num=retry_num)
        return self._request(mention.body, headers)

    def batch(self, count: int) -> tuple[list[bytes], list[str], list[Mention | None]]:
        """``count`` requests (commands and mentions mixed), each one's kind, and the mentions."""
        requests: list[bytes] = []
        kinds: list[str] = []
        mentions: list[Mention | None] = []
        for _ in range(count):
            text = self.rng.choice(self.texts)
            if self.rng.random() < MENTION_SHARE:
                request, mention = self.mention(text)
                requests.append(request)
                kinds.append("app_mention")
                mentions.append(mention)
            else:
                requests.append(self.command(text))
                kinds.append("slash_command")
                mentions.append(None)
        return requests, kinds, mentions

    def self_check(self) -> None:
        """Loopline's own verifier must accept what we send, and the bodies must parse back."""
        from channels.base import HttpRequest
        from channels.slack import verify

        for request in (
            self.command("Rats in the bin store £5 & 100%"),
            self.mention("Pothole on Elm Rd")[0],
        ):
            head, _, body = request.partition(b"\r\n\r\n")
            lines = head.decode("ascii").split("\r\n")[1:]
            headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
            if int(headers["content-length"]) != len(body):
                raise AssertionError("wrong Content-Length")
            http = HttpRequest(url=inbound.PUBLIC_URL + EVENTS_PATH, headers=headers, body=body)
            if not verify(http, signing_secret=self.fakes.SIGNING_SECRET):
                raise AssertionError("the signature does not verify")


# ---------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------


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


async def count_reports(url: str, event_ids: Sequence[str]) -> dict[str, int]:
    """Reports stored: in all, by source, and for the given events (each must be there exactly once)."""
    from sqlalchemy import text

    from store.db import connect

    db = connect(url)
    try:
        async with db.engine.connect() as connection:
            total = int(await connection.scalar(text("SELECT count(*) FROM reports")) or 0)
            by_source = dict(
                (await connection.execute(text("SELECT source, count(*) FROM reports GROUP BY source"))).all()
            )
            keys = [f"event:{e}" for e in event_ids]
            found = 0
            for first in range(0, len(keys), 500):
                chunk = keys[first : first + 500]
                marks = ", ".join(f":k{i}" for i in range(len(chunk)))
                found += int(
                    await connection.scalar(
                        text(f"SELECT count(*) FROM reports WHERE dedupe_key IN ({marks})"),
                        {f"k{i}": key for i, key in enumerate(chunk)},
                    )
                    or 0
                )
            themes = int(await connection.scalar(text("SELECT count(*) FROM report_themes")) or 0)
        return {
            "reports": total,
            "report_themes": themes,
            **{f"source_{k}": int(v) for k, v in by_source.items()},
            "retried_events_stored": found,
        }
    finally:
        await db.dispose()


def _answered(load: RawLoad) -> int:
    return sum(1 for code in load.record.status if code == 200)


async def run(args: argparse.Namespace, plan: Plan, workdir: Path) -> dict[str, Any]:
    synchronous = args.synchronous.upper()
    maker = SlackMaker(args.seed + 300)
    maker.self_check()
    db_url = f"sqlite+aiosqlite:///{workdir / 'slack.db'}"
    from store import migrate

    await asyncio.to_thread(migrate.upgrade, db_url)

    # ---- the calibration probes and W1 (bench/inbound.py), same connections ----
    outcome = await inbound.run(args.w1_args, plan, workdir)
    results: list[PhaseResult] = outcome["results"]
    server_core, client_core = outcome["cores"]["server"], outcome["cores"]["client"]
    core_option = ["--core", str(server_core)] if server_core is not None else []
    client_option = ["--core", str(client_core)] if client_core is not None else []

    # ---- W5 Slack: Loopline's real server, FakeSlack in its own process on the generator's core ----
    fake = await start_child("fake-slack", *client_option)
    api_url = f"http://127.0.0.1:{fake.port}/api/"
    mix: Counter[str] = Counter()
    distinct_ok = 0  # distinct deliveries answered 200 (retries excluded)
    unfinished = 0
    profile: dict[str, Any] | None = None
    retried: list[Mention] = []
    try:
        server = await start_child(
            "loopline-slack",
            *core_option,
            "--url",
            db_url,
            "--synchronous",
            synchronous,
            "--slack-api",
            api_url,
        )
        try:
            t_sign = time.perf_counter()
            requests, kinds, mentions = maker.batch(plan.requests)
            inbound._log(f"signed {len(requests):,} Slack requests in {time.perf_counter() - t_sign:.1f} s")
            py_spy = None
            if args.py_spy:
                py_spy = await inbound.start_py_spy(
                    server.pid, plan.warm + plan.w1_seconds, args.py_spy, client_core
                )
            load = RawLoad(server.port, requests, plan.connections)
            closed = await run_phase(
                "W5 Slack closed loop", load, server.pid, warm=plan.warm, seconds=plan.w1_seconds
            )
            closed.extra["connections"] = plan.connections
            results.append(closed)
            distinct_ok += _answered(load)
            unfinished += load.record.unfinished
            mix.update(kinds[: closed.requests])
            if closed.requests >= len(requests):
                inbound._log("note: the Slack closed loop used every pre-built request (raise --requests)")
            if py_spy is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(py_spy.wait(), 30)
                inbound._CHILD_PIDS.discard(py_spy.pid)
                profile = inbound.summarise_py_spy(args.py_spy)

            rate = max(1.0, closed.throughput * OPEN_FRACTION)
            count = math.ceil(rate * (plan.warm + plan.open_seconds))
            open_requests, open_kinds, _ = maker.batch(count)
            load = RawLoad(server.port, open_requests, plan.connections)
            half = await run_phase(
                f"W5 Slack open loop {OPEN_FRACTION:.0%}",
                load,
                server.pid,
                warm=plan.warm,
                seconds=plan.open_seconds,
                rate=rate,
            )
            half.extra["fraction_of_max"] = OPEN_FRACTION
            results.append(half)
            distinct_ok += _answered(load)
            unfinished += load.record.unfinished
            mix.update(open_kinds[: half.requests])

            # Retries of events answered early in the closed loop: same body, X-Slack-Retry-Num 1..3.
            answered_mentions = [m for m in mentions[: max(0, closed.requests - plan.connections)] if m]
            retried = answered_mentions[: args.retries]
            again = [maker.retry(m, 1 + i % 3) for i, m in enumerate(retried)]
            if again:
                load = RawLoad(server.port, again, min(plan.connections, len(again)))
                retries = await run_phase("W5 Slack retries", load, server.pid, warm=0.0, seconds=30.0)
                retries.mode = "burst"
                results.append(retries)

            # Racing retries: a new event and its retry 1 sent at the same moment on two connections.
            racing: list[Mention] = []
            pairs: list[bytes] = []
            for _ in range(args.racing):
                request, mention = maker.mention(maker.rng.choice(maker.texts))
                pairs += [request, maker.retry(mention, 1)]
                racing.append(mention)
            if pairs:
                load = RawLoad(server.port, pairs, min(plan.connections, len(pairs)))
                race = await run_phase("W5 Slack racing retries", load, server.pid, warm=0.0, seconds=30.0)
                race.mode = "burst"
                results.append(race)
                distinct_ok += len(racing) if race.errors == 0 else _answered(load) // 2
                unfinished += load.record.unfinished
                retried = retried + racing
        finally:
            await server.stop()
    finally:
        api_calls = await stop_fake_slack(fake)
    rows = await count_reports(db_url, [m.event_id for m in retried])
    return {
        **outcome,
        "results": results,
        "w1_rows": outcome["rows"],
        "slack_rows": rows,
        "slack_distinct_answered": distinct_ok,
        "slack_unfinished": unfinished,
        "slack_mix": dict(mix),
        "retried_sample": len(retried),
        "api_calls": api_calls,
        "profile": profile,
    }


# ---------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def _cpu_ms(result: PhaseResult) -> float | None:
    """Server CPU per answered request (ms)."""
    if not result.server_cpu or not result.throughput:
        return None
    if result.mode == "burst":
        answered = result.requests - result.errors
        return round(1000 * result.server_cpu * result.seconds / answered, 3) if answered else None
    return round(1000 * result.server_cpu / result.throughput, 3)


def report(args: argparse.Namespace, plan: Plan, outcome: dict[str, Any], elapsed: float) -> dict[str, Any]:
    results: list[PhaseResult] = outcome["results"]
    by_name = {r.name: r for r in results}
    cal_http, cal_db, step = by_name["CAL_HTTP"], by_name["CAL_DB (HTTP)"], by_name["CAL_DB (step)"]
    w1, slack = by_name["W1 closed loop"], by_name["W5 Slack closed loop"]
    half = by_name[f"W5 Slack open loop {OPEN_FRACTION:.0%}"]
    slack_phases = [r for r in results if r.name.startswith("W5 Slack")]
    rows = outcome["slack_rows"]
    sample = outcome["retried_sample"]
    stored_twice = max(0, rows["reports"] - outcome["slack_distinct_answered"])
    missing = max(0, sample - rows["retried_events_stored"])
    api_calls = outcome["api_calls"]
    calls_after_start = sum(n for method, n in api_calls.items() if method != "auth.test")

    ratios = {
        "slack_over_w1": _ratio(slack.throughput, w1.throughput),
        "slack_over_cal_db_http": _ratio(slack.throughput, cal_db.throughput),
        "slack_over_cal_http": _ratio(slack.throughput, cal_http.throughput),
        "slack_over_cal_db_step": _ratio(slack.throughput, step.throughput),
        "w1_over_cal_db_http": _ratio(w1.throughput, cal_db.throughput),
        "w1_over_cal_http": _ratio(w1.throughput, cal_http.throughput),
        "ack_p99_over_3s_window_half": _ratio(half.p99_ms, ACK_WINDOW_MS),
        "ack_p99_over_3s_window_closed": _ratio(slack.p99_ms, ACK_WINDOW_MS),
    }
    checks = [
        (
            "Slack / W1 (closed loops)",
            ratios["slack_over_w1"],
            f">= {TARGET_SLACK_OVER_W1}",
            ratios["slack_over_w1"] >= TARGET_SLACK_OVER_W1,
        ),
        (
            "Slack / CAL_DB (HTTP) [0.8 x W1's]",
            ratios["slack_over_cal_db_http"],
            f">= {TARGET_SLACK_OVER_CAL_DB}",
            ratios["slack_over_cal_db_http"] >= TARGET_SLACK_OVER_CAL_DB,
        ),
        (
            "Slack / CAL_HTTP     [0.8 x W1's]",
            ratios["slack_over_cal_http"],
            f">= {TARGET_SLACK_OVER_CAL_HTTP}",
            ratios["slack_over_cal_http"] >= TARGET_SLACK_OVER_CAL_HTTP,
        ),
        (
            "Ack p99 at 50% of max (ms)",
            half.p99_ms,
            f"<= {TARGET_ACK_P99_MS:g}",
            half.p99_ms <= TARGET_ACK_P99_MS and half.errors == 0,
        ),
        (
            "Ack p99 closed loop (ms)",
            slack.p99_ms,
            f"<= {TARGET_ACK_P99_MS:g}",
            slack.p99_ms <= TARGET_ACK_P99_MS,
        ),
        (
            "Slack errors (all phases)",
            float(sum(r.errors for r in slack_phases)),
            "== 0",
            all(r.errors == 0 for r in slack_phases),
        ),
        (
            "Retried events stored twice",
            float(stored_twice),
            "== 0",
            stored_twice == 0 and missing == 0 and sample > 0,
        ),
        ("Web API calls on the ack path", float(calls_after_start), "== 0", calls_after_start == 0),
    ]
    cpu_per_request = {r.name: ms for r in results if r.mode != "loop" and (ms := _cpu_ms(r)) is not None}
    warnings = phase_warnings([r for r in results if r.mode != "burst"])
    warnings += [
        f"{r.name}: {r.errors} errors, first: {r.error_sample}"
        for r in results
        if r.mode == "burst" and r.errors
    ]
    if rows["reports"] != outcome["slack_distinct_answered"]:
        warnings.append(
            f"Slack database check: {rows['reports']} reports, {outcome['slack_distinct_answered']} distinct "
            f"deliveries answered ({outcome['slack_unfinished']} unanswered at the end of a phase)"
        )
    if missing:
        warnings.append(f"{missing} of the {sample} retried events were never stored")
    w1_rows = outcome["w1_rows"]
    if w1_rows["inbound_messages"] != outcome["w1_ok"]:
        warnings.append(
            f"W1 database check: {w1_rows['inbound_messages']} inbound rows, {outcome['w1_ok']} answered"
        )
    if outcome["wrapped"]:
        warnings.append("W1 residents were reused (more conversations than residents): other engine paths")

    out = sys.stdout
    cores = outcome["cores"]
    out.write(
        f"\nLoopline W5 Slack: signed /street commands and app_mention events -> report stored and acked   "
        f"[sqlite, SQLite WAL synchronous={args.synchronous.upper()}, {plan.connections} connections, "
        f"W1 with {plan.residents:,} residents{', quick' if args.quick else ''}]\n"
    )
    out.write(
        f"server core {cores['server']}, load generator core {cores['client']}; "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, uvloop {inbound.UVLOOP_VERSION}, SQLite {sqlite3.sqlite_version}\n\n"
    )
    write_tables(out, results, checks)
    cpu_text = ", ".join(f"{name} {ms:.3f}" for name, ms in cpu_per_request.items())
    out.write(
        f"\nSlack {slack.throughput:,.0f} requests/s (ack p50 {slack.p50_ms:.2f} ms, "
        f"p99 {slack.p99_ms:.2f} ms) vs "
        f"SMS W1 {w1.throughput:,.0f} msgs/s (p50 {w1.p50_ms:.2f} ms, p99 {w1.p99_ms:.2f} ms), both at "
        f"{plan.connections} connections: Slack/W1 = {ratios['slack_over_w1']:.3f}\n"
        f"ack p99 / Slack's 3 s window: {ratios['ack_p99_over_3s_window_half']:.4f} at 50% load, "
        f"{ratios['ack_p99_over_3s_window_closed']:.4f} closed loop (performance.md: <= 0.03)\n"
        f"server CPU per request (ms): {cpu_text}\n"
        f"Slack request mix: {outcome['slack_mix']}; retried sample: {sample} events "
        f"({args.retries} re-sent after, {args.racing} racing), stored {rows['retried_events_stored']}\n"
        f"reports after the run: {rows}; distinct deliveries answered: {outcome['slack_distinct_answered']}\n"
        f"Slack Web API calls received by the fake: {api_calls} (auth.test once at start-up)\n"
        f"W1 rows after the run: {w1_rows}\n"
    )
    if outcome["clock_offset_s"]:
        out.write(f"note: the W1 server's clock was shifted by {outcome['clock_offset_s']:.0f} s\n")
    inbound.write_tail(out, "the Slack server during the closed loop", outcome["profile"], warnings, elapsed)

    document = {
        "benchmark": "W5 Slack ingress: signed slash command or event to report stored and acked",
        "config": {
            "db": "sqlite",
            "synchronous": args.synchronous.upper(),
            "residents": plan.residents,
            "requests": plan.requests,
            "connections": plan.connections,
            "quick": args.quick,
            "seed": args.seed,
            "retries": args.retries,
            "racing": args.racing,
            "mention_share": MENTION_SHARE,
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
        "slack": {"requests_per_s": slack.throughput, "p50_ms": slack.p50_ms, "p99_ms": slack.p99_ms},
        "slack_half_load": {"rate": half.throughput, "p50_ms": half.p50_ms, "p99_ms": half.p99_ms},
        "sms_w1": {"msgs_per_s": w1.throughput, "p50_ms": w1.p50_ms, "p99_ms": w1.p99_ms},
        "ratios": ratios,
        "server_cpu_ms_per_request": cpu_per_request,
        "targets": [{"name": n, "value": v, "goal": g, "pass": ok} for n, v, g, ok in checks],
        "db_rows": {"slack": rows, "w1": w1_rows},
        "slack_distinct_answered": outcome["slack_distinct_answered"],
        "retried_sample": sample,
        "slack_mix": outcome["slack_mix"],
        "slack_api_calls": api_calls,
        "profile": outcome["profile"],
        "warnings": warnings,
        "seconds": round(elapsed, 1),
    }
    out.write(json.dumps(inbound._no_nan(document), default=inbound._json_default, allow_nan=False) + "\n")
    out.flush()
    return document


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/slack.py",
        description="W5 Slack (signed /street and app_mention to report stored and acked) beside W1 and CAL.",
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="closed-loop connections, Slack and W1 (32)"
    )
    parser.add_argument("--requests", type=int, help="requests pre-built for each closed loop (30000/8000)")
    parser.add_argument("--residents", type=int, help="W1 residents (100000; quick 10000)")
    parser.add_argument(
        "--seconds", type=float, help="W1 and Slack closed-loop duration after warm-up (10; quick 4)"
    )
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL", "normal", "full"])
    parser.add_argument("--retries", type=int, default=200, help="answered events re-sent as retries (200)")
    parser.add_argument("--racing", type=int, default=100, help="events sent twice at once (100)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (< 45 s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--wait-quiet", type=float, default=0.0, metavar="S", help="wait up to S s for a quiet machine"
    )
    parser.add_argument("--server-core", type=int)
    parser.add_argument("--client-core", type=int)
    parser.add_argument(
        "--py-spy", metavar="FILE", help="py-spy the Slack closed loop into FILE (raw format)"
    )
    args = parser.parse_args(argv)
    args.w1_args = w1_args_for(args)
    return args


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] == inbound.CHILD:
        child_main(argv[1:])
        return 0
    args = parse_args(argv)
    plan = dataclasses.replace(Plan.of(args.w1_args), open_loads=())  # W1: the closed loop only
    return inbound.run_benchmark(
        lambda workdir: run(args, plan, workdir),
        lambda outcome, seconds: report(args, plan, outcome, seconds),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
