"""The `shopimage` command against a real service: the Procfile's web process, a real RQ worker,
PostgreSQL and Redis. Most tests run a stub job that stores real files (tests/client/jobs.py);
one runs the real basic_clean pipeline. The command runs as a subprocess (the installed
`shopimage` script) or in-process through click's CliRunner where a test reaches into it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import func, select, update

from client import cli
from client.service import Service
from shared import api_keys
from shared.db import db
from shared.models import QuotaLedger, Task, Upload, User
from tests.conftest import ROOT, app_with, wait_for
from tests.photos import product_photo

STUB = "basic_clean=tests.client.jobs.store_input,model_pose12=tests.client.jobs.store_input"
SHOPIMAGE = Path(sys.executable).parent / "shopimage"
WORKFLOWS = str(ROOT / "config" / "runninghub-workflows.example.json")
RUNNINGHUB = {
    "RUNNINGHUB_BASE_URL": "http://127.0.0.1:9",
    "RUNNINGHUB_API_KEY": "rh-key",
    "RUNNINGHUB_WORKFLOWS_FILE": WORKFLOWS,
    "RUNNINGHUB_WEBHOOK_SECRET": "rh-hook-secret",
}


@pytest.fixture
def app(database, redis):
    """The in-process app (factories, direct API calls) enqueues the same stub as the web process."""
    yield from app_with(JOB_OVERRIDES=STUB)


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    """In-process runs poll often (the subprocess ones keep the shipped interval)."""
    monkeypatch.setattr(cli, "POLL_SECONDS", 0.2)


@pytest.fixture
def service(start_live_server, start_worker):
    """The web process and a worker, both running the stub job for every type."""
    start_worker(JOB_OVERRIDES=STUB, **RUNNINGHUB)
    return start_live_server(JOB_OVERRIDES=STUB, **RUNNINGHUB)


def account(make_user, quota: int) -> tuple[User, str]:
    user = make_user(quota=quota)
    _key, secret = api_keys.create_key(user, "laptop")
    db.session.commit()
    return user, secret


def photos(folder: Path, names: dict[str, bytes]) -> Path:
    folder.mkdir()
    for name, data in names.items():
        (folder / name).write_bytes(data)
    return folder


def seller_env(url: str, key: str) -> dict[str, str]:
    return {**os.environ, "SHOPIMAGE_URL": url, "SHOPIMAGE_API_KEY": key}


def shopimage(url: str, key: str, *args: str | Path) -> subprocess.CompletedProcess:
    """The installed command, as a seller runs it."""
    return subprocess.run(
        [SHOPIMAGE, "process", *map(str, args)],
        env=seller_env(url, key),
        capture_output=True,
        text=True,
        timeout=300,
    )


def invoke(url: str, key: str, *args: str | Path):
    """The command in this process (so a test can reach into it)."""
    env = {"SHOPIMAGE_URL": url, "SHOPIMAGE_API_KEY": key}
    return CliRunner().invoke(cli.main, ["process", *map(str, args)], env=env)


def balance(user: User) -> int:
    db.session.expire_all()
    return db.session.get(User, user.id).quota


def count(model, user: User, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.user_id == user.id, *where))


def state_files(out: Path) -> list[Path]:
    return sorted((out / ".shopimage" / "batches").iterdir())


def test_a_folder_through_the_real_pipeline_then_a_rerun_skips_it(
    tmp_path, make_user, start_live_server, start_worker
):
    user, key = account(make_user, quota=10)
    shots = photos(
        tmp_path / "shots",
        {
            "shoe-01.jpg": product_photo(200, 240, seed=1),
            "shoe-02.JPG": product_photo(240, 200, seed=2),
            "bag.png": product_photo(180, 180, seed=3, fmt="PNG"),
        },
    )
    out = tmp_path / "out"
    start_worker(JOB_OVERRIDES="", WORKER_PRELOAD="1")
    server = start_live_server(JOB_OVERRIDES="")

    done = shopimage(server.url, key, shots, "--out", out, "--batch-size", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in out.iterdir()) == [".shopimage", "bag", "shoe-01", "shoe-02"]
    for stem, (width, height) in {"shoe-01": (200, 240), "shoe-02": (240, 200), "bag": (180, 180)}.items():
        files = sorted(p.name for p in (out / stem).iterdir())
        assert files == ["enhanced.png", "matting.png", "white-bg.png"]
        assert Image.open(out / stem / "matting.png").size == (width, height)
    assert state_files(out) == [] and list((out / ".shopimage" / "tmp").iterdir()) == []
    assert "3 written" in done.stdout and "0 failed" in done.stdout
    assert balance(user) == 7 and count(Upload, user) == 3

    again = shopimage(server.url, key, shots, "--out", out)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 already in" in again.stderr and "0 written" in again.stdout
    assert balance(user) == 7 and count(Upload, user) == 3  # nothing uploaded, nothing charged


def test_a_failed_photo_exits_1_naming_it_and_why(tmp_path, make_user, service):
    user, key = account(make_user, quota=10)
    shots = photos(
        tmp_path / "shots",
        {
            "a.jpg": product_photo(120, 120, seed=1),
            "tiny.jpg": product_photo(40, 40, seed=2),
            "notes.txt": b"not a photo",
            ".hidden.jpg": product_photo(120, 120, seed=3),
            "twin.jpg": product_photo(120, 120, seed=4),
            "TWIN.png": product_photo(120, 120, seed=5, fmt="PNG"),
            "broken.jpg": b"\xff\xd8 not really a jpeg",
        },
    )
    (shots / "sub").mkdir()
    (shots / "sub" / "nested.jpg").write_bytes(product_photo(120, 120))
    out = tmp_path / "out"

    result = invoke(service.url, key, shots, "--out", out)
    assert result.exit_code == 1, result.output
    assert "1 written" in result.stdout and "2 failed" in result.stdout and "2 not processed" in result.stdout
    assert "  tiny.jpg: image is 40×40, smaller than the 64 px minimum" in result.stdout
    assert "  broken.jpg: " in result.stdout  # refused at upload, never charged
    assert "  TWIN.png: same name as twin.jpg but for the extension or case" in result.stdout
    # Exit status 1 is also what CliRunner reports for an uncaught exception: this one must be an exit.
    assert isinstance(result.exception, SystemExit), result.exception
    assert sorted(p.name for p in out.iterdir()) == [".shopimage", "a"]
    assert (out / "a" / "white-bg.png").is_file()
    # a and tiny were charged, tiny refunded.
    assert balance(user) == 9 and count(Task, user) == 2

    # A re-run tries the failed photo again, and only it.
    again = invoke(service.url, key, shots, "--out", out)
    assert again.exit_code == 1 and "tiny.jpg: image is 40×40" in again.stdout
    assert count(Task, user) == 3 and balance(user) == 9


def test_not_enough_quota_stops_before_any_upload(tmp_path, make_user, service):
    user, key = account(make_user, quota=2)
    shots = photos(tmp_path / "shots", {f"p{i}.jpg": product_photo(100, 100, seed=i) for i in range(3)})

    result = shopimage(service.url, key, shots, "--out", tmp_path / "out")
    assert result.returncode == 1
    assert "not enough quota: 3 photos need 3 units and the account has 2 left" in result.stderr
    assert "Traceback" not in result.stderr
    assert "p0.jpg: not enough quota" in result.stdout
    assert count(Upload, user) == 0 and balance(user) == 2


def test_a_batch_the_service_refuses_for_quota_stops_the_run_but_keeps_what_was_paid(
    tmp_path, make_user, service, monkeypatch
):
    """The balance covers the folder at the start; another client spends it while the run uploads."""
    user, key = account(make_user, quota=4)
    shots = photos(tmp_path / "shots", {f"p{i}.jpg": product_photo(100, 100, seed=i) for i in range(4)})
    upload = Service.upload

    def upload_then_spend(self, path):
        if path.name == "p2.jpg":  # the first batch (p0, p1) is in: 2 units left, 1 after this
            db.session.execute(update(User).where(User.id == user.id).values(quota=User.quota - 1))
            db.session.commit()
        return upload(self, path)

    monkeypatch.setattr(Service, "upload", upload_then_spend)
    out = tmp_path / "out"
    result = invoke(service.url, key, shots, "--out", out, "--batch-size", "2")
    assert result.exit_code == 1, result.output
    assert "not enough quota: 2 photos need 2 units and the account has 1 left" in result.stderr
    assert "p2.jpg: not enough quota" in result.stdout and "p3.jpg: not enough quota" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [".shopimage", "p0", "p1"]
    assert balance(user) == 1 and count(Task, user) == 2 and state_files(out) == []


def test_a_run_killed_while_submitting_replays_its_batch_instead_of_paying_twice(
    tmp_path, make_user, service, monkeypatch
):
    user, key = account(make_user, quota=10)
    shots = photos(tmp_path / "shots", {f"p{i}.jpg": product_photo(100, 100, seed=i) for i in range(3)})
    out = tmp_path / "out"
    create = Service.create_batch

    def create_then_die(self, body, idempotency_key):
        create(self, body, idempotency_key)  # the service has the batch; the answer is lost
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(Service, "create_batch", create_then_die)
        killed = invoke(service.url, key, shots, "--out", out)
    assert killed.exit_code == 130
    assert len(state_files(out)) == 1 and balance(user) == 7

    replays = []
    monkeypatch.setattr(Service, "create_batch", lambda *a: replays.append(a[2]) or create(*a))
    again = invoke(service.url, key, shots, "--out", out)
    assert again.exit_code == 0, again.output
    assert "3 picked up from an earlier run" in again.stderr and len(replays) == 1
    assert sorted(p.name for p in out.iterdir()) == [".shopimage", "p0", "p1", "p2"]
    # One charge per photo, one upload per photo: the re-send was a replay.
    assert balance(user) == 7 and count(Upload, user) == 3
    charges = count(QuotaLedger, user, QuotaLedger.reason == "deduct")
    assert charges == 3 and count(Task, user) == 3 and state_files(out) == []


def test_an_interrupted_run_collects_its_batch_on_the_next_run(tmp_path, make_user, service, monkeypatch):
    user, key = account(make_user, quota=10)
    shots = photos(tmp_path / "shots", {f"p{i}.jpg": product_photo(100, 100, seed=i) for i in range(2)})
    out = tmp_path / "out"

    def interrupted(_run):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(cli.Run, "finish", interrupted)
        stopped = invoke(service.url, key, shots, "--out", out)
    assert stopped.exit_code == 130
    assert "1 batch still in progress on the service; run the same command again" in stopped.stderr

    again = invoke(service.url, key, shots, "--out", out)
    assert again.exit_code == 0, again.output
    assert "2 written" in again.stdout and (out / "p1" / "white-bg.png").is_file()
    assert balance(user) == 8 and count(Upload, user) == 2 and state_files(out) == []


def test_the_run_waits_while_the_account_has_too_many_batches_in_progress(
    tmp_path, make_user, client, start_live_server, start_worker
):
    _user, key = account(make_user, quota=10)
    server = start_live_server(JOB_OVERRIDES=STUB, MAX_ACTIVE_BATCHES_PER_USER="1")
    # A batch of the account's own is in progress (no worker runs yet): the limit is reached.
    headers = {"X-API-Key": key}
    upload = client.post(
        "/api/uploads", data={"file": (io.BytesIO(product_photo(100, 100)), "x.jpg")}, headers=headers
    )
    item = {"inputImageUrl": upload.get_json()["data"]["url"], "ref": "earlier"}
    assert (
        client.post(
            "/api/batches", json={"type": "basic_clean", "items": [item]}, headers=headers
        ).status_code
        == 201
    )
    shots = photos(tmp_path / "shots", {f"p{i}.jpg": product_photo(100, 100, seed=i) for i in range(2)})
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        command = subprocess.Popen(
            [SHOPIMAGE, "process", shots, "--out", tmp_path / "out"],
            env=seller_env(server.url, key),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        wait_for(lambda: "waiting: " in errors.read_text(), timeout=60, message="the command to wait")
        start_worker(JOB_OVERRIDES=STUB)
        stdout, _ = command.communicate(timeout=120)
    finally:
        command.kill()
    assert command.returncode == 0, stdout + errors.read_text()
    assert "waiting: the account has 1 batch in progress, the service's limit" in errors.read_text()
    assert "2 written" in stdout and (tmp_path / "out" / "p1" / "white-bg.png").is_file()


def test_params_reach_the_tasks_as_the_api_takes_them(tmp_path, make_user, service):
    user, key = account(make_user, quota=10)
    shots = photos(tmp_path / "shots", {"dress.jpg": product_photo(100, 100)})

    basic = invoke(
        service.url, key, shots, "--out", tmp_path / "a", "--preset", "amazon", "--param", "fill=0.9"
    )
    assert basic.exit_code == 0, basic.output
    pose = invoke(
        service.url,
        key,
        shots,
        "--out",
        tmp_path / "b",
        "--type",
        "model_pose12",
        "--param",
        "scene=street",
        "--param",
        "category=dress",
    )
    assert pose.exit_code == 0, pose.output
    tasks = db.session.scalars(select(Task).where(Task.user_id == user.id).order_by(Task.created_at)).all()
    assert [(t.type, t.params) for t in tasks] == [
        ("basic_clean", {"template": "all", "preset": "amazon", "fill": 0.9}),
        ("model_pose12", {"scene": "street", "category": "dress", "productDescription": ""}),
    ]

    # Mistakes are caught from what the service says the type takes, before any upload.
    for args, message in [
        (
            ["--type", "model_pose12", "--template", "all"],
            "model_pose12 has no param 'template'; its params: ",
        ),
        (["--template", "sideways"], "template must be one of: all, matting, white_bg, enhanced"),
        (["--param", "outputQuality=high"], "outputQuality must be an integer, got 'high'"),
        (["--param", "fill=2"], "fill must be from 0.5 to 0.98"),
        (["--type", "resize"], "unknown --type 'resize'; this service offers: basic_clean, model_pose12"),
    ]:
        refused = invoke(service.url, key, shots, "--out", tmp_path / "c", *args)
        assert refused.exit_code == 2 and message in refused.output, (args, refused.output)
    assert count(Upload, user) == 2


def test_a_bad_address_or_key_is_a_clear_error(tmp_path, make_user, start_live_server):
    _user, key = account(make_user, quota=1)
    shots = photos(tmp_path / "shots", {"a.jpg": product_photo(100, 100)})
    server = start_live_server()

    wrong_key = shopimage(server.url, "sk_not_a_key", shots, "--out", tmp_path / "out")
    assert wrong_key.returncode == 1
    assert wrong_key.stderr == (
        "Error: the service refused the API key (invalid or revoked API key): check SHOPIMAGE_API_KEY\n"
    )

    closed = shopimage("http://127.0.0.1:9", key, shots, "--out", tmp_path / "out")
    assert closed.returncode == 1 and "Error: cannot reach http://127.0.0.1:9 (" in closed.stderr
    assert "Traceback" not in closed.stderr

    not_a_url = shopimage("shop.example.com", key, shots, "--out", tmp_path / "out")
    assert not_a_url.returncode == 2 and "'shop.example.com' is not an http(s) address" in not_a_url.stderr

    unset = subprocess.run(
        [SHOPIMAGE, "process", shots, "--out", tmp_path / "out"],
        env={k: v for k, v in os.environ.items() if not k.startswith("SHOPIMAGE_")},
        capture_output=True,
        text=True,
    )
    assert unset.returncode == 2 and "set SHOPIMAGE_URL (or --url)" in unset.stderr

    # Some other web server: a plain file server answering 404 pages.
    site = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        other = invoke(f"http://127.0.0.1:{site.server_address[1]}", key, shots, "--out", tmp_path / "out")
    finally:
        site.shutdown()
    assert other.exit_code == 1
    assert "answered 404 File not found without the service's JSON envelope" in other.output
    assert not (tmp_path / "out").exists()


def test_only_an_items_plain_file_names_are_written_from_the_zip(tmp_path):
    """The zip comes from the network: only `<folder>/<plain name>` entries of the item become files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("shoe/white-bg.png", "shoe/../../escape.png", "shoe/..", "shoe/", "other/white-bg.png"):
            archive.writestr(name, b"png")
    out = tmp_path / "out"
    out.mkdir()
    run = cli.Run(None, out, cli.State(out), "basic_clean", {}, 1)
    run._write("shoe.jpg", zipfile.ZipFile(buffer), "shoe/")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "out/shoe/white-bg.png"
    ]


