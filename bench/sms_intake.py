"""How many signed SMS webhooks the desk takes per second, durably, next to bare aiohttp.

Run ``python bench/sms_intake.py [--n N] [--concurrency C] [--keep] [--skip-bare]``.

It starts ``complaint-desk serve`` on the embedded default (a fresh SQLite file
in a temporary directory, migrated at start-up) on a free port, with dummy
Twilio credentials, ``PUBLIC_BASE_URL`` pointing at that port and
``OUTBOX_DISPATCH=false`` (nothing is sent: no network). It then fires N
validly signed Twilio webhooks (``POST /sms/inbound``, form-encoded, each a
distinct synthetic Chinese complaint from its own phone number) at concurrency
C; 1% of them are sent a second time, same ``MessageSid`` and body, at a
random later point, as Twilio does when a response is late. Signatures and
bodies are computed before the clock starts.

The same payloads go, by the same client at the same concurrency, to a bare
aiohttp app in a child process of its own (one handler that reads the form
and returns empty TwiML): the desk's own cost is its figure over this one.

Printed: webhooks/s (requests over the wall time of the firing), p50/p99
latency, non-200 answers, CPU used by server and client while firing; then,
once the intake worker has answered every stored message (read from the
SQLite file directly, at most ``--timeout`` seconds), tickets created against
unique messages sent and the processing rate (tickets/s from the first
webhook to the last ticket). ``lost`` counts messages answered 200 but not
stored, plus stored messages that made no ticket (or merge); ``duplicated``
counts inbound rows over unique message SIDs plus tickets over unique stored
messages. Each message has its own sender, so the desk's follow-up window and
new-ticket limit never apply, and merging of similar complaints is switched
off in a copy of the desk config (the synthetic texts resemble each other far
more than real ones; ``--merge-duplicates`` keeps the desk's policy, merges
then count as registrations). The desk logs at its default level; set
``LOG_LEVEL`` in the environment to change it.

The last line is for scripts (with ``--skip-bare``: ``bare_per_s=0 ratio=0.00``)::

    webhooks_per_s=N bare_per_s=N ratio=0.xx p99_ms=N lost=N duplicated=N
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
TARGET_PER_S = 1000
RESEND_FRACTION = 0.01
# A server that has not answered by then is broken, not slow.
STARTUP_DEADLINE_SECONDS = 60
STOP_DEADLINE_SECONDS = 30
POLL_SECONDS = 0.25
REQUEST_TIMEOUT_SECONDS = 60
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
DESK_NUMBER = "+8610690000"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# --- synthetic complaints ----------------------------------------------------

PLACES = (
    "幸福里小区", "滨江花园三期", "锦绣华庭", "阳光新城", "翠湖苑", "金色家园",
    "棉纺厂宿舍", "海棠湾小区", "御景湾", "桂花园", "和平新村", "东湖名邸",
    "南苑小区", "铁路新村", "星河湾", "紫荆花园", "龙湖春江郦城", "天鹅堡",
)  # fmt: skip
ROADS = (
    "人民路", "解放大道", "中山北路", "建设东路", "长江路", "青年路", "迎宾大道",
    "五一路", "新华街", "光明路", "工业园路", "滨河西路",
)  # fmt: skip
SHOPS = (
    "华联超市", "好又多便利店", "老王烧烤", "金碧辉煌KTV", "欢乐迪歌厅", "鑫源水果店",
    "美佳美容院", "健身先锋健身房", "乐学培训中心", "优品母婴店",
)  # fmt: skip
COMPANIES = (
    "宏达建筑公司", "恒通物流公司", "鑫盛电子厂", "新世纪装饰公司", "瑞丰食品厂",
    "腾飞劳务公司", "远大化工厂", "安居物业公司", "永兴家具厂", "顺发运输公司",
)  # fmt: skip
SCHOOLS = ("第二实验小学", "育才中学", "阳光幼儿园", "第五中学", "城南小学", "新星幼儿园")
HOSPITALS = ("市中医院", "市第一人民医院", "妇幼保健院", "区人民医院", "市中心医院")
OFFICES = ("区政务服务中心", "街道便民服务中心", "社保服务大厅", "不动产登记大厅", "车管所")
VILLAGES = ("红星村二组", "柳树湾村", "大王庄", "石桥村", "李家坝村", "新民村三组")
DURATIONS = ("三天", "一个星期", "半个多月", "一个多月", "两个月", "大半年", "快一年")
TIMES = ("晚上十一点以后", "凌晨两三点", "每天早上五点多", "中午午休时间", "半夜十二点")
DETAILS = (
    "已经打过好几次电话反映，每次都说会处理，但一直没有结果。",
    "周围的住户都很有意见。",
    "家里有八十多岁的老人和刚出生的孩子，实在受不了。",
    "找过社区和街道，都说不归他们管。",
    "附近几栋楼的居民联名写过信，到现在也没有回音。",
    "照片和视频我都保存着，需要的话可以提供。",
    "",
)
REQUESTS = (
    "请有关部门尽快派人来现场查看处理。",
    "希望尽快给我们一个答复。",
    "恳请领导重视，依法处理。",
    "请帮忙协调解决。",
    "请相关部门督促整改。",
)
TEMPLATES = (
    "{place}{building}的电梯坏了{duration}，物业一直说在等配件，老人上下楼非常困难。",
    "{road}上的{shop}每天{time}把音响开得很大，噪音严重影响周边居民休息，多次劝说无效。",
    "{place}旁边的工地{time}还在施工打桩，噪音太大，孩子根本没法睡觉。",
    "{company}拖欠我们{count}名工人的工资共{money}元，已经{duration}了，老板一直躲着不见。",
    "{place}的垃圾站{duration}没人清运，臭味很大，蚊蝇成群。",
    "{road}和{road2}路口的红绿灯坏了{duration}，早晚高峰非常拥堵，差点出事故。",
    "我在{road}的{shop}买的食品已经过期，生产日期是{date}，商家拒绝退换。",
    "{place}{building}有业主在楼顶私自搭建违章建筑，占用公共空间，存在安全隐患。",
    "{road}附近的饭店油烟直排，{place}的居民家里全是油烟味，窗户都不敢开。",
    "{place}{building}楼下的路灯坏了{duration}，晚上一片漆黑，老人孩子出行很不安全。",
    "{road}的公交站台被拆了，{bus}路公交车不再停靠，附近居民出行很不方便。",
    "孩子所在的{school}乱收费，每学期额外收取{money}元资料费，没有任何票据。",
    "{hospital}挂号太难，早上{hour}点去排队到中午也没挂上号，黄牛却能加价拿到号。",
    "到{office}办理社保转移，窗口工作人员态度恶劣，让我来回跑了{count}趟还没办好。",
    "{place}物业收了物业费却不管事，{building}的楼道{duration}没人打扫，消防通道堆满杂物。",
    "{road}上的{company}晚上偷偷排放废气，气味刺鼻，周边居民头晕恶心。",
    "{village}的河道里有人倾倒建筑垃圾，河水发黑发臭，鱼都死了。",
    "我们{village}的土地被征收{duration}了，每亩{money}元的补偿款到现在还没发放。",
    "{road}上有流动摊贩占道经营，早晚高峰行人只能走机动车道，很危险。",
    "{place}地下车库积水{duration}，排水泵坏了没人修，车都开不进去。",
    "{company}一直不给我缴纳社保，我入职已经{duration}了，请劳动监察部门帮忙维权。",
    "{place}{building}的自来水{duration}发黄有异味，烧开了还有沉淀。",
    "{road}{number}号门口的井盖丢失{duration}了，只用一个塑料桶挡着，晚上骑车很容易出事。",
    "{place}门口的共享单车乱停乱放，堵住了小区大门，救护车都进不来。",
    "在{road}的{shop}办了{money}元的会员卡，现在店铺关门老板跑路了，钱退不回来。",
    "{place}的暖气{duration}不热，室内温度只有{temp}度，老人孩子都冻感冒了。",
    "{road}附近的{shop}每天营业到凌晨{hour}点，客人出来大声喧哗，还有人酒后打架。",
    "{school}门口上下学时段交通混乱，接送车辆乱停，希望增派交警疏导。",
    "{place}{building}有住户在楼道里给电动车充电，电线从窗户拉下来，有严重火灾隐患。",
    "{office}的工作人员上班时间玩手机，我排队等了{minutes}分钟没人理，门难进脸难看。",
    "{place}{building}楼上住户装修{duration}，每天{time}还在电钻砸墙，物业不管。",
    "{road}的人行道被{company}挖开{duration}了，一直没有恢复，行人只能绕行。",
)


def complaint_text(rng: random.Random) -> str:
    """A plausible SMS complaint: one template with its slots filled, a detail, a request."""
    slots = {
        "place": rng.choice(PLACES),
        "building": f"{rng.randint(1, 32)}栋{rng.randint(1, 6)}单元",
        "road": rng.choice(ROADS),
        "road2": rng.choice(ROADS),
        "shop": rng.choice(SHOPS),
        "company": rng.choice(COMPANIES),
        "school": rng.choice(SCHOOLS),
        "hospital": rng.choice(HOSPITALS),
        "office": rng.choice(OFFICES),
        "village": rng.choice(VILLAGES),
        "duration": rng.choice(DURATIONS),
        "time": rng.choice(TIMES),
        "count": rng.randint(2, 60),
        "money": rng.randrange(200, 90_000, 50),
        "date": f"{rng.randint(2023, 2024)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日",
        "bus": rng.randint(1, 120),
        "hour": rng.randint(1, 6),
        "minutes": rng.randint(20, 120),
        "temp": rng.randint(8, 15),
        "number": rng.randint(1, 400),
    }
    return (
        rng.choice(TEMPLATES).format(**slots)
        + rng.choice(DETAILS)
        + rng.choice(REQUESTS)
        + f"联系人{rng.choice('王李张刘陈杨赵黄周吴')}先生，尾号{rng.randrange(10_000):04d}。"
    )


# --- the requests ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Webhook:
    """One request exactly as it goes on the wire, signed for the desk's port."""

    sid: str
    body: bytes
    headers: dict[str, str]


