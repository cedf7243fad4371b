"""Nothing is left in storage for a task that did not succeed, whoever ended it.

The job frame, the cancel route and the timeout sweeper run in-process against the real database,
with local storage and with a real S3-compatible server (moto).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from shared import lifecycle, results
from shared.app import storage
from shared.db import db, utcnow
from shared.models import Task
from tests.conftest import app_with
from tests.s3_fixtures import MOTO_REGION, moto_endpoint, s3_bucket  # noqa: F401
from tests.worker.test_lifecycle_e2e import create
from worker.runner import TaskRejected, run_task

IMAGE = "https://images.example.com/p.jpg"


@pytest.fixture(params=["local", "s3"])
def app(request, database, redis):
    if request.param == "local":
        yield from app_with()
        return
    endpoint, bucket = request.getfixturevalue("moto_endpoint"), request.getfixturevalue("s3_bucket")
    yield from app_with(
        STORAGE_BACKEND="s3",
        S3_BUCKET=bucket,
        S3_REGION=MOTO_REGION,
        S3_ENDPOINT_URL=endpoint,
        S3_ACCESS_KEY_ID="testing",
        S3_SECRET_ACCESS_KEY="testing",
        S3_ADDRESSING_STYLE="path",
    )


@pytest.fixture
def task_id(client, auth, make_user) -> str:
    return create(client, auth.headers(make_user(quota=1)), IMAGE)


def stored(task_id: str) -> list[str]:
    return storage().list_keys(results.folder(task_id))


def store_two(task_id: str) -> list[str]:
    keys = [results.result_key(task_id, name) for name in ("matting.png", "enhanced.png")]
    for key in keys:
        storage().put(key, b"\x89PNG result", "image/png")
    return keys


def test_results_stored_before_a_cancel_are_deleted(task_id):
    def body(task, progress):
        keys = store_two(task.id)
        lifecycle.fail(task.id, lifecycle.CANCELLED_MESSAGE)  # the user cancels meanwhile
        db.session.commit()
        return keys

    assert run_task(task_id, body) == "discarded"
    assert stored(task_id) == []


@pytest.mark.parametrize("failure", [RuntimeError("crash"), TaskRejected("bad photo")])
def test_results_of_a_failed_attempt_are_deleted(task_id, failure):
    def body(task, progress):
        store_two(task.id)
        raise failure

    if isinstance(failure, TaskRejected):
        assert run_task(task_id, body) == "failed"
    else:
        with pytest.raises(RuntimeError):
            run_task(task_id, body)
    assert stored(task_id) == []


def test_a_successful_tasks_results_stay(task_id):
    assert run_task(task_id, lambda task, progress: store_two(task.id)) == "success"
    assert len(stored(task_id)) == 2


def test_cancel_deletes_what_a_killed_job_left(client, auth, task_id):
    """A job killed between storing and finishing leaves files the frame never saw again."""
    lifecycle.start(task_id)
    db.session.commit()
    store_two(task_id)
    owner = db.session.get(Task, task_id).user_id
    from shared.models import User

    headers = auth.headers(db.session.get(User, owner))
    assert client.post(f"/api/task/{task_id}/cancel", headers=headers).status_code == 200
    assert stored(task_id) == []


def test_the_timeout_sweeper_deletes_what_a_job_left(app, task_id):
    from worker.jobs.maintenance import sweep_timeouts

    lifecycle.start(task_id)
    db.session.execute(
        update(Task).where(Task.id == task_id).values(created_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    store_two(task_id)

    assert sweep_timeouts() == [task_id]
    assert stored(task_id) == []


def test_a_new_attempt_first_deletes_what_a_killed_one_left(task_id):
    """A worker SIGKILLed between storing and finishing: the re-run's results alone remain."""
    lifecycle.start(task_id)
    db.session.commit()
    left = store_two(task_id)

    assert run_task(task_id, lambda task, progress: store_two(task.id)) == "success"
    remaining = stored(task_id)
    assert len(remaining) == 2 and not set(remaining) & set(left)
