"""A third task type, defined here alone, goes through every path a built-in type does.

The type joins the registry through `TASK_TYPE_MODULES` naming this module, in the test's app and
in the real worker process alike: it is listed, validated at create, charged, queued, run to
`success`, swept on timeout and cancelled, with nothing in the shipped code naming it.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from marshmallow import Schema, fields, validate
from rq import Queue
from sqlalchemy import func, select

from shared import queues, quota
from shared.app import redis_client
from shared.db import db
from shared.models import QuotaLedger, Task
from shared.task_types import MATTING_MODEL, TaskType
from tests.conftest import app_with, wait_for
from tests.worker.test_lifecycle_e2e import balance, ended, task_row
from worker.app import app_context
from worker.matting import MODEL_FILENAME
from worker.resources import preload
from worker.runner import TaskSnapshot, run_task

THIRD = "thumbnail_demo"
MODULE = __name__
BASE = "https://images.example.com/p.jpg"


class ThumbnailParams(Schema):
    size = fields.Integer(load_default=128, validate=validate.Range(min=16, max=512))
    style = fields.String(load_default="plain", validate=validate.OneOf(("plain", "framed")))


def make_thumbnail(task_id: str) -> str:
    return run_task(task_id, _thumbnail)


def _thumbnail(task: TaskSnapshot, progress) -> list[str]:
    """Pretends to render; `?sleep=S` on the input URL keeps it busy (to be swept or cancelled)."""
    query = parse_qs(urlparse(task.input_image_url).query)
    progress(30)
    time.sleep(float(query.get("sleep", ["0"])[0]))
    return [f"https://results.example.com/{task.id}/thumb-{task.params['size']}-{task.params['style']}.png"]


def forget_thumbnail(task_id: str) -> str:
    """The type's cancel job: records that it ran, so the test sees cancel and sweep reach it."""
    with app_context():
        redis_client().set(cancelled_key(task_id), "1")
    return "cancelled"


def cancelled_key(task_id: str) -> str:
    return f"test:thumbnail-cancelled:{task_id}"


WARMED: list[int] = []


def warm_up() -> None:
    """The type's preload: what a worker serving its queue loads before the first job."""
    WARMED.append(1)


TASK_TYPES = (
    TaskType(
        name=THIRD,
        params=ThumbnailParams(),
        job=queues.JobSpec(f"{MODULE}.make_thumbnail", queues.IMAGES, timeout=60),
        outputs=lambda params, _config: (f"thumb-{params['size']}-{params['style']}.png",),
        cancel_job=f"{MODULE}.forget_thumbnail",
        preload=(f"{MODULE}.warm_up",),
    ),
)


@pytest.fixture
def app(database, redis):
    yield from app_with(TASK_TYPE_MODULES=MODULE, METRICS_TOKEN="metrics-secret")


def create(client, headers, url: str = BASE, **params) -> tuple[int, dict]:
    response = client.post(
        "/api/task/create", json={"type": THIRD, "inputImageUrl": url, "params": params}, headers=headers
    )
    return response.status_code, response.get_json()


def ledger(task_id: str) -> list[str]:
    return list(db.session.scalars(select(QuotaLedger.reason).where(QuotaLedger.task_id == task_id)))


def test_the_third_type_is_listed_with_its_params_and_outputs(client):
    listed = {t["name"]: t for t in client.get("/api/task/types").get_json()["data"]["types"]}
    assert list(listed) == ["basic_clean", "model_pose12", THIRD]
    assert listed[THIRD] == {
        "name": THIRD,
        "available": True,
        "unavailableReason": None,
        "params": [
            {"name": "size", "type": "integer", "default": 128, "allowed": None, "min": 16, "max": 512},
            {
                "name": "style",
                "type": "string",
                "default": "plain",
                "allowed": ["plain", "framed"],
                "min": None,
                "max": None,
            },
        ],
        "outputs": [{"params": {}, "names": ["thumb-128-plain.png"]}],
        "options": [],
    }
    # Not configured here: listed, marked unavailable with the reason.
    assert listed["model_pose12"]["available"] is False
    assert "RunningHub" in listed["model_pose12"]["unavailableReason"]
    metrics = client.get("/metrics", headers={"Authorization": "Bearer metrics-secret"}).get_data(
        as_text=True
    )
    assert f'shopimage_tasks_total{{event="created",type="{THIRD}"}} 0' in metrics
    document = client.get("/api/openapi.json").get_json()
    variants = document["components"]["schemas"]["CreateTaskRequest"]["oneOf"]
    assert {"type": "string", "enum": [THIRD]} in [v["properties"]["type"] for v in variants]


