"""How long ``complaint-desk serve`` takes to answer, and how much memory it holds.

Run ``python bench/serve_footprint.py [--tickets N] [--runs R]`` (``make bench``).
Every figure is printed next to a baseline measured in the same run on the same
interpreter, so the desk's own cost can be told from Python's and its libraries':

a) start-up: from spawning ``complaint-desk serve --port P`` on a fresh SQLite
   file to ``/healthz`` answering 200 (median of ``--runs``, after one warm-up
   run so that jieba's dictionary cache and the OS page cache are warm);
   baseline: a process that imports aiohttp, SQLAlchemy and jieba and
   initialises jieba, which ``create_app`` also does.
b) resident memory (VmRSS) of the server after start-up and after N tickets
   were registered. There is no HTTP intake endpoint yet, so this script runs
   the app in a child process of its own (``--child URL PORT``): the same
   ``create_app`` served by an ``AppRunner``, which on a command from stdin
   registers N tickets through the app's ``Desk`` with ``handle_register``.
   Baseline: the bare process of (a), kept alive while its RSS is read.

Complaint texts are synthetic (assembled from phrases below), 20 to 400
characters long. The last line of output is ``key=value`` pairs for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TARGET_MS = 3000
RSS_TARGET_MB = 250
POLL_SECONDS = 0.01
# A server that has not answered by then is broken, not slow.
STARTUP_DEADLINE_SECONDS = 60
BASELINE_CODE = (
    "import sys, aiohttp, sqlalchemy, jieba; jieba.initialize(); "
    "print('ready', flush=True); sys.stdin.readline()"
)

# Phrases for synthetic complaints; the problems carry the kinds of keywords
# the routing tables look for, so tickets spread over departments and triage.
PLACES = (
    "幸福里小区",
    "滨江花园三期",
    "人民路与解放路交叉口",
    "城东农贸市场",
    "第二实验小学门口",
    "高新区创业大厦",
    "老城区棉纺厂宿舍",
    "红星村二组",
    "火车站南广场",
    "市中医院门诊楼",
)
PROBLEMS = (
    "物业公司收了物业费却长期不修电梯，老人只能爬楼",
    "附近工地夜间施工噪音很大，过了十点还在打桩",
    "有人在绿化带上搭建违章建筑，已经盖到二层",
    "路边摊贩占道经营，早晚高峰车辆和行人都过不去",
    "饭店的油烟直接排到居民楼里，家里一股臭味",
    "公司拖欠工资三个月，劳动监察说让我们自己协商",
    "小区垃圾好几天没人清运，污水流到路面上",
    "公交线路调整后没有站牌通知，老人等车等了一个小时",
    "学校周边的小卖部向学生出售过期食品",
    "去窗口办理社保转移，工作人员态度恶劣，让我来回跑了五趟",
    "路灯坏了一个多月没人修，晚上出行很不安全",
    "河道里有工厂偷排废水，水面发黑，鱼都死了",
    "承包的土地被村里收回，补偿款一直没有发放",
    "医院挂号系统经常故障，排队几个小时也挂不上号",
)
DETAILS = (
    "已经打过好几次电话反映，每次都说会处理，但一直没有结果。",
    "这个问题持续了大半年，周围的住户都很有意见。",
    "我们家里有八十多岁的老人和刚出生的孩子，实在受不了。",
    "之前找过社区和街道，都说不归他们管，让我们找别的部门。",
    "附近几栋楼的居民联名写过信，到现在也没有回音。",
    "下雨天情况更严重，路面积水，车辆无法通行。",
    "照片和视频我都保存着，需要的话可以提供。",
)
SHORT_PROBLEMS = (
    "电梯坏了三天没人修",
    "晚上噪音太大",
    "摊贩占道",
    "垃圾没人清运",
    "路灯不亮",
    "饭店油烟扰民",
)
REQUESTS = (
    "请有关部门尽快派人来现场查看处理。",
    "希望尽快给我们一个答复。",
    "恳请领导重视，依法处理。",
    "请帮忙协调解决，谢谢！",
)


def complaint_text(rng: random.Random) -> str:
    """A plausible complaint of 20 to 400 characters, like an SMS or a long letter."""
    target = rng.randint(20, 400)
    if target < 45:
        # The short end: one line typed on a phone.
        return f"{rng.choice(PLACES)}{rng.choice(SHORT_PROBLEMS)}，{rng.choice(REQUESTS)}"
    request = rng.choice(REQUESTS)
    text = f"我住在{rng.choice(PLACES)}，{rng.choice(PROBLEMS)}。"
    while len(text) + len(request) < target:
        text += rng.choice((*DETAILS, f"另外，{rng.choice(PROBLEMS)}。"))
    return (text + request)[:400]


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB, from /proc (a procfs read never blocks)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def desk_config_path(workdir: Path) -> Path:
    """DESK_CONFIG if set, else the packaged default, else the test desk written to ``workdir``."""
    if configured := os.environ.get("DESK_CONFIG"):
        return Path(configured).resolve()
    packaged = files("bot") / "default_desk.toml"
    if packaged.is_file():
        return Path(str(packaged))
    # Only while the default config is missing: borrow the small test desk.
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_desk_config
    from crash_writer import desk_config_toml

    path = workdir / "desk.toml"
    path.write_text(desk_config_toml(make_desk_config()), encoding="utf-8")
    return path


@dataclass
class Figures:
    """Everything the report prints."""

    startup_ms: list[float]
    baseline_startup_ms: list[float]
    rss_serve_mb: float
    rss_start_mb: float
    rss_after_mb: float
    baseline_rss_mb: float
    tickets: int
    register_seconds: float


# --- the parent: measurements ------------------------------------------------


async def wait_healthy(
    session: aiohttp.ClientSession, port: int, process: asyncio.subprocess.Process
) -> None:
    """Poll /healthz until it answers 200; fail if the process dies first."""
    url = f"http://127.0.0.1:{port}/healthz"
    async with asyncio.timeout(STARTUP_DEADLINE_SECONDS):
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"server exited with {process.returncode} before /healthz")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(POLL_SECONDS)


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM (the server's own clean shutdown), SIGKILL if it hangs."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


async def time_serve(
    session: aiohttp.ClientSession, env: dict[str, str], workdir: Path, run: int
) -> tuple[float, float]:
    """Milliseconds from spawn to /healthz 200 on a fresh database, and the RSS then."""
    port = free_port()
    run_env = env | {"DATABASE_URL": f"sqlite+aiosqlite:///{workdir / f'serve-{run}.db'}"}
    command = Path(sys.executable).with_name("complaint-desk")
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        str(command),
        "serve",
        "--port",
        str(port),
        env=run_env,
        cwd=workdir,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    # Drained all along so the server never blocks on a full log pipe.
    log = asyncio.create_task(process.stderr.read())
    healthy = False
    try:
        await wait_healthy(session, port, process)
        elapsed = (time.perf_counter() - started) * 1000
        rss = rss_mb(process.pid)
        healthy = True
    finally:
        await stop(process)
        output = await log
        if not healthy:
            sys.stderr.write(output.decode(errors="replace")[-2000:])
    return elapsed, rss


async def time_baseline() -> float:
    """Milliseconds for a bare interpreter to import the libraries and load jieba."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        BASELINE_CODE.replace("sys.stdin.readline()", "None"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    if await process.wait() != 0:
        raise RuntimeError("baseline process failed")
    return (time.perf_counter() - started) * 1000