def make_webhooks(n: int, port: int, rng: random.Random) -> list[Webhook]:
    """``n`` distinct messages from ``n`` distinct senders, signed for ``port``."""
    validator = RequestValidator(AUTH_TOKEN)
    url = f"http://127.0.0.1:{port}/sms/inbound"
    texts: set[str] = set()
    webhooks: list[Webhook] = []
    for number in rng.sample(range(10**8), n):
        text = complaint_text(rng)
        while text in texts:
            text = complaint_text(rng)
        texts.add(text)
        params = {
            "MessageSid": f"SM{rng.getrandbits(128):032x}",
            "AccountSid": ACCOUNT_SID,
            "From": f"+86138{number:08d}",
            "To": DESK_NUMBER,
            "Body": text,
            "NumMedia": "0",
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, params),
        }
        webhooks.append(Webhook(params["MessageSid"], urlencode(params).encode(), headers))
    return webhooks


def firing_order(webhooks: Sequence[Webhook], rng: random.Random) -> list[Webhook]:
    """Every webhook once, and ``RESEND_FRACTION`` of them again somewhere after the first."""
    keyed = [(float(i), webhook) for i, webhook in enumerate(webhooks)]
    resent = rng.sample(range(len(webhooks)), round(len(webhooks) * RESEND_FRACTION))
    keyed += [(rng.uniform(i + 1, len(webhooks)), webhooks[i]) for i in resent]
    keyed.sort(key=lambda pair: pair[0])
    return [webhook for _, webhook in keyed]


