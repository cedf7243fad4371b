"""API load: create / detail / list throughput and latency of the real web process, plus quota contention.

Usage: python bench/api_load.py [--duration 20] [--connections 32] [--configs 2x4,4x2,2x8]
                                [--repeat 1] [--profile] [--no-docs]

Service: the real web process (`python -m api.serve`: Granian serving wsgi:app, as the Procfile) with the
production settings (APP_ENV=production, a 48-character SECRET_KEY, PostgreSQL, ALLOW_PRIVATE_URLS=0)
on a scratch PostgreSQL database `shopimage_bench_api` and Redis db 9 (BENCH_REDIS_URL). No worker
runs: created jobs just queue in Redis, which is flushed before every phase. Any RATELIMIT_* settings
in the environment are passed through; otherwise rate limiting stays on with limits raised far above the load.

Load: wrk (Debian package `wrk`; installed with apt-get when missing) with the Lua scripts in
bench/wrk/, `--connections` connections over 2 wrk threads, for `--duration` seconds per phase
after a 3 s warm-up. 64 member users (quota 1,000,000 each, granted through the ledger) log in
over HTTP; each request takes the next user's token.

Phases per server arrangement (WORKERSxTHREADS, passed as WEB_CONCURRENCY / WEB_THREADS; an optional
":N" sets DB_POOL_SIZE=N for that arrangement):
  healthz      GET /healthz (reference: no database, no Redis)
  create       POST /api/task/create, valid basic_clean body, unique Idempotency-Key per request
  detail       GET /api/task/<id> over up to 16 tasks of each of the 64 users
  list         GET /api/task/list?limit=10 (each user holds a few hundred tasks by then)
  contention   one user with quota 2,000 hammered by all connections (long enough to exhaust the
               quota at the measured create rate, at most 60 s): only 201 and 402/1003
               answers allowed; afterwards balance == 0, tasks == ledger deductions == 2,000,
               and `flask --app wsgi quota audit` is clean.

For each phase it also reads the CPU seconds spent by the web server's workers, this database's
PostgreSQL backends, redis-server and wrk (from /proc), so the cost per request can be split.
`--profile` adds one more create phase with py-spy attached to every web worker and writes
the collapsed stacks and a flame graph under var/.

The summary table is printed and written into docs/PERFORMANCE.md between the api-load markers,
with the date, the machine, the server settings and the load averages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.harness import PG, REDIS, ROOT, free_port, record, scratch_env, start, stop

DB_NAME = "shopimage_bench_api"
WRK_DIR = ROOT / "bench" / "wrk"
VAR = ROOT / "var"
DOC = ROOT / "docs" / "PERFORMANCE.md"
BEGIN, END = "<!-- api-load:begin -->", "<!-- api-load:end -->"
USERS = 64
PASSWORD = "bench-pass-1"
MEMBER_QUOTA = 1_000_000
HAMMER_EMAIL = "hammer@bench.example.com"
SECRET = "bench-production-secret-0123456789abcdef0123456789"
WARMUP_SECONDS = 3
RATELIMITS = {
    "RATELIMIT_ENABLED": "1",
    "RATELIMIT_CREATE": "1000000/minute",
    "RATELIMIT_AUTHENTICATED": "1000000/minute",
    "RATELIMIT_ANONYMOUS": "1000000/minute",
    "RATELIMIT_LOGIN": "10000/minute",
    "MAX_ACTIVE_TASKS_PER_USER": "1000000",  # checked on every create, never reached (no worker runs)
}
CLK_TCK = os.sysconf("SC_CLK_TCK")

# phase -> (target req/s, target p99 ms or None)
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "healthz": (None, None),
    "create": (600, 100),
    "detail": (2000, None),
    "list": (1000, None),
    "contention": (None, None),
}
PHASES = ("healthz", "create", "detail", "list", "contention")
REFERENCE_SUFFIX = " reference"
ISSUE_REFERENCE_CREATE_RPS = 800.0
"""What the issue's minimal raw-SQL create endpoint reached on the machine the targets were set on."""


@dataclass
class PhaseResult:
    phase: str
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    statuses: dict[str, int]
    codes: dict[str, int]
    socket_errors: int
    load_avg: float
    cpu_ms_per_req: dict[str, float] = field(default_factory=dict)
    system_busy: float = 0.0
    new_connections: int = 0
    notes: list[str] = field(default_factory=list)
    ok_contention: bool | None = None
    busiest_worker: float = 0.0
    """Share of the web server CPU spent by the busiest worker process (1/workers = balanced)."""

    @property
    def errors(self) -> int:
        """Answers that were not the phase's expected success (plus socket errors)."""
        good = {"contention": {"201", "402"}}.get(self.phase, {"200", "201"})
        return self.socket_errors + sum(n for s, n in self.statuses.items() if s not in good)


