"""The event stream's two ways in (Bearer header, `?access_token=` for EventSource) refuse alike."""

from __future__ import annotations

import json

import pytest

from shared.db import db
from shared.models import Task, User

IMAGE = "https://images.example.com/product.jpg"


@pytest.fixture
def owner(client, auth, make_user):
    """A member with one finished task (so a stream sends its one event and ends), and their tokens."""
    user = make_user(quota=3)
    tokens = auth.login(user.email)
    created = client.post(
        "/api/task/create",
        json={"type": "basic_clean", "inputImageUrl": IMAGE},
        headers={"Authorization": f"Bearer {tokens['accessToken']}"},
    )
    task_id = created.get_json()["data"]["taskId"]
    db.session.get(Task, task_id).status = "failed"
    db.session.commit()
    return user, tokens, task_id


def by_header(client, task_id: str, token: str):
    return client.get(f"/api/task/{task_id}/events", headers={"Authorization": f"Bearer {token}"})


def by_query(client, task_id: str, token: str):
    return client.get(f"/api/task/{task_id}/events?access_token={token}")


def envelope(response, status: int, code: int) -> None:
    assert response.status_code == status, response.data
    body = response.get_json()
    assert body["success"] is False and body["code"] == code, body


@pytest.mark.parametrize("open_stream", [by_header, by_query], ids=["header", "query"])
def test_a_finished_task_streams_its_state_once(client, owner, open_stream):
    _, tokens, task_id = owner
    response = open_stream(client, task_id, tokens["accessToken"])
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    data = [
        line[len("data: ") :]
        for line in response.get_data(as_text=True).splitlines()
        if line.startswith("data: ")
    ]
    assert [json.loads(d)["status"] for d in data] == ["failed"]
    assert json.loads(data[0])["id"] == task_id


@pytest.mark.parametrize("open_stream", [by_header, by_query], ids=["header", "query"])
def test_disabled_and_deleted_accounts_get_1004_either_way(client, owner, open_stream):
    user, tokens, task_id = owner
    user.is_active = False
    db.session.commit()
    envelope(open_stream(client, task_id, tokens["accessToken"]), 403, 1004)
    db.session.delete(db.session.get(User, user.id))
    db.session.commit()
    envelope(open_stream(client, task_id, tokens["accessToken"]), 404, 1004)


@pytest.mark.parametrize("open_stream", [by_header, by_query], ids=["header", "query"])
def test_bad_and_refresh_tokens_get_401_either_way(client, owner, open_stream):
    _, tokens, task_id = owner
    for token in ("not-a-token", tokens["accessToken"][:-2] + "xx", tokens["refreshToken"]):
        response = open_stream(client, task_id, token)
        assert response.status_code == 401, (token, response.data)
        assert response.get_json()["success"] is False


def test_someone_elses_task_is_missing_either_way(client, auth, make_user, owner):
    _, _, task_id = owner
    stranger = auth.login(make_user().email)["accessToken"]
    for open_stream in (by_header, by_query):
        assert open_stream(client, task_id, stranger).status_code == 404
