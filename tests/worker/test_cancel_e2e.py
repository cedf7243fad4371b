"""Cancel ends the work, not only the bill: a real worker, the shipped basic_clean job, real servers.

The attack: with one quota unit, create tasks whose input server trickles its headers, cancel
them (each cancel refunds), and repeat; the workers stay busy for free.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rq.job import Job

from shared import quota
from tests.conftest import wait_for
from tests.photos import product_photo

from .test_basic_clean_e2e import app  # noqa: F401 - the API enqueues the shipped job
from .test_lifecycle_e2e import create, ended, refunds, task_row

REAL_JOBS = {"JOB_OVERRIDES": "", "WORKER_PRELOAD": "1", "FETCH_TOTAL_TIMEOUT": "300"}
"""The shipped job, and a fetch deadline far beyond the test's patience: only a stop frees the worker."""


class InputServer:
    """`/trickle`: a status line, then a header byte every 0.2 s for minutes; `/photo.jpg`: a photo."""

    def __init__(self) -> None:
        self.connections = 0
        photo = product_photo(480, 360)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.connections += self.path == "/trickle"
                if self.path == "/photo.jpg":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(photo)))
                    self.end_headers()
                    self.wfile.write(photo)
                    return
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for _ in range(1500):
                    try:
                        self.wfile.write(b"X")
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.2)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def inputs():
    server = InputServer()
    yield server
    server.close()


def test_cancelled_tasks_on_a_trickling_server_free_the_worker(
    client, auth, make_user, start_worker, inputs, redis
):
    user = make_user(quota=4)
    headers = auth.headers(user)
    worker = start_worker(**REAL_JOBS)
    trickling = [create(client, headers, inputs.url("/trickle")) for _ in range(3)]
    wait_for(lambda: inputs.connections == 1, timeout=60, message="the first job to dial the server")

    for task_id in trickling:
        response = client.post(f"/api/task/{task_id}/cancel", headers=headers)
        assert response.status_code == 200, response.get_json()

    normal = create(client, headers, inputs.url("/photo.jpg"))
    done = wait_for(
        lambda: ended(normal),
        timeout=45,
        message="a normal task behind three cancelled ones",
    )
    assert done.status == "success", (done.error_message, worker.output()[-3000:])

    # A running job was stopped, not failed: rq does not retry it, and no task is refunded twice.
    # A job taken between its task's cancel and the job's own cancel skips the work ("finished").
    statuses = [Job.fetch(t, connection=redis).get_status() for t in trickling]
    assert statuses[0] == "stopped" and set(statuses) <= {"stopped", "canceled", "finished"}
    # No job was retried (each dials the server at most once); a job stopped right after it was
    # taken may not have dialed yet.
    assert 1 <= inputs.connections <= statuses.count("stopped")
    for task_id in trickling:
        assert task_row(task_id).status == "failed"
        assert refunds(task_id) == 1
    assert quota.audit() == []