# --- servers -----------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Server:
    """A child process serving HTTP on ``port``; its stderr is kept."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    log: bytearray = field(default_factory=bytearray)

    def cpu(self) -> float:
        """CPU seconds the server has used so far."""
        return cpu_seconds(self.process.pid)

    def log_text(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.log.decode(errors="replace")


async def drain(stream: asyncio.StreamReader, sink: bytearray) -> None:
    """Read a child's stderr all along, so that it never blocks on a full pipe."""
    while chunk := await stream.read(65536):
        sink.extend(chunk)


async def wait_healthy(server: Server) -> None:
    """Poll /healthz until it answers 200; fail if the process dies first."""
    url = f"http://127.0.0.1:{server.port}/healthz"
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with asyncio.timeout(STARTUP_DEADLINE_SECONDS):
            while True:
                if server.process.returncode is not None:
                    raise RuntimeError(
                        f"{server.name} exited with {server.process.returncode} before /healthz"
                    )
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM (the server's own clean shutdown), SIGKILL if it hangs."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_DEADLINE_SECONDS):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def serving(
    name: str, command: Sequence[str], port: int, env: dict[str, str], cwd: Path
) -> AsyncIterator[Server]:
    """Start ``command``, wait for /healthz, and stop it however the block ends."""
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    server = Server(name, process, port)
    reader = asyncio.create_task(drain(process.stderr, server.log))
    failed = False
    try:
        await wait_healthy(server)
        yield server
    except Exception:
        failed = True
        raise
    finally:
        # Shielded: on Ctrl-C the child must still be stopped, not orphaned.
        await asyncio.shield(stop(process))
        await reader
        if failed:
            lines = [
                line for line in server.log_text().splitlines() if "aiohttp.access" not in line
            ]
            tail = "\n".join(lines)[-3000:]
            sys.stderr.write(f"--- {name} stderr, without access log lines (tail) ---\n{tail}\n")