def test_bad_params_are_refused_before_any_charge(client, auth, make_user):
    user = make_user(quota=2)
    headers = auth.headers(user)
    for params in ({"size": 9999}, {"size": "big"}, {"style": "sepia"}):
        status, body = create(client, headers, **params)
        assert (status, body["code"]) == (400, 4001), body
        assert "params" in body["details"]["fields"]
    assert balance(user.id) == 2
    assert db.session.scalar(select(func.count()).select_from(Task)) == 0


def test_created_charged_queued_and_run_by_a_real_worker(client, auth, make_user, start_worker, redis):
    user = make_user(quota=2)
    headers = auth.headers(user)
    status, body = create(client, headers, size=64)
    assert status == 201, body
    task_id = body["data"]["taskId"]
    assert balance(user.id) == 1 and ledger(task_id) == ["deduct"]
    assert task_id in Queue(queues.IMAGES, connection=redis).job_ids
    detail = client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]
    assert (detail["type"], detail["params"], detail["queuePosition"]) == (
        THIRD,
        {"size": 64, "style": "plain"},
        1,
    )

    worker = start_worker(TASK_TYPE_MODULES=MODULE)
    done = wait_for(lambda: ended(task_id), message="third type job")
    assert done.status == "success", worker.output()
    assert done.result_urls == [f"https://results.example.com/{task_id}/thumb-64-plain.png"]
    assert balance(user.id) == 1 and ledger(task_id) == ["deduct"] and quota.audit() == []


def test_swept_on_timeout_and_its_cancel_job_runs(client, auth, make_user, start_worker, redis):
    user = make_user(quota=1)
    headers = auth.headers(user)
    _, body = create(client, headers, BASE + "?sleep=8")
    task_id = body["data"]["taskId"]
    worker = start_worker(TASK_TYPE_MODULES=MODULE, TASK_TIMEOUT_SECONDS="2", WORKER_PROCESSES="2")
    swept = wait_for(lambda: ended(task_id), timeout=20, message="sweeper")
    assert swept.status == "failed" and swept.error_message.startswith("任务超时"), worker.output()
    wait_for(
        lambda: redis.get(cancelled_key(task_id)), timeout=20, message="the type's cancel job after the sweep"
    )
    assert sorted(ledger(task_id)) == ["deduct", "refund"] and balance(user.id) == 1
    assert quota.audit() == []


def test_cancelled_while_running(client, auth, make_user, start_worker, redis):
    user = make_user(quota=1)
    headers = auth.headers(user)
    _, body = create(client, headers, BASE + "?sleep=8")
    task_id = body["data"]["taskId"]
    worker = start_worker(TASK_TYPE_MODULES=MODULE)
    wait_for(lambda: task_row(task_id).status == "processing", message="job started")
    response = client.post(f"/api/task/{task_id}/cancel", headers=headers)
    assert response.status_code == 200 and response.get_json()["data"]["status"] == "failed"
    wait_for(lambda: redis.get(cancelled_key(task_id)), timeout=20, message="the type's cancel job")
    # The running job finishes later and finds its task ended: its result is discarded.
    wait_for(lambda: "ended elsewhere" in worker.output(), timeout=20, message="late result discarded")
    assert task_row(task_id).status == "failed" and task_row(task_id).result_urls == []
    assert sorted(ledger(task_id)) == ["deduct", "refund"] and balance(user.id) == 1
    assert quota.audit() == []


def test_a_worker_preloads_what_the_types_on_its_queues_need(database, redis, tmp_path, caplog):
    """Preloading reads the registry: the third type's preload runs; basic_clean, on the same
    queue but without its model file in this MODEL_DIR, is skipped with the reason."""
    WARMED.clear()
    for _app in app_with(TASK_TYPE_MODULES=MODULE, MODEL_DIR=str(tmp_path)):
        preload([queues.IMAGES])
        preload([queues.RUNNINGHUB])
    assert WARMED == [1]
    assert "basic_clean not preloaded: the matting model (u2netp.onnx) is not installed" in caplog.text


def test_the_registry_checks_for_the_model_file_the_worker_loads():
    assert MATTING_MODEL == MODEL_FILENAME