def test_items_sharing_a_zip_folder_are_told_apart_as_the_service_numbers_them():
    tasks = [{"index": 0, "ref": None}, {"index": 1, "ref": "001"}, {"index": 2, "ref": "shoe"}]
    assert cli.zip_prefixes(tasks) == ["001/1-", "001/2-", "shoe/"]


def test_the_command_loads_none_of_the_services_code():
    """It is what a seller runs on a laptop: HTTP only, nothing of api/, worker/ or shared/."""
    probe = "import sys, client.cli; print(*{m.split('.')[0] for m in sys.modules})"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert not {"api", "worker", "shared"} & set(loaded.stdout.split())


def test_what_the_command_copies_from_the_service_matches_it():
    """The command cannot import the service's code, so it keeps copies: this ties them."""
    from types import SimpleNamespace

    from client import service
    from shared import batches, errors

    assert (service.RATE_LIMITED, service.TOO_MANY_ACTIVE, service.QUOTA_EXHAUSTED) == (
        errors.RATE_LIMITED,
        errors.TOO_MANY_ACTIVE,
        errors.QUOTA_EXHAUSTED,
    )
    assert cli.REF_MAX == batches.REF_MAX
    refs = [None, "001", "shoe", "shoe", None, "bag"]
    rows = [
        SimpleNamespace(batch_ref=ref, batch_index=i, status="success", result_urls=[f"r/{i}/white-bg.png"])
        for i, ref in enumerate(refs)
    ]
    served = [path for path, _key in batches.archive_entries(rows)]
    tasks = [{"index": i, "ref": ref} for i, ref in enumerate(refs)]
    assert [prefix + "white-bg.png" for prefix in cli.zip_prefixes(tasks)] == served