def desk_command() -> list[str]:
    """The installed console script, else the module."""
    script = Path(sys.executable).with_name("complaint-desk")
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "bot.cli", "serve"]


def write_desk_config(workdir: Path, merge_duplicates: bool) -> Path:
    """The desk config in use (DESK_CONFIG or the packaged one), merging off unless asked."""
    configured = os.environ.get("DESK_CONFIG")
    source = Path(configured) if configured else ROOT / "bot" / "default_desk.toml"
    if merge_duplicates:
        return source.resolve()
    text, count = re.subn(
        r"^(\[duplicates\]\s*\nenabled\s*=\s*)true\b",
        r"\1false",
        source.read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    if count != 1:
        raise RuntimeError(f"{source}: no '[duplicates] enabled = true' to switch off")
    path = workdir / "desk.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- firing ------------------------------------------------------------------


@dataclass
class Firing:
    """What one firing run measured."""

    seconds: float
    latencies_ms: list[float]
    acked: set[str]
    errors: Counter[str]
    started_at: float  # epoch seconds of the first request
    server_cpu: float
    client_cpu: float

    @property
    def per_second(self) -> float:
        """Requests answered (any status) per second of wall time."""
        return len(self.latencies_ms) / self.seconds

    def percentile(self, q: int) -> float:
        """The ``q``-th percentile latency in ms."""
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]

    @property
    def p50_ms(self) -> float:
        """Median latency."""
        return self.percentile(50)

    @property
    def p99_ms(self) -> float:
        """99th percentile latency."""
        return self.percentile(99)

    @property
    def max_ms(self) -> float:
        """Slowest request."""
        return max(self.latencies_ms)

    @property
    def error_count(self) -> int:
        """Answers other than 200, and requests that got no answer."""
        return sum(self.errors.values())

    @property
    def server_cpu_percent(self) -> float:
        """Server CPU while firing, in percent of one core."""
        return 100 * self.server_cpu / self.seconds

    @property
    def client_cpu_percent(self) -> float:
        """This process's CPU while firing, in percent of one core."""
        return 100 * self.client_cpu / self.seconds


async def fire(server: Server, order: Sequence[Webhook], concurrency: int) -> Firing:
    """Send every webhook in ``order`` with at most ``concurrency`` in flight."""
    url = f"http://127.0.0.1:{server.port}/sms/inbound"
    latencies: list[float] = []
    acked: set[str] = set()
    errors: Counter[str] = Counter()
    pending = iter(order)

    async def worker(session: aiohttp.ClientSession) -> None:
        # One shared iterator: each worker takes the next webhook when it is free.
        for webhook in pending:
            started = time.perf_counter()
            try:
                async with session.post(url, data=webhook.body, headers=webhook.headers) as answer:
                    text = await answer.text()
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                text, status = f"{type(exc).__name__}: {exc}", 0
            latencies.append((time.perf_counter() - started) * 1000)
            if status == 200:
                acked.add(webhook.sid)
            else:
                errors[f"{status} {text.strip()[:120]}"] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        server_cpu, client_cpu = server.cpu(), time.process_time()
        started_at, started = time.time(), time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker(session))
        seconds = time.perf_counter() - started
        server_cpu, client_cpu = server.cpu() - server_cpu, time.process_time() - client_cpu
    return Firing(seconds, latencies, acked, errors, started_at, server_cpu, client_cpu)


# --- the desk's database -----------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """What the desk's SQLite file holds after the run."""

    rows: int
    sids: frozenset[str]
    unprocessed: int
    tickets: int
    merges: int
    first_ticket_at: float | None  # epoch seconds
    last_ticket_at: float | None