# --- processes and measurements ----------------------------------------------------------------


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    print("wrk missing: apt-get install -y wrk", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("wrk") or "wrk"


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies over all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def pids_by_name(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def pg_sessions() -> int:
    """Connections ever opened to the scratch database (pg_stat_database.sessions, PostgreSQL 14+)."""
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (DB_NAME,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def pg_backends() -> list[int]:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (DB_NAME,)
        ).fetchall()
    return [r[0] for r in rows]


class CpuProbe:
    """CPU seconds per component over one phase, read from /proc."""

    def __init__(self, master: int) -> None:
        self.master = master

    def groups(self, wrk_pid: int | None) -> dict[str, list[int]]:
        return {
            "web": children(self.master),
            "postgres": pg_backends(),
            "redis": pids_by_name("redis-server"),
            "wrk": [wrk_pid] if wrk_pid else [],
        }

    def snapshot(self, wrk_pid: int | None = None) -> dict[str, dict[int, float]]:
        return {g: {p: cpu_seconds(p) for p in pids} for g, pids in self.groups(wrk_pid).items()}


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def flush_redis() -> None:
    from redis import Redis

    Redis.from_url(REDIS).flushdb()


def http_json(url: str, body: dict | None = None, token: str | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 60, path: str = "/readyz") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the web server exited with {proc.returncode}; see var/bench-api-web.log")
        try:
            http_json(base + path)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the web server did not become ready")


# --- the scratch service ------------------------------------------------------------------------


def service_env() -> dict[str, str]:
    overrides = {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "ALLOW_PRIVATE_URLS": "0",
        "LOG_LEVEL": "INFO",
        "JOB_OVERRIDES": "",
        "RUNNINGHUB_API_KEY": "",
    }
    # Rate limiting stays on (production setting, Redis storage) with limits far above the load,
    # unless the caller sets RATELIMIT_* explicitly.
    for name, value in RATELIMITS.items():
        overrides[name] = os.environ.get(name, value)
    for name in ("JWT_SECRET_KEY", "STORAGE_SIGNING_SECRET"):
        os.environ.pop(name, None)
    return scratch_env(DB_NAME, **overrides)


def seed_users(env: dict[str, str], hammer_quota: int) -> None:
    """64 members with a big quota and one member with `hammer_quota`, grants through the ledger.

    One PBKDF2 hash for all (the same password), so seeding does not spend a minute hashing.
    """
    from api import create_app
    from shared import users
    from shared.config import Config
    from shared.db import db
    from shared.models import User

    app = create_app(Config(env))
    with app.app_context():
        from werkzeug.security import generate_password_hash

        hashed = generate_password_hash(PASSWORD, method=users.password_method())
        for i in range(USERS + 1):
            email = HAMMER_EMAIL if i == USERS else f"load{i:02d}@bench.example.com"
            user = User(email=email, password_hash=hashed, is_member=False, quota=0)
            db.session.add(user)
            db.session.flush()
            users.grant(
                user, member=True, quota_delta=hammer_quota if i == USERS else MEMBER_QUOTA, note="bench"
            )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def login_all(base: str) -> tuple[list[str], str]:
    emails = [f"load{i:02d}@bench.example.com" for i in range(USERS)] + [HAMMER_EMAIL]

    def login(email: str) -> str:
        body = http_json(base + "/api/auth/login", {"email": email, "password": PASSWORD})
        return body["data"]["accessToken"]

    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(login, emails))
    return tokens[:USERS], tokens[USERS]


# --- wrk ---------------------------------------------------------------------------------------


def run_wrk(
    wrk: str,
    base: str,
    script: str,
    data_file: Path | None,
    run_id: str,
    duration: int,
    connections: int,
    probe: CpuProbe | None = None,
    phase: str = "",
) -> PhaseResult:
    cmd = [
        wrk, "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s", "--latency",
        "-s", str(WRK_DIR / script), base, "--", str(data_file or "-"), run_id,
    ]  # fmt: skip
    load = loadavg()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    before = probe.snapshot(proc.pid) if probe else None
    sessions0 = pg_sessions() if probe else 0
    busy0, total0 = system_cpu()
    t0 = time.monotonic()
    # Sample right before wrk ends, while its process still exists.
    time.sleep(max(0.0, duration - 0.4))
    after = probe.snapshot(proc.pid) if probe else None
    sessions1 = pg_sessions() if probe else 0
    busy1, total1 = system_cpu()
    elapsed = time.monotonic() - t0
    out, _ = proc.communicate()
    match = re.search(r"^BENCHJSON (.*)$", out, re.M)
    if proc.returncode != 0 or not match:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{out}")
    data = json.loads(match.group(1))
    lat = data["latency_us"]
    errs = data["errors"]
    rps = data["requests"] / (data["duration_us"] / 1e6)
    result = PhaseResult(
        phase=phase or script.removesuffix(".lua"),
        rps=rps,
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        requests=data["requests"],
        statuses=data["statuses"],
        codes=data["codes"],
        socket_errors=errs["connect"] + errs["read"] + errs["write"] + errs["timeout"],
        load_avg=load,
        system_busy=(busy1 - busy0) / max(1, total1 - total0) * os.cpu_count(),
        new_connections=sessions1 - sessions0,
    )
    if before and after:
        requests_in_window = rps * elapsed
        for group, now in after.items():
            spent = sum(cpu - before[group].get(pid, 0.0) for pid, cpu in now.items())
            result.cpu_ms_per_req[group] = spent / max(1.0, requests_in_window) * 1000
        per_worker = [cpu - before["web"].get(pid, 0.0) for pid, cpu in after["web"].items()]
        result.busiest_worker = max(per_worker) / sum(per_worker) if sum(per_worker) > 0 else 0.0
        result.cpu_ms_per_req["all"] = result.system_busy * elapsed / max(1.0, requests_in_window) * 1000
    return result


# --- one server arrangement ----------------------------------------------------------------------


def run_arrangement(
    args, wrk: str, workers: int, threads: int, pool: int | None, tag: str
) -> tuple[list[PhaseResult], list[PhaseResult]]:
    """The phases against the service, and (with --reference) each phase right after against the
    reference app (bench/reference_app.py) under the same server arrangement, on the same data."""
    env = service_env()
    seed_users(env, args.contention_quota)
    env = {**env, "HOST": "127.0.0.1", "WEB_CONCURRENCY": str(workers), "WEB_THREADS": str(threads)}
    if pool is not None:
        env["DB_POOL_SIZE"] = str(pool)
    port, ref_port = free_port(), free_port()
    base, ref_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ref_port}"
    proc = start([sys.executable, "-m", "api.serve"], {**env, "PORT": str(port)}, "bench-api-web.log")
    ref = None
    if args.reference:
        ref = start(
            [sys.executable, "-m", "api.serve", "bench.reference_app:app"],
            {**env, "PORT": str(ref_port)},
            "bench-api-reference.log",
        )
    results: list[PhaseResult] = []
    ref_results: list[PhaseResult] = []
    work = VAR / "bench-api"
    work.mkdir(parents=True, exist_ok=True)
    try:
        wait_ready(base, proc)
        if ref is not None:
            wait_ready(ref_base, ref, path="/healthz")
        tokens, hammer = login_all(base)
        (work / "tokens.txt").write_text("\n".join(tokens) + "\n")
        (work / "hammer.txt").write_text(hammer + "\n")
        probe = CpuProbe(proc.pid)
        ref_probe = CpuProbe(ref.pid) if ref is not None else None
        conns = args.connections

        def measure(
            name: str, script: str, data: Path | None, duration: int | None, url: str, cpu: CpuProbe,
            into: list[PhaseResult], label: str,
        ) -> PhaseResult:  # fmt: skip
            flush_redis()
            time.sleep(0.5)
            r = run_wrk(
                wrk, url, script, data, f"{tag}-{label}-{name}", duration or args.duration, conns, cpu, name
            )
            into.append(r)
            print(f"  {label:<9} {name:<10} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.1f} ms  p99 {r.p99_ms:6.1f} ms  "
                  f"statuses {r.statuses}  codes {r.codes}  sock-err {r.socket_errors}  load {r.load_avg:.2f}  "
                  f"cpu ms/req {fmt_cpu(r.cpu_ms_per_req)}  new PG connections {r.new_connections}  "
                  f"busiest worker {r.busiest_worker:.2f} of the web CPU", flush=True)  # fmt: skip
            return r

        def phase(
            name: str, script: str, data: Path | None, duration: int | None = None, reference: bool = True
        ) -> PhaseResult | None:
            if name not in args.phases.split(","):
                return None
            r = measure(name, script, data, duration, base, probe, results, "service")
            if reference and ref_probe is not None:
                measure(name, script, data, duration, ref_base, ref_probe, ref_results, "reference")
            return r

        # Warm-up (uncounted): fills the DB pools, imports, first-request paths.
        for url in [base] + ([ref_base] if ref is not None else []):
            run_wrk(wrk, url, "create.lua", work / "tokens.txt", f"{tag}-warm", WARMUP_SECONDS, conns)
            run_wrk(wrk, url, "list.lua", work / "tokens.txt", f"{tag}-warm", 1, conns)
        phase("healthz", "healthz.lua", None)
        phase("create", "create.lua", work / "tokens.txt")
        write_task_pairs(tokens, work / "tasks.txt")
        phase("detail", "detail.lua", work / "tasks.txt")
        phase("list", "list.lua", work / "tokens.txt")
        # Long enough to exhaust the quota at the create rate just measured (x2 for the row lock), 60 s max.
        create_rps = next((r.rps for r in results if r.phase == "create"), 100.0)
        contention_s = int(min(60, max(args.duration, 2 * args.contention_quota / max(create_rps, 1) + 3)))
        result = phase(
            "contention", "create.lua", work / "hammer.txt", duration=contention_s, reference=False
        )
        if result:
            time.sleep(1.0)  # let requests wrk abandoned at the end finish
            check_contention(result, env, args.contention_quota)
        scripts = {"create": ("create.lua", "tokens.txt"), "detail": ("detail.lua", "tasks.txt"),
                   "list": ("list.lua", "tokens.txt")}  # fmt: skip
        for name in args.profile.split(",") if args.profile else ():
            script, data = scripts[name]
            profile_phase(name, script, work / data, wrk, base, tag, args, proc.pid)
    finally:
        stop(proc)
        if ref is not None:
            stop(ref)
        flush_redis()
    return results, ref_results


