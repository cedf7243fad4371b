"""The hand-written task document is exactly what `TaskSchema` (the documented shape) dumps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared import tasks
from shared.app import storage
from shared.db import db
from shared.models import Task
from shared.result_files import ResultFile, result_entries
from shared.schemas import OPTIONAL_KEYS, TaskSchema, result_links, task_document

AWARE = datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC)
CASES = {
    "pending, nothing optional": {},
    "success with results and every timestamp": {
        "status": "success",
        "result_urls": ["results/a/1.png", "https://cdn.example.com/2.png"],
        "progress": 100,
        "started_at": AWARE + timedelta(seconds=1),
        "completed_at": AWARE + timedelta(seconds=2, microseconds=999),
    },
    "failed with a message and unicode params": {
        "status": "failed",
        "error_message": "图片无法解码 \u2028 <b>",
        "params": {"productDescription": "红色连衣裙 \U0001f457", "nested": {"a": [1, 2]}},
        "started_at": AWARE,
        "completed_at": AWARE,
    },
    "naive timestamps are UTC (SQLite)": {"created_at": AWARE.replace(tzinfo=None)},
    "another offset is converted to UTC": {"updated_at": AWARE.astimezone(timezone(timedelta(hours=8)))},
    "empty params and no result list": {"params": {}, "result_urls": None},
    "results recorded with what they hold": {
        "status": "success",
        "result_urls": ["tasks/t/matting.png", "tasks/t/white-bg.jpg"],
        "result_files": [
            ResultFile("tasks/t/matting.png", "png", 600, 400, 1234).record(),
            ResultFile("tasks/t/white-bg.jpg", "jpeg", 2000, 2000, 98765, upscaled=True).record(),
        ],
    },
}


def schema_document(task, files, lifetime):
    expected = TaskSchema().dump(task._mapping if hasattr(task, "_mapping") else task)
    expected["resultUrls"] = result_links(task.result_urls or [], files, lifetime)
    entries = result_entries(task.result_urls or [], task.result_files, expected["resultUrls"])
    expected["results"] = TaskSchema(only=("results",)).dump({"results": entries})["results"]
    return {k: v for k, v in expected.items() if not (k in OPTIONAL_KEYS and v is None)}


@pytest.mark.parametrize("case", CASES)
def test_hand_written_document_equals_the_schema_dump(app, make_user, case):
    user_id = make_user(quota=1).id
    values = {
        "id": f"doc{abs(hash(case)) % 10**12:012d}",
        "user_id": user_id,
        "type": "basic_clean",
        "status": "pending",
        "input_image_url": "https://images.example.com/p.jpg",
        "params": {"template": "all"},
        "result_urls": [],
        "progress": 0,
        "created_at": AWARE,
        "updated_at": AWARE,
        **CASES[case],
    }
    files, lifetime = storage(), 3600
    in_memory = Task(**values)
    document = task_document(in_memory, files, lifetime)
    assert unsigned(document) == unsigned(schema_document(in_memory, files, lifetime))
    # The format itself, pinned apart from the helper both share: UTC, milliseconds, "Z" (every
    # case holds this instant, naive or in another offset).
    assert document["createdAt"] == document["updatedAt"] == "2026-11-28T01:02:03.456Z"

    db.session.add(Task(**{**values, "result_urls": values["result_urls"] or []}))
    db.session.commit()
    db.session.expunge_all()
    row = tasks.read_owned(values["id"], user_id)  # the detail path's row
    got = task_document(row, files, lifetime)
    assert unsigned(got) == unsigned(schema_document(row, files, lifetime))
    assert got["id"] == values["id"]
    assert got["createdAt"] == got["updatedAt"] == "2026-11-28T01:02:03.456Z"
    page, _ = tasks.list_for_user(user_id, limit=5, offset=0)  # the list path's rows
    assert [unsigned(task_document(r, files, lifetime)) for r in page] == [unsigned(got)]


def unsigned(document: dict) -> dict:
    """Signed links carry an expiry counted from now, so a link signed a second later differs in its
    query string only: compare links without it."""
    return {
        **document,
        "resultUrls": [url.split("?", 1)[0] for url in document["resultUrls"]],
        "results": [{**r, "url": r["url"].split("?", 1)[0]} for r in document["results"]],
    }


def test_results_name_each_file_with_what_the_worker_recorded():
    keys = ["tasks/t/matting.png", "tasks/t/white-bg.jpg", "https://cdn.example.com/pose-01.webp"]
    files = [ResultFile("tasks/t/white-bg.jpg", "jpeg", 2000, 2000, 98765, upscaled=True).record()]
    links = ["L1", "L2", keys[2]]
    assert result_entries(keys, files, links) == [
        {
            "name": "matting.png",
            "url": "L1",
            "format": "png",
            "width": None,
            "height": None,
            "bytes": None,
            "upscaled": False,
        },
        {
            "name": "white-bg.jpg",
            "url": "L2",
            "format": "jpeg",
            "width": 2000,
            "height": 2000,
            "bytes": 98765,
            "upscaled": True,
        },
        {
            "name": "pose-01.webp",
            "url": keys[2],
            "format": "webp",
            "width": None,
            "height": None,
            "bytes": None,
            "upscaled": False,
        },
    ]
