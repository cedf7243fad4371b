"""Batches through the Procfile's web line and a real worker: completion, refunds, the signed
`batch.completed` webhook, and a single task served ahead of a batch's backlog."""

from __future__ import annotations

import json

import requests
from sqlalchemy import select

from shared import webhooks
from shared.db import db
from shared.models import Task, User
from tests.conftest import wait_for
from tests.worker.test_integration_e2e import Receiver, create, login

IMAGE = "https://images.example.com/p.jpg"


def submit(base: str, headers: dict[str, str], urls: list[str], **extra) -> dict:
    response = requests.post(
        f"{base}/api/batches",
        json={
            "type": "basic_clean",
            "items": [{"inputImageUrl": url, "ref": f"item-{i}"} for i, url in enumerate(urls)],
            **extra,
        },
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def batch(base: str, headers: dict[str, str], batch_id: str) -> dict:
    return requests.get(f"{base}/api/batches/{batch_id}", headers=headers, timeout=10).json()["data"]


def test_batch_completes_refunds_its_failures_and_calls_the_webhook_once(
    make_user, start_worker, start_live_server
):
    receiver = Receiver(fail_first=0)
    try:
        server = start_live_server()
        user = make_user(quota=3)
        headers = login(server.url, user.email)
        secret = requests.get(f"{server.url}/api/webhooks/secret", headers=headers, timeout=10).json()[
            "data"
        ]["secret"]
        urls = [IMAGE, IMAGE + "?reject=not+a+product+photo", IMAGE + "?sleep=0.3"]
        created = submit(server.url, headers, urls, webhookUrl=receiver.url)
        worker = start_worker()

        done = wait_for(
            lambda: (data := batch(server.url, headers, created["id"]))["status"] == "completed" and data,
            timeout=60,
            message="the batch to complete",
        )
        assert done["counts"] == {"pending": 0, "processing": 0, "success": 2, "failed": 1}, worker.output()[
            -2000:
        ]
        assert done["progress"] == 100 and done["completedAt"]
        failed = [t for t in done["tasks"] if t["status"] == "failed"]
        assert [t["ref"] for t in failed] == ["item-1"] and failed[0]["errorMessage"] == "not a product photo"
        db.session.expire_all()
        assert db.session.get(User, user.id).quota == 1  # 3 charged, the failure refunded

        wait_for(lambda: receiver.calls, timeout=30, message="batch.completed delivered")
        sent_headers, body = receiver.calls[0]
        assert webhooks.verify(secret, sent_headers, body)
        payload = json.loads(body)
        assert payload["type"] == "batch.completed"
        assert payload["data"]["id"] == created["id"] and payload["data"]["counts"]["success"] == 2
        assert "tasks" not in payload["data"]
        # One delivery for the batch; its tasks have no webhook of their own.
        assert [json.loads(b)["type"] for _, b in receiver.calls] == ["batch.completed"]
    finally:
        receiver.server.shutdown()


def test_a_single_task_is_served_ahead_of_a_batch_backlog(make_user, start_worker, start_live_server):
    """One worker process: a single task created while a batch runs starts after at most the
    batch item already taken, not after the batch's backlog (the bulk queue comes after)."""
    server = start_live_server()
    seller, other = make_user(quota=8), make_user(quota=1)
    seller_headers, other_headers = login(server.url, seller.email), login(server.url, other.email)
    created = submit(server.url, seller_headers, [IMAGE + "?sleep=0.4"] * 8)
    start_worker(WORKER_PROCESSES="1")
    wait_for(
        lambda: batch(server.url, seller_headers, created["id"])["status"] == "processing",
        timeout=60,
        message="the batch to start",
    )
    started_before = 8 - batch(server.url, seller_headers, created["id"])["counts"]["pending"]
    single_id = create(server.url, other_headers)
    wait_for(
        lambda: batch(server.url, seller_headers, created["id"])["status"] == "completed",
        timeout=60,
        message="the batch to complete",
    )
    db.session.expire_all()
    single = db.session.get(Task, single_id)
    assert single.status == "success"
    items = db.session.scalars(select(Task).where(Task.batch_id == created["id"])).all()
    ahead = [t for t in items if t.started_at < single.started_at]
    assert len(ahead) <= started_before + 1, (started_before, len(ahead))
    assert len(ahead) < len(items) - 2  # the backlog waited for the single task