def fmt_cpu(cpu: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.2f}" for k, v in cpu.items())


def write_task_pairs(tokens: list[str], path: Path) -> None:
    """Up to 16 tasks of each load user, paired with that user's token."""
    with psycopg.connect(f"{PG}/{DB_NAME}") as conn:
        rows = conn.execute(
            "SELECT u.email, t.id FROM users u JOIN LATERAL "
            "(SELECT id FROM tasks WHERE user_id = u.id ORDER BY created_at DESC LIMIT 16) t ON true "
            "WHERE u.email LIKE 'load%%'"
        ).fetchall()
    by_email = {f"load{i:02d}@bench.example.com": tok for i, tok in enumerate(tokens)}
    path.write_text("".join(f"{by_email[email]} {task_id}\n" for email, task_id in rows))


def check_contention(result: PhaseResult, env: dict[str, str], quota: int) -> None:
    with psycopg.connect(f"{PG}/{DB_NAME}") as conn:
        user_id, balance = conn.execute(
            "SELECT id, quota FROM users WHERE email = %s", (HAMMER_EMAIL,)
        ).fetchone()
        tasks = conn.execute("SELECT count(*) FROM tasks WHERE user_id = %s", (user_id,)).fetchone()[0]
        deducts, ledger_sum = conn.execute(
            "SELECT count(*) FILTER (WHERE reason = 'deduct'), coalesce(sum(amount), 0) FROM quota_ledger "
            "WHERE user_id = %s",
            (user_id,),
        ).fetchone()
        keys = conn.execute(
            "SELECT count(*) FROM idempotency_keys WHERE user_id = %s", (user_id,)
        ).fetchone()[0]
    audit = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "quota", "audit"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    created = result.statuses.get("201", 0)
    other_codes = {c: n for c, n in result.codes.items() if c != "1003"}
    checks = {
        "only 201 and 402/1003": result.errors == 0 and not other_codes,
        f"balance {balance} == 0": balance == 0,
        f"tasks {tasks} == deductions {deducts} == quota {quota}": tasks == deducts == quota,
        f"idempotency records {keys} == tasks": keys == tasks,
        f"ledger sum {ledger_sum} == balance": ledger_sum == balance,
        f"201 answers seen {created} <= {quota}": created <= quota,
        "quota audit clean": audit.returncode == 0,
    }
    result.ok_contention = all(checks.values())
    result.notes = [f"{'ok' if ok else 'FAIL'}: {name}" for name, ok in checks.items()]
    result.notes.append("audit: " + (audit.stdout.strip() or audit.stderr.strip()).splitlines()[-1])
    for note in result.notes:
        print("    " + note, flush=True)