def epoch(value: str | None) -> float | None:
    """A stored UTC timestamp (SQLite keeps it naive) as epoch seconds."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() if value else None


def read_progress(path: Path) -> tuple[int, int, int]:
    """Inbound rows, of which unprocessed, and tickets: read-only, beside the running desk."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        rows, unprocessed = db.execute(
            "SELECT count(*), count(*) - count(reply_text) FROM inbound_messages"
        ).fetchone()
        (tickets,) = db.execute("SELECT count(*) FROM tickets").fetchone()
    return int(rows), int(unprocessed), int(tickets)


def read_stored(path: Path) -> Stored:
    """Everything the audit needs, in one read."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        sids = [sid for (sid,) in db.execute("SELECT external_id FROM inbound_messages")]
        (unprocessed,) = db.execute(
            "SELECT count(*) FROM inbound_messages WHERE reply_text IS NULL"
        ).fetchone()
        tickets, first, last = db.execute(
            "SELECT count(*), min(created_at), max(created_at) FROM tickets"
        ).fetchone()
        (merges,) = db.execute(
            "SELECT count(*) FROM ticket_events WHERE action = 'merge'"
        ).fetchone()
    return Stored(
        len(sids), frozenset(sids), int(unprocessed), int(tickets), int(merges),
        epoch(first), epoch(last),
    )  # fmt: skip


async def wait_processed(path: Path, deadline: float) -> tuple[int, float]:
    """Poll until no stored message waits for the worker; (backlog at start, seconds waited)."""
    started = time.perf_counter()
    _, backlog, _ = await asyncio.to_thread(read_progress, path)
    unprocessed = backlog
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(deadline):
            while unprocessed:
                await asyncio.sleep(POLL_SECONDS)
                _, unprocessed, _ = await asyncio.to_thread(read_progress, path)
    return backlog, time.perf_counter() - started


# --- the run -----------------------------------------------------------------


@dataclass
class Result:
    """Everything the report prints."""

    n: int
    requests: int
    concurrency: int
    desk: Firing
    bare: Firing | None
    stored: Stored
    backlog: int
    waited: float
    processing_cpu: float
    lost: int
    duplicated: int
    log_errors: list[str]


def audit(sent: Sequence[Webhook], firing: Firing, stored: Stored) -> tuple[int, int]:
    """(lost, duplicated), as the module docstring defines them."""
    unique_stored = len(stored.sids & {webhook.sid for webhook in sent})
    registered = stored.tickets + stored.merges
    lost = len(firing.acked - stored.sids) + max(0, unique_stored - registered)
    duplicated = (stored.rows - len(stored.sids)) + max(0, registered - unique_stored)
    return lost, duplicated


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    """Bare baseline, then the desk; the same requests for both."""
    rng = random.Random(20240611)
    port = free_port()
    webhooks = make_webhooks(args.n, port, rng)
    order = firing_order(webhooks, rng)
    bare: Firing | None = None
    if not args.skip_bare:
        # The bare app listens on the desk's port (the signature names it), before the desk.
        command = [sys.executable, str(SCRIPT), "--bare-child", str(port)]
        async with serving("bare aiohttp", command, port, dict(os.environ), workdir) as server:
            bare = await fire(server, order, args.concurrency)
    database = workdir / "desk.db"
    env = os.environ | {
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "DESK_CONFIG": str(write_desk_config(workdir, args.merge_duplicates)),
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": DESK_NUMBER,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "OUTBOX_DISPATCH": "false",
    }
    env.pop("TWILIO_MESSAGING_SERVICE_SID", None)
    # cwd is the temp dir, so that no .env of the checkout is read.
    async with serving("complaint-desk", desk_command(), port, env, workdir) as server:
        desk = await fire(server, order, args.concurrency)
        cpu = server.cpu()
        backlog, waited = await wait_processed(database, args.timeout)
        processing_cpu = server.cpu() - cpu
    stored = read_stored(database)
    lost, duplicated = audit(webhooks, desk, stored)
    log_errors = [
        line
        for line in server.log_text().splitlines()
        if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
    ]
    return Result(
        n=args.n, requests=len(order), concurrency=args.concurrency, desk=desk, bare=bare,
        stored=stored, backlog=backlog, waited=waited, processing_cpu=processing_cpu,
        lost=lost, duplicated=duplicated, log_errors=log_errors,
    )  # fmt: skip


def report(result: Result) -> None:
    """The table, then one machine-readable line."""
    desk, bare, stored = result.desk, result.bare, result.stored
    ratio = desk.per_second / bare.per_second if bare is not None else 0.0

    def row(label: str, mine: str, theirs: str = "", note: str = "") -> None:
        print(f"{label:36}{mine:>13}{theirs:>10}  {note}".rstrip())

    def both(label: str, fmt: str, figure: Callable[[Firing], float], note: str = "") -> None:
        theirs = format(figure(bare), fmt) if bare is not None else ""
        row(label, format(figure(desk), fmt), theirs, note)

    print(
        f"SMS intake: {result.n} messages + {result.requests - result.n} resent = "
        f"{result.requests} signed webhooks, concurrency {result.concurrency}, SQLite, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    row("", "desk", "bare" if bare is not None else "")
    verdict = "OK" if desk.per_second >= TARGET_PER_S else "UNDER"
    both(
        "webhooks/s",
        ".0f",
        lambda f: f.per_second,
        f"target >= {TARGET_PER_S}: {verdict}" + (f", ratio {ratio:.2f}" if bare else ""),
    )
    both("firing wall time, s", ".2f", lambda f: f.seconds)
    both("latency p50, ms", ".1f", lambda f: f.p50_ms)
    both("latency p99, ms", ".1f", lambda f: f.p99_ms)
    both("latency max, ms", ".1f", lambda f: f.max_ms)
    both("non-200 answers", "d", lambda f: f.error_count)
    both("server CPU while firing, % of core", ".0f", lambda f: f.server_cpu_percent)
    both("client CPU while firing, % of core", ".0f", lambda f: f.client_cpu_percent)
    for name, firing in (("desk", desk), ("bare", bare)):
        for error, count in firing.errors.most_common(5) if firing is not None else ():
            print(f"  {name}: {count} x {error}")
    row("tickets created / unique messages", f"{stored.tickets} / {result.n}")
    if stored.merges:
        row("  merged into an open ticket", f"{stored.merges}")
    row("inbound rows / unique SIDs stored", f"{stored.rows} / {len(stored.sids)}")
    row("unprocessed when the firing ended", f"{result.backlog}")
    row("unprocessed at the end", f"{stored.unprocessed}", "", f"(waited {result.waited:.1f} s)")
    if stored.last_ticket_at is not None and stored.tickets:
        span = stored.last_ticket_at - desk.started_at
        cpu = 100 * result.processing_cpu / max(result.waited, 1e-9)
        row(
            "processing, tickets/s",
            f"{stored.tickets / span:.0f}",
            "",
            f"first webhook to last ticket {span:.1f} s; server CPU {cpu:.0f}% after firing",
        )
    row("lost / duplicated", f"{result.lost} / {result.duplicated}")
    if result.log_errors:
        print(f"the desk logged {len(result.log_errors)} error line(s); the first ones:")
        for line in result.log_errors[:5]:
            print(f"  {line[:200]}")
    print(
        f"webhooks_per_s={desk.per_second:.0f} "
        f"bare_per_s={bare.per_second if bare is not None else 0:.0f} ratio={ratio:.2f} "
        f"p99_ms={desk.p99_ms:.0f} lost={result.lost} duplicated={result.duplicated}"
    )


# --- the bare baseline (a child process) --------------------------------------


def bare_child(port: int) -> None:
    """Serve one POST handler that reads the form and answers empty TwiML, until SIGTERM."""
    from aiohttp import web

    async def inbound(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(text=EMPTY_TWIML, content_type="text/xml", charset="utf-8")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/sms/inbound", inbound)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments; measure (parent) or serve the baseline (``--bare-child``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=5000, help="unique messages (default 5000)")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="requests in flight (default 64)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--skip-bare", action="store_true", help="no bare aiohttp baseline")
    parser.add_argument(
        "--merge-duplicates",
        action="store_true",
        help="keep the desk's merging of similar complaints (off by default)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds to wait for the intake worker after the firing (default 300)",
    )
    parser.add_argument("--bare-child", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_child is not None:
        bare_child(args.bare_child)
        return 0
    if args.n < 100 or args.concurrency < 1:
        parser.error("--n must be at least 100 and --concurrency at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="desk-sms-bench-"))
    try:
        result = asyncio.run(run(args, workdir))
    except KeyboardInterrupt:
        return 130
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