async def baseline_rss() -> float:
    """RSS of a bare interpreter holding aiohttp, SQLAlchemy and an initialised jieba."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        BASELINE_CODE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        if (await process.stdout.readline()).strip() != b"ready":
            raise RuntimeError("baseline process did not start")
        return rss_mb(process.pid)
    finally:
        process.stdin.close()
        await process.wait()


async def measure_child(
    session: aiohttp.ClientSession, env: dict[str, str], workdir: Path, tickets: int
) -> tuple[float, float, float]:
    """RSS of the in-process server after start-up and after ``tickets``, and the time taken."""
    port = free_port()
    url = f"sqlite+aiosqlite:///{workdir / 'child.db'}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        url,
        str(port),
        env=env,
        cwd=workdir,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    # The server logs every dead-lettered outbox row (no channel is configured);
    # the pipe is drained so it never fills, and shown only if the child fails.
    log = asyncio.create_task(process.stderr.read())
    done = False
    try:
        if (await process.stdout.readline()).strip() != b"READY":
            raise RuntimeError("child did not start")
        await wait_healthy(session, port, process)
        rss_start = rss_mb(process.pid)
        process.stdin.write(f"register {tickets}\n".encode())
        await process.stdin.drain()
        reply = (await process.stdout.readline()).decode().split()
        if len(reply) != 3 or reply[0] != "REGISTERED":
            raise RuntimeError(f"child failed to register: {reply}")
        rss_after = rss_mb(process.pid)
        # Still serving after the load: the figure is of a live server.
        await wait_healthy(session, port, process)
        process.stdin.write(b"quit\n")
        await process.stdin.drain()
        async with asyncio.timeout(30):
            await process.wait()
        done = True
    finally:
        await stop(process)
        output = await log
        if not done:
            sys.stderr.write(output.decode(errors="replace")[-4000:])
    return rss_start, rss_after, float(reply[2])


async def measure(tickets: int, runs: int) -> Figures:
    """Run every measurement; the servers run in a throwaway directory."""
    with tempfile.TemporaryDirectory(prefix="desk-bench-") as tmp:
        workdir = Path(tmp)
        env = os.environ | {"DESK_CONFIG": str(desk_config_path(workdir))}
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            # Run 0 warms jieba's cache file and the page cache; it is not counted.
            serve_runs = [await time_serve(session, env, workdir, run) for run in range(runs + 1)]
            baseline_runs = [await time_baseline() for _ in range(runs + 1)]
            rss_start, rss_after, seconds = await measure_child(session, env, workdir, tickets)
        return Figures(
            startup_ms=[ms for ms, _ in serve_runs[1:]],
            baseline_startup_ms=baseline_runs[1:],
            rss_serve_mb=statistics.median(rss for _, rss in serve_runs[1:]),
            rss_start_mb=rss_start,
            rss_after_mb=rss_after,
            baseline_rss_mb=await baseline_rss(),
            tickets=tickets,
            register_seconds=seconds,
        )


def report(figures: Figures) -> None:
    """The table, then one machine-readable line."""
    startup = statistics.median(figures.startup_ms)
    baseline = statistics.median(figures.baseline_startup_ms)
    per_second = figures.tickets / figures.register_seconds if figures.register_seconds else 0.0

    def verdict(ok: bool) -> str:
        return "OK" if ok else "OVER"

    runs = ", ".join(f"{ms:.0f}" for ms in figures.startup_ms)
    base_runs = ", ".join(f"{ms:.0f}" for ms in figures.baseline_startup_ms)
    print(f"complaint-desk serve footprint (Python {sys.version.split()[0]}, {sys.executable})")
    print(f"{'':34}{'desk':>12}{'baseline':>12}   target")
    print(
        f"{'start -> /healthz 200, median':34}{startup:>9.0f} ms{baseline:>9.0f} ms"
        f"   <= {STARTUP_TARGET_MS} ms  {verdict(startup <= STARTUP_TARGET_MS)}"
    )
    print(f"{'  runs (desk | baseline)':34}{runs} | {base_runs} ms")
    print(f"{'RSS after start-up (serve)':34}{figures.rss_serve_mb:>9.1f} MB")
    print(
        f"{'RSS after start-up (in-process)':34}{figures.rss_start_mb:>9.1f} MB"
        f"{figures.baseline_rss_mb:>9.1f} MB"
    )
    print(
        f"{f'RSS after {figures.tickets} tickets':34}{figures.rss_after_mb:>9.1f} MB"
        f"{figures.baseline_rss_mb:>9.1f} MB   <= {RSS_TARGET_MB} MB  "
        f"{verdict(figures.rss_after_mb <= RSS_TARGET_MB)}"
    )
    print(
        f"{'registration (sequential, SQLite)':34}{per_second:>6.0f} tickets/s"
        f"  ({figures.tickets} in {figures.register_seconds:.1f} s)"
    )
    print(
        f"startup_ms={startup:.0f} baseline_startup_ms={baseline:.0f} "
        f"rss_start_mb={figures.rss_start_mb:.1f} rss_10k_mb={figures.rss_after_mb:.1f} "
        f"baseline_rss_mb={figures.baseline_rss_mb:.1f} tickets_per_s={per_second:.0f} "
        f"tickets={figures.tickets}"
    )


# --- the child: the app, served, registering on command ----------------------


async def child(url: str, port: int) -> None:
    """Serve ``create_app`` on ``port``; obey ``register N`` and ``quit`` from stdin."""
    # Imported here so the parent stays a light process that only measures.
    from aiohttp import web

    from bot.app import DESK, create_app
    from bot.cli import configure_logging
    from bot.config_file import load_desk_config
    from bot.settings import Settings
    from handlers.desk_config import DeskConfig
    from handlers.intake import handle_register
    from handlers.messages import IncomingMessage

    settings = Settings(database_url=url, port=port)
    configure_logging(settings, debug=False)
    # Merging is off so that 10,000 messages make 10,000 tickets: the synthetic
    # texts repeat themselves far more than real complaints do.
    data = load_desk_config(settings.desk_config).model_dump()
    data["duplicates"]["enabled"] = False
    app = create_app(settings, DeskConfig.model_validate(data))
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        say("READY")
        rng = random.Random(20240611)
        registered = 0
        while command := (await asyncio.to_thread(sys.stdin.readline)).split():
            if command[0] == "quit":
                break
            count = int(command[1])
            desk = app[DESK]
            started = time.perf_counter()
            for i in range(registered, registered + count):
                await handle_register(
                    desk,
                    IncomingMessage(
                        channel="sms",
                        external_id=f"bench-{i}",
                        # A few thousand residents, some writing more than once.
                        sender=f"+86139{rng.randrange(5000):08d}",
                        text=complaint_text(rng),
                    ),
                )
            registered += count
            say(f"REGISTERED {count} {time.perf_counter() - started:.3f}")
    finally:
        await runner.cleanup()


def say(line: str) -> None:
    """One protocol line to the parent."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments; measure (parent) or serve (``--child``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=10_000, help="tickets to register")
    parser.add_argument("--runs", type=int, default=3, help="timed start-ups (median reported)")
    parser.add_argument("--child", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(child(args.child[0], int(args.child[1])))
        return 0
    logging.basicConfig(level=logging.WARNING)
    report(asyncio.run(measure(args.tickets, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