def profile_phase(
    name: str, script: str, data: Path, wrk: str, base: str, tag: str, args, master: int
) -> None:
    """One more run of a phase with py-spy (nonblocking) sampling every web worker.

    Writes collapsed stacks (var/bench-api-profile-*.txt, one per worker) and prints the
    functions that hold the most samples, inclusive and self.
    """
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    outs, procs = [], []
    for pid in children(master):
        out = VAR / f"bench-api-profile-{name}-{tag}-{pid}.txt"
        outs.append(out)
        procs.append(subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--duration", str(args.duration - 2), "--rate", "200",
             "--nonblocking", "--gil", "--format", "raw", "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
    flush_redis()
    time.sleep(1)
    r = run_wrk(wrk, base, script, data, f"{tag}-prof-{name}", args.duration, args.connections)
    for p in procs:
        p.wait(60)
    print(
        f"  profiled {name}: {r.rps:.0f} req/s under py-spy; stacks in var/bench-api-profile-{name}-{tag}-*.txt"
    )
    print(profile_report([o for o in outs if o.exists()]))


PROFILE_BUCKETS = (
    # (label, function as py-spy names it (a trailing ".x" part is enough), file) - inclusive share
    ("whole request (Flask.wsgi_app)", "Flask.wsgi_app", "app.py"),
    ("  rate limiter check (key + one Redis script call)", "RateLimiter._check", "ratelimit.py"),
    ("    limiter key: user_or_ip (token check)", "user_or_ip", "ratelimit.py"),
    ("  rate limit headers", "RateLimiter._add_headers", "ratelimit.py"),
    ("  request log + metrics (after_request)", "init_app.<locals>.finish", "observability.py"),
    ("  body parse + marshmallow load", "load_body", "body.py"),
    ("  URL check (urlguard)", "check_remote_url", "inputs.py"),
    ("  token checks (token_claims, cached)", "token_claims", "auth.py"),
    ("    full JWT verification (cache misses)", "verify_jwt_in_request", "view_decorators.py"),
    ("  create_task (one statement + commit)", "create_task", "tasks.py"),
    ("    Session.commit (COMMIT)", "scoped_session.commit", "scoping.py"),
    ("    idempotency replay (find_replay)", "find_replay", "tasks.py"),
    ("  RQ enqueue (_enqueue)", "_enqueue", "tasks.py"),
    ("  jsonify", "jsonify", "__init__.py"),
    ("  pool checkout incl. pre-ping", "_ConnectionFairy._checkout", "base.py"),
    ("    pre-ping (SELECT 1)", "_do_ping_w_event", "default.py"),
    ("  session teardown (remove/close)", "SQLAlchemy._teardown_session", "extension.py"),
    ("  detail: read_owned (joined SELECT)", "read_owned", "tasks.py"),
    ("  detail: dump_task", "dump_task", "tasks.py"),
    ("  detail: queue position (LPOS)", "_queue_position", "tasks.py"),
    ("  list: list_for_user", "list_for_user", "tasks.py"),
    ("all SQLAlchemy Connection.execute", "Connection.execute", "base.py"),
    ("all psycopg Cursor.execute", "Cursor.execute", "cursor.py"),
    ("all redis commands (Redis.execute_command)", "Redis.execute_command", "client.py"),
    ("all redis pipelines (Pipeline.execute)", "Pipeline.execute", "client.py"),
    ("all logging (Logger.*)", "Logger._log", "__init__.py"),
)


def _matches(frame_names: set[tuple[str, str]], func: str, file: str) -> bool:
    return any(f == file and (fn == func or fn.endswith("." + func)) for fn, f in frame_names)


def profile_report(files: list[Path], top: int = 20) -> str:
    """On-CPU sample shares from py-spy raw (collapsed) stacks recorded with --gil: a curated list of
    inclusive buckets (request stages) and the functions with the most self samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for f in files:
        for line in f.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            n = int(count)
            frames = stack.split(";")[1:]  # drop the "thread (...)" frame
            total += n
            names = {
                (fr.split(" (")[0], fr.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]) for fr in frames
            }
            for label, func, file in PROFILE_BUCKETS:
                if _matches(names, func, file):
                    inclusive[label] += n
            if frames:
                own[frames[-1].split(":")[0]] += n
    if not total:
        return "  (no samples)"
    lines = [
        f"  on-CPU samples (GIL held) in the web workers: {total}",
        "  inclusive, by request stage:",
    ]
    lines += [f"    {inclusive[label] / total:6.1%}  {label}" for label, _, _ in PROFILE_BUCKETS]
    lines.append("  self (top functions):")
    lines += [f"    {n / total:6.1%}  {name})" for name, n in own.most_common(top)]
    return "\n".join(lines)


def granian_version() -> str:
    from importlib.metadata import version

    return version("granian")


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout
    return out.split(" [")[0].strip() or "wrk"


# --- in-process breakdown: CPU per request, round trips, stage costs, config variants ----------


def breakdown(args) -> str:
    """Single-threaded, in-process (Flask test client, production config, real PostgreSQL and Redis):
    CPU ms per request for create / detail / list under config-only variants, SQL statements and
    Redis round trips per request, and the CPU cost of each stage called on its own."""
    import contextlib
    import io

    import redis.connection
    from sqlalchemy import event

    from api import create_app
    from shared import queues, task_types, tasks
    from shared.config import Config
    from shared.db import db
    from shared.models import Task, User

    env = service_env()
    seed_users(env, args.contention_quota)
    n = args.breakdown

    class NoPrePing(Config):
        def __init__(self, e):
            super().__init__(e)
            self.SQLALCHEMY_ENGINE_OPTIONS["pool_pre_ping"] = False

    variants = [
        ("production settings", {}, Config),
        ("RATELIMIT_ENABLED=0", {"RATELIMIT_ENABLED": "0"}, Config),
        ("LOG_LEVEL=WARNING (no request log line)", {"LOG_LEVEL": "WARNING"}, Config),
        ("pool_pre_ping=False", {}, NoPrePing),
        ("all three", {"RATELIMIT_ENABLED": "0", "LOG_LEVEL": "WARNING"}, NoPrePing),
    ]
    counts = Counter()
    original_send = redis.connection.AbstractConnection.send_packed_command

    def counting_send(self, command, check_health=True):
        counts["redis"] += 1
        return original_send(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = counting_send
    out = [
        "In-process, one thread, test client; CPU ms per request (process_time) and round trips per request.",
        "",
    ]
    out.append(
        "| variant | create CPU ms | detail CPU ms | list CPU ms | create SQL stmts | create Redis writes | detail SQL | detail Redis | list SQL | list Redis |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    sink = io.StringIO()
    for label, extra, config_class in variants:
        with contextlib.redirect_stderr(sink):
            app = create_app(config_class({**env, **extra}))
        with app.app_context():
            engine = db.engine

            @event.listens_for(engine, "before_cursor_execute")
            def _count(*_a, **_k):
                counts["sql"] += 1

            @event.listens_for(engine, "commit")
            def _commit(*_a, **_k):
                counts["sql"] += 1

            @event.listens_for(engine, "checkout")
            def _checkout(*_a, **_k):
                counts["checkout"] += 1

        client = app.test_client()
        with contextlib.redirect_stderr(sink):
            tokens = []
            for i in range(USERS):
                r = client.post(
                    "/api/auth/login", json={"email": f"load{i:02d}@bench.example.com", "password": PASSWORD}
                )
                tokens.append(r.get_json()["data"]["accessToken"])
            results = {}
            logs_per: dict[str, float] = {}
            ids: list[tuple[str, str]] = []
            for kind in ("create", "detail", "list"):
                for warm in (True, False):
                    m = 30 if warm else n
                    counts.clear()
                    lines0 = sink.getvalue().count("\n")
                    cpu0 = time.process_time()
                    for j in range(m):
                        tok = tokens[j % USERS]
                        h = {"Authorization": "Bearer " + tok}
                        if kind == "create":
                            key = f"bd-{warm:d}-{j}-{time.time_ns()}"
                            r = client.post("/api/task/create", headers={**h, "Idempotency-Key": key},
                                            json={"type": "basic_clean", "inputImageUrl": f"https://images.example.com/p/{key}.jpg", "params": {"template": "all"}})  # fmt: skip
                            assert r.status_code == 201, r.get_json()
                            ids.append((tok, r.get_json()["data"]["taskId"]))
                        elif kind == "detail":
                            tok, tid = ids[j % len(ids)]
                            r = client.get(f"/api/task/{tid}", headers={"Authorization": "Bearer " + tok})
                            assert r.status_code == 200, r.get_json()
                        else:
                            r = client.get("/api/task/list?limit=10&offset=0", headers=h)
                            assert r.status_code == 200, r.get_json()
                    cpu = (time.process_time() - cpu0) / m * 1000
                    if not warm:
                        results[kind] = (
                            cpu,
                            (counts["sql"] + counts["checkout"] * (config_class is Config)) / m,
                            counts["redis"] / m,
                        )
                        logs_per[kind] = (sink.getvalue().count("\n") - lines0) / m
        flush_redis()
        out.append(
            f"| {label} | {results['create'][0]:.2f} | {results['detail'][0]:.2f} | {results['list'][0]:.2f} | "
            f"{results['create'][1]:.1f} | {results['create'][2]:.1f} | {results['detail'][1]:.1f} | {results['detail'][2]:.1f} | "
            f"{results['list'][1]:.1f} | {results['list'][2]:.1f} |"
        )
        print(out[-1], f"(log lines per request: {logs_per})", flush=True)
        with app.app_context():
            db.engine.dispose()
    redis.connection.AbstractConnection.send_packed_command = original_send
    out.append("")
    out.append(
        "SQL statements include COMMIT and (with pre-ping) one SELECT 1 per pool checkout; psycopg also sends one BEGIN per transaction (not counted)."
    )

    # Stage costs, each called on its own inside an app context, CPU ms per call.
    with contextlib.redirect_stderr(sink):
        app = create_app(Config(env))
    stage: dict[str, float] = {}
    with app.app_context(), app.test_request_context():
        from flask_jwt_extended import create_access_token, decode_token

        from shared.app import redis_client

        token = create_access_token(identity="1")
        user_id = db.session.scalar(db.select(User.id).where(User.email == "load00@bench.example.com"))
        task_id = db.session.scalar(db.select(Task.id).where(Task.user_id == user_id).limit(1))
        body = {
            "type": "basic_clean",
            "inputImageUrl": "https://images.example.com/p/x.jpg",
            "params": {"template": "all"},
        }
        from api.routes.tasks import create_schema

        def timeit(name, fn, m=n):
            for _ in range(20):
                fn()
            t0 = time.process_time()
            for _ in range(m):
                fn()
            stage[name] = (time.process_time() - t0) / m * 1000

        def get_user():
            db.session.get(User, user_id)
            db.session.remove()

        def core_user():
            db.session.execute(
                db.select(User.id, User.is_active, User.is_member, User.member_until, User.is_admin).where(
                    User.id == user_id
                )
            ).one()
            db.session.remove()

        def get_task():
            db.session.get(Task, task_id)
            db.session.remove()

        counter = iter(range(10**9))

        def create_only():
            tasks.create_task(user_id, "basic_clean", "https://images.example.com/p/x.jpg", {"template": "all"},
                              idempotency=(f"stage-{time.time_ns()}-{next(counter)}", "0" * 64))  # fmt: skip
            db.session.remove()

        def create_noidem():
            tasks.create_task(
                user_id, "basic_clean", "https://images.example.com/p/x.jpg", {"template": "all"}
            )
            db.session.remove()

        def enqueue():
            spec = task_types.get("basic_clean").job
            queues.enqueue_task(redis_client(), f"stage{next(counter)}", "basic_clean", spec)

        def find_replay():
            tasks.find_replay(user_id, "no-such-key", "0" * 64)
            db.session.remove()

        def empty_txn():
            db.session.execute(db.text("SELECT 1"))
            db.session.commit()
            db.session.remove()

        timeit("JWT decode (decode_token)", lambda: decode_token(token))
        timeit("schema load (CreateTaskSchema)", lambda: create_schema.load(body))
        timeit("request_fingerprint", lambda: tasks.request_fingerprint(body))
        timeit("checkout + SELECT 1 + COMMIT + remove (floor of any DB use)", empty_txn)
        timeit("ORM db.session.get(User) + remove", get_user)
        timeit("Core SELECT of 5 user columns + remove", core_user)
        timeit("ORM db.session.get(Task) + remove", get_task)
        timeit("find_replay (miss) + remove", find_replay)
        timeit("create_task with idempotency record + remove", create_only)
        timeit("create_task without idempotency record + remove", create_noidem)
        timeit("queues.enqueue_task (RQ)", enqueue)
    flush_redis()
    out += [
        "",
        "Stage costs (CPU ms per call, in-process, one thread):",
        "",
        "| stage | CPU ms |",
        "|---|---|",
    ]
    out += [f"| {k} | {v:.3f} |" for k, v in stage.items()]
    return "\n".join(out) + "\n"


# --- report ------------------------------------------------------------------------------------


def summarise(rows: list[PhaseResult]) -> dict:
    def med(values):
        return statistics.median(values)

    return {
        "rps": med([r.rps for r in rows]),
        "rps_min": min(r.rps for r in rows),
        "rps_max": max(r.rps for r in rows),
        "p50": med([r.p50_ms for r in rows]),
        "p99": med([r.p99_ms for r in rows]),
        "p99_max": max(r.p99_ms for r in rows),
        "errors": sum(r.errors for r in rows),
        "load": med([r.load_avg for r in rows]),
        "cpu": {k: med([r.cpu_ms_per_req.get(k, 0) for r in rows]) for k in rows[0].cpu_ms_per_req},
        "ok_contention": all(r.ok_contention for r in rows) if rows[0].phase == "contention" else None,
        "n": len(rows),
        "new_conns": round(statistics.median([r.new_connections for r in rows])),
        "busiest": med([r.busiest_worker for r in rows]),
    }


def verdict(phase: str, s: dict, arrangement: str = "") -> tuple[str, str]:
    if arrangement.endswith(REFERENCE_SUFFIX):
        return "yardstick (bench/reference_app.py)", "-"
    target_rps, target_p99 = TARGETS[phase]
    if phase == "contention":
        return "only 1003, balance exact", "pass" if s["ok_contention"] else "FAIL"
    if target_rps is None:
        return "(floor: no database, no Redis)", "-"
    target = f">= {target_rps:.0f}/s" + (f", p99 <= {target_p99:.0f} ms" if target_p99 else "")
    ok = s["rps"] >= target_rps and (target_p99 is None or s["p99"] <= target_p99) and s["errors"] == 0
    return target, "pass" if ok else "FAIL"


LABELS = {
    "healthz": "GET /healthz",
    "create": "POST /api/task/create",
    "detail": "GET /api/task/<id>",
    "list": "GET /api/task/list",
    "contention": "create, 1 user x quota",
}


def summaries(results: dict[str, dict[str, list[PhaseResult]]]):
    """(arrangement, phase, summary) for every measured phase, in table order."""
    for arrangement, phases in results.items():
        for phase in PHASES:
            if phase in phases:
                yield arrangement, phase, summarise(phases[phase])


def record_summary(results: dict[str, dict[str, list[PhaseResult]]]) -> None:
    """The first arrangement's figures for `bench/summary.py` (`make bench` runs the default one)."""
    first = next(iter(results))
    chosen = {k: v for k, v in results.items() if k in (first, first + REFERENCE_SUFFIX)}
    rows = []
    for arrangement, phase, s in summaries(chosen):
        target, ok = verdict(phase, s, arrangement)
        value = f"{s['rps']:.0f} req/s, p99 {s['p99']:.0f} ms"
        rows.append((f"{LABELS[phase]} ({arrangement}, n={s['n']})", value, target, ok))
    record("api_load", rows)


def table(results: dict[str, dict[str, list[PhaseResult]]]) -> str:
    head = (
        "| server | endpoint | req/s median (min-max) | p50 ms | p99 ms (max) | errors | target | result |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for arrangement, phase, s in summaries(results):
        target, ok = verdict(phase, s, arrangement)
        spread = (
            f"{s['rps']:.0f} ({s['rps_min']:.0f}-{s['rps_max']:.0f})" if s["n"] > 1 else f"{s['rps']:.0f}"
        )
        p99 = f"{s['p99']:.1f} ({s['p99_max']:.1f})" if s["n"] > 1 else f"{s['p99']:.1f}"
        lines.append(
            f"| {arrangement} | {LABELS[phase]} | {spread} | {s['p50']:.1f} | {p99} | {s['errors']} | {target} | {ok} |"
        )
    return head + "\n".join(lines) + "\n"


def share_table(results: dict[str, dict[str, list[PhaseResult]]]) -> str:
    """Service req/s over reference req/s, phase by phase: median of the per-run ratios (each ratio
    from one run, where the reference phase ran right after the service's)."""
    lines = []
    for arrangement, phases in results.items():
        ref = results.get(arrangement + REFERENCE_SUFFIX)
        if arrangement.endswith(REFERENCE_SUFFIX) or not ref:
            continue
        for phase in PHASES:
            if phase not in phases or phase not in ref:
                continue
            ratios = [ours.rps / theirs.rps for ours, theirs in zip(phases[phase], ref[phase], strict=True)]
            target_rps = TARGETS[phase][0]
            needed = ""
            if target_rps and phase == "create":
                needed = f"{target_rps / ISSUE_REFERENCE_CREATE_RPS:.2f} (600 of the issue's ~800/s)"
            lines.append(
                f"| {arrangement} | {LABELS[phase]} | {statistics.median(r.rps for r in phases[phase]):.0f} | "
                f"{statistics.median(r.rps for r in ref[phase]):.0f} | {statistics.median(ratios):.2f} "
                f"({min(ratios):.2f}-{max(ratios):.2f}) | {needed} |"
            )
    if not lines:
        return ""
    head = (
        "| server | endpoint | service req/s | reference req/s | share median (min-max) | share the target implies |\n"
        "|---|---|---|---|---|---|\n"
    )
    return head + "\n".join(lines) + "\n"


def cpu_table(results: dict[str, dict[str, list[PhaseResult]]]) -> str:
    head = (
        "| server | endpoint | web | postgres | redis | wrk | whole machine | load avg | idle-box ceiling req/s | new PG connections | busiest worker's CPU share |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for arrangement, phase, s in summaries(results):
        c = s["cpu"]
        lines.append(
            f"| {arrangement} | {phase} | {c.get('web', 0):.2f} | {c.get('postgres', 0):.2f} | "
            f"{c.get('redis', 0):.2f} | {c.get('wrk', 0):.2f} | {c.get('all', 0):.2f} | {s['load']:.2f} | "
            f"{ceiling(c):.0f} | {s['new_conns']} | {s['busiest']:.2f} |"
        )
    return head + "\n".join(lines) + "\n"


def ceiling(cpu: dict[str, float]) -> float:
    """Requests/s the cores could serve if only this benchmark ran: nproc / own CPU per request."""
    own = sum(cpu.get(k, 0) for k in ("web", "postgres", "redis", "wrk"))
    return (os.cpu_count() or 1) * 1000 / own if own else 0.0


def machine() -> str:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores (nproc), {cpu}, Linux {platform.release()}, Python {platform.python_version()}"


def write_docs(section: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Performance\n\n"
    block = f"{BEGIN}\n{section}{END}\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    DOC.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per measured phase")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--configs",
        default=f"{os.environ.get('WEB_CONCURRENCY', '2')}x{os.environ.get('WEB_THREADS', '4')}",
        help="server arrangements WORKERSxTHREADS[:DB_POOL_SIZE], comma separated (default: WEB_CONCURRENCY x WEB_THREADS or 2x4)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per arrangement (spread reported)")
    parser.add_argument("--contention-quota", type=int, default=2000)
    parser.add_argument(
        "--profile",
        nargs="?",
        const="create",
        default="",
        help="extra runs of these phases (create,detail,list; default create) under py-spy",
    )
    parser.add_argument("--phases", default=",".join(PHASES), help="subset of " + ",".join(PHASES))
    parser.add_argument(
        "--breakdown",
        type=int,
        default=0,
        metavar="N",
        help="instead of the load run: in-process CPU/round-trip breakdown over N requests per endpoint",
    )
    parser.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        help="skip the reference app (bench/reference_app.py) run after each phase",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/PERFORMANCE.md")
    args = parser.parse_args()

    VAR.mkdir(exist_ok=True)
    if args.breakdown:
        report = breakdown(args)
        print(report)
        (VAR / "bench-api-breakdown.md").write_text(report)
        return
    wrk = ensure_wrk()
    started = datetime.now(UTC)
    load_start = Path("/proc/loadavg").read_text().split()[:3]
    arrangements = []
    for c in (c for c in args.configs.split(",") if c):
        shape, _, pool = c.partition(":")
        workers, threads = (int(x) for x in shape.lower().split("x"))
        arrangements.append((workers, threads, int(pool) if pool else None))
    results: dict[str, dict[str, list[PhaseResult]]] = {}
    for rep in range(args.repeat):
        for workers, threads, pool in arrangements:
            name = f"{workers}x{threads}" + (f" pool {pool}" if pool is not None else "")
            print(
                f"== web server {workers} workers x {threads} threads, DB_POOL_SIZE "
                f"{pool if pool is not None else os.environ.get('DB_POOL_SIZE', threads)}, run {rep + 1}/{args.repeat}",
                flush=True,
            )
            rows, ref_rows = run_arrangement(
                args, wrk, workers, threads, pool, f"{name.replace(' ', '')}-r{rep}-{int(time.time())}"
            )
            for r in rows:
                results.setdefault(name, defaultdict(list))[r.phase].append(r)
            for r in ref_rows:
                results.setdefault(name + REFERENCE_SUFFIX, defaultdict(list))[r.phase].append(r)
    load_end = Path("/proc/loadavg").read_text().split()[:3]

    ratelimit = {k: os.environ.get(k, v) for k, v in RATELIMITS.items()}
    summary = table(results)
    cpu = cpu_table(results)
    shares = share_table(results)
    print()
    print(summary)
    if shares:
        print("The service as a share of the reference app, run by run:")
        print(shares)
    print("CPU ms per request (from /proc; 'whole machine' includes other tenants):")
    print(cpu)
    record_summary(results)
    if args.no_docs:
        return
    contention_notes = [
        f"- {name}: " + "; ".join(n for n in phases["contention"][-1].notes)
        for name, phases in results.items()
        if "contention" in phases
    ]
    section = f"""## API load (`bench/api_load.py`)

Run {started:%Y-%m-%d %H:%M} UTC: `python bench/api_load.py --duration {args.duration} --connections {args.connections} --configs {args.configs} --repeat {args.repeat}`

- Machine: {machine()}. Load average at start {" / ".join(load_start)}, at end {" / ".join(load_end)} (1/5/15 min); the
  machine is shared, so other processes compete for the cores during the run (the per-phase 1-minute load average is in the CPU table).
- Service: `python -m api.serve` (Granian {granian_version()}, WSGI, HTTP/1.1 keep-alive, no access log), WEB_CONCURRENCY x WEB_THREADS
  as in the first column; APP_ENV=production, PostgreSQL (pool DB_POOL_SIZE = WEB_THREADS + {os.environ.get("DB_MAX_OVERFLOW", "5")} overflow per process unless the first column names a pool), Redis db 9, no worker running (jobs queue in Redis, flushed before each phase).
  Rate limiting on (api/ratelimit.py: fixed windows in Redis, one Lua call per request) with raised limits:
  {", ".join(f"{k}={v}" for k, v in ratelimit.items())}. Logging: production default (LOG_LEVEL=INFO, JSON, one line per request, to var/bench-api-web.log).
- Load: {wrk_version(wrk)}, 2 threads, {args.connections} connections, {args.duration} s per phase after a {WARMUP_SECONDS} s warm-up; 64 member users, the token rotates per request; every create carries a unique Idempotency-Key.
  wrk is closed-loop: latencies are per answered request at the rate the server sustained.
- Spread: with --repeat N the req/s column shows median (min-max) over N runs and p99 the median (max).

{summary}
{"The service as a share of the reference app (bench/reference_app.py: the issue's minimal raw-SQL endpoints without any check, same server arrangement, same data, each phase run right after the service's):" + chr(10) + chr(10) + shares if shares else ""}
CPU milliseconds per request by component (median over runs, read from /proc; "whole machine" is all busy CPU on
the box divided by this phase's requests, so it includes other tenants; "idle-box ceiling" = cores / (web +
postgres + redis + wrk CPU per request): what this arrangement could reach if nothing else ran):

{cpu}
Contention (one user, quota {args.contention_quota}, {args.connections} connections):
{chr(10).join(contention_notes)}

"""
    write_docs(section)
    print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
