"""The RunningHub client against the stand-in over real HTTP, and the workflow mapping loader."""

from __future__ import annotations

import copy
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from PIL import Image

from shared import metrics
from shared.workflows import WorkflowConfigError, load_workflows, parse_workflows
from tests import standin_fixtures
from tests.standin_fixtures import WORKFLOWS_EXAMPLE
from worker.runninghub import (
    ERRORS,
    ConfigError,
    CreateUncertain,
    FileTooLarge,
    NotFound,
    OutOfBalance,
    Output,
    PromptRejected,
    RetryLater,
    RunningHubClient,
    RunningHubError,
    StillRunning,
    TaskFailed,
    parse_webhook,
    report,
    select_images,
)

runninghub_standin = standin_fixtures.runninghub_standin
runninghub_standin_factory = standin_fixtures.runninghub_standin_factory

WORKFLOW_ID = "1950000000000000202"  # studio/dress in the example mapping


def png_bytes(size: tuple[int, int] = (600, 400)) -> bytes:
    image = Image.new("RGB", size, (200, 40, 40))
    image.paste((40, 40, 200), (0, 0, size[0] // 2, size[1] // 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def wait_for(check: Callable[[], Any], timeout: float = 15, interval: float = 0.05) -> Any:
    """Poll until `check()` is truthy; fail after a generous deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def client_for(standin, **kwargs: Any) -> RunningHubClient:
    return RunningHubClient(standin.base_url, standin.api_key, **kwargs)


def start_task(client: RunningHubClient, webhook_url: str | None = None, scene: str = "studio") -> str:
    file_name = client.upload(png_bytes(), "product.png")
    workflow_id, nodes = load_workflows(str(WORKFLOWS_EXAMPLE)).node_info_list(
        scene, "dress", image_file_name=file_name, description="red summer dress", seed=7
    )
    return client.create(workflow_id, nodes, webhook_url=webhook_url)


def finished(client: RunningHubClient, task_id: str) -> bool:
    return client.status(task_id) in ("SUCCESS", "FAILED")


class WebhookReceiver:
    """A tiny HTTP server recording TASK_END callbacks; it can fail the first N of them."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                else:
                    receiver.bodies.append(body)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/runninghub/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


# --- the happy path ------------------------------------------------------------------------------


def test_upload_create_status_outputs(runninghub_standin):
    client = client_for(runninghub_standin)
    task_id = start_task(client)
    assert isinstance(task_id, str) and len(task_id) == 19

    seen = []
    while not seen or seen[-1] not in ("SUCCESS", "FAILED"):
        seen.append(client.status(task_id))
        assert len(seen) < 2000, "task never finished"
        time.sleep(0.02)
    order = ["QUEUED", "RUNNING", "SUCCESS"]
    assert seen[-1] == "SUCCESS"
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)

    outputs = client.outputs(task_id)
    assert len(outputs) == 12
    assert all(isinstance(o, Output) and o.file_type == "png" and o.node_id == "90" for o in outputs)
    assert all(isinstance(o.cost_time, float) for o in outputs)  # sent as strings and as numbers

    first, second = (requests.get(o.file_url, timeout=10) for o in outputs[:2])
    assert first.status_code == second.status_code == 200
    assert Image.open(io.BytesIO(first.content)).size == (768, 1024)
    assert first.content != second.content
    assert runninghub_standin.state()["creates"] == 1


def test_outputs_while_unfinished_then_cancel(runninghub_standin_factory):
    standin = runninghub_standin_factory(render_seconds=60)
    client = client_for(standin)
    task_id = start_task(client)

    with pytest.raises(StillRunning) as raised:
        client.outputs(task_id)
    assert raised.value.code in (804, 813) and raised.value.decision == "wait"

    client.cancel(task_id)
    assert client.status(task_id) == "FAILED"
    with pytest.raises(TaskFailed):
        client.outputs(task_id)
    assert standin.state()["cancels"] == 1


def test_account_status(runninghub_standin):
    account = client_for(runninghub_standin).account_status()
    assert set(account) >= {"remainCoins", "currentTaskCounts", "remainMoney", "currency", "apiType"}
    assert account["currentTaskCounts"] == "0" and account["remainCoins"] is None


# --- RunningHub as it really answers -------------------------------------------------------------


@pytest.mark.parametrize("value", ["CREATE", "CANCEL", "", None, "PAUSED"])
def test_unknown_or_empty_status_is_not_an_error(runninghub_standin, value):
    client = client_for(runninghub_standin)
    task_id = start_task(client)
    runninghub_standin.set_faults({"status_answer": {"count": 1, "value": value}})
    assert client.status(task_id) == (value or "")
    assert client.status(task_id) in ("QUEUED", "RUNNING", "SUCCESS")  # the fault was for one call


@pytest.mark.parametrize(
    ("code", "error"), [(423, NotFound), (1234, RunningHubError)], ids=["task-not-found", "unknown"]
)
def test_not_found_and_unknown_codes_fail_with_the_code(runninghub_standin, code, error):
    client = client_for(runninghub_standin)
    task_id = start_task(client)
    runninghub_standin.set_faults({"answer_code": {"count": 1, "code": code, "on": ["status"]}})
    with pytest.raises(error) as raised:
        client.status(task_id)
    assert type(raised.value) is error and raised.value.decision == "fail"
    assert f"code={code}" in str(raised.value) and raised.value.task_id is None


def test_out_of_balance_alerts_an_operator(runninghub_standin, redis, caplog):
    client = client_for(runninghub_standin)
    file_name = client.upload(png_bytes(), "p.png")
    runninghub_standin.set_faults({"answer_code": {"count": 1, "code": 416, "on": ["create"]}})
    with pytest.raises(OutOfBalance) as raised:
        client.create(WORKFLOW_ID, [{"nodeId": "10", "fieldName": "image", "fieldValue": file_name}])
    assert raised.value.decision == "retry"
    with caplog.at_level("ERROR", logger="worker.runninghub"):
        report(raised.value, redis)
    assert any(r.levelname == "ERROR" and "balance" in r.getMessage() for r in caplog.records)
    assert 'shopimage_runninghub_errors_total{code="416"} 1' in list(metrics.render(redis))


def test_prompt_errors_keep_the_started_task(runninghub_standin):
    client = client_for(runninghub_standin)
    runninghub_standin.set_faults({"prompt_errors": {"count": 1}})
    with pytest.raises(PromptRejected) as raised:
        start_task(client)
    rejected = raised.value
    assert rejected.task_id and rejected.decision == "fail"
    assert rejected.user_message == (
        "AI 工作流拒绝了输入：node 10 (LoadImage): Value not in list: image: 'stand-in.png' not in []"
    )
    assert client.status(rejected.task_id) in ("QUEUED", "RUNNING")  # it exists and is billed
    client.cancel(rejected.task_id)
    assert client.status(rejected.task_id) == "FAILED"


def test_outputs_null_while_running_is_still_running(runninghub_standin_factory):
    standin = runninghub_standin_factory(render_seconds=1.5)
    standin.set_faults({"null_while_running": {"count": 1}})
    client = client_for(standin)
    task_id = start_task(client)
    with pytest.raises(StillRunning) as raised:
        client.outputs(task_id)
    assert raised.value.code == 0 and raised.value.decision == "wait"
    wait_for(lambda: finished(client, task_id))
    assert len(client.outputs(task_id)) == 12


def test_outputs_selected_by_image_type_and_node(runninghub_standin):
    client = client_for(runninghub_standin)
    runninghub_standin.set_faults({"extra_outputs": {"count": 1}})
    extra = start_task(client)
    runninghub_standin.set_faults({"fewer_outputs": {"count": 1, "keep": 0}})
    empty = start_task(client)
    wait_for(lambda: finished(client, extra) and finished(client, empty))
    outputs = client.outputs(extra)
    assert [o.file_type for o in outputs].count("txt") == 1 and len(outputs) == 14
    assert len(select_images(outputs)) == 13  # the preview is an image too
    assert [o.node_id for o in select_images(outputs, "90")] == ["90"] * 12
    assert client.outputs(empty) == []  # finished with nothing: not an error, and not "running"


def test_images_carry_no_workflow_metadata(runninghub_standin):
    client = client_for(runninghub_standin)
    ours = start_task(client)
    file_name = client.upload(png_bytes(), "p.png")
    nodes = [{"nodeId": "10", "fieldName": "image", "fieldValue": file_name}]
    raw = requests.post(  # what a client that leaves addMetadata out gets
        f"{runninghub_standin.base_url}/task/openapi/create",
        json={"apiKey": client.api_key, "workflowId": WORKFLOW_ID, "nodeInfoList": nodes},
        timeout=10,
    ).json()["data"]["taskId"]
    wait_for(lambda: finished(client, ours) and finished(client, raw))

    def text_chunks(task_id: str) -> dict:
        image = Image.open(io.BytesIO(requests.get(client.outputs(task_id)[0].file_url, timeout=10).content))
        return {k: v for k, v in image.info.items() if k in ("prompt", "workflow")}

    assert set(text_chunks(raw)) == {"prompt", "workflow"}
    assert text_chunks(ours) == {}


def test_create_read_timeout_is_uncertain(runninghub_standin):
    client = client_for(runninghub_standin, timeout=(5, 0.5))
    file_name = client.upload(png_bytes(), "p.png")
    runninghub_standin.set_faults({"create_then_slow": {"count": 1, "seconds": 2}})
    with pytest.raises(CreateUncertain) as raised:
        client.create(WORKFLOW_ID, [{"nodeId": "10", "fieldName": "image", "fieldValue": file_name}])
    assert raised.value.decision == "retry"
    assert runninghub_standin.state()["creates"] == 1  # the task exists although we never got its id


def test_nineteen_digit_ids_stay_strings(runninghub_standin_factory, webhook_receiver):
    standin = runninghub_standin_factory(numeric_ids=True)  # taskId sent as a bare JSON number
    client = client_for(standin)
    task_id = start_task(client, webhook_url=webhook_receiver.url)
    assert task_id == "1950000000000000001"
    assert str(int(float(task_id))) != task_id  # what a float parse would have produced
    wait_for(lambda: finished(client, task_id))
    assert len(client.outputs(task_id)) == 12

    wait_for(lambda: webhook_receiver.bodies)
    raw = webhook_receiver.bodies[0]
    assert isinstance(raw["taskId"], int)  # the receiver decoded a bare JSON number
    hook_id, outputs = parse_webhook(raw)
    assert hook_id == task_id and len(outputs) == 12


# --- each answer maps to the right decision -----------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "error", "code"),
    [
        ({"queue_full": {"count": 1}}, RetryLater, 421),
        ({"instance_maxed": {"count": 1}}, RetryLater, 415),
        ({"server_error": {"count": 1, "on": ["create"]}}, RetryLater, 500),
        ({"server_error": {"count": 1, "http": 502}}, RetryLater, None),
        ({"answer_code": {"count": 1, "code": 1520, "on": ["create"]}}, RetryLater, 1520),
        ({"answer_code": {"count": 1, "code": 1003, "on": ["create"]}}, RetryLater, 1003),
        ({"answer_code": {"count": 1, "code": 414, "on": ["create"]}}, OutOfBalance, 414),
        ({"answer_code": {"count": 1, "code": 416, "on": ["create"]}}, OutOfBalance, 416),
        ({"prompt_errors": {"count": 1}}, PromptRejected, 433),
    ],
)
def test_create_faults(runninghub_standin, faults, error, code):
    client = client_for(runninghub_standin)
    file_name = client.upload(png_bytes(), "p.png")
    runninghub_standin.set_faults(faults)
    nodes = [{"nodeId": "10", "fieldName": "image", "fieldValue": file_name}]
    with pytest.raises(error) as raised:
        client.create(WORKFLOW_ID, nodes)
    assert type(raised.value) is error and raised.value.code == code
    assert client.create(WORKFLOW_ID, nodes)  # the fault was for the next call only


@pytest.mark.parametrize(
    ("nodes", "workflow_id"),
    [
        ([{"nodeId": "10", "fieldName": "image", "fieldValue": "api/never-uploaded.png"}], WORKFLOW_ID),
        ([{"nodeId": "10", "fieldName": "image"}], WORKFLOW_ID),
        ([{"nodeId": "99", "fieldName": "text", "fieldValue": "x"}], WORKFLOW_ID),
        ([], "1234567890123456789"),
    ],
    ids=["image-not-uploaded", "no-fieldValue", "unknown-node", "unknown-workflow"],
)
def test_bad_create_requests_are_config_errors(runninghub_standin_factory, nodes, workflow_id):
    standin = runninghub_standin_factory(workflows=WORKFLOWS_EXAMPLE)
    with pytest.raises(ConfigError) as raised:
        client_for(standin).create(workflow_id, nodes)
    assert raised.value.code == (380 if not nodes else 803)
    assert raised.value.decision == "fail"


def test_bad_key_is_config_error(runninghub_standin):
    client = RunningHubClient(runninghub_standin.base_url, "wrong-key")
    for call in (client.account_status, lambda: client.status("1950000000000000001")):
        with pytest.raises(ConfigError) as raised:
            call()
        assert raised.value.code == 802


def test_unknown_task_is_not_found(runninghub_standin):
    with pytest.raises(NotFound) as raised:
        client_for(runninghub_standin).status("1950000000000099999")
    assert raised.value.code == 807


def test_upload_too_large(runninghub_standin_factory):
    standin = runninghub_standin_factory(max_upload_mb=0.01)
    with pytest.raises(FileTooLarge) as raised:
        client_for(standin).upload(b"\0" * 20_000, "big.png")
    assert raised.value.code == 809


def test_slow_answer_times_out_as_retry_later(runninghub_standin):
    runninghub_standin.set_faults({"slow": {"count": 1, "seconds": 2, "on": ["accountStatus"]}})
    with pytest.raises(RetryLater) as raised:
        client_for(runninghub_standin, timeout=(5, 0.3)).account_status()
    assert type(raised.value) is RetryLater  # only a create that timed out may have started a task
    assert raised.value.code is None and "Timeout" in raised.value.msg


def test_connection_refused_is_retry_later(runninghub_standin_factory):
    standin = runninghub_standin_factory()
    standin.stop()
    with pytest.raises(RetryLater):
        client_for(standin).status("1950000000000000001")


def test_failed_task(runninghub_standin):
    runninghub_standin.set_faults({"fail_task": {"count": 1, "exception_message": "CUDA out of memory"}})
    client = client_for(runninghub_standin)
    task_id = start_task(client)
    wait_for(lambda: finished(client, task_id))
    assert client.status(task_id) == "FAILED"
    with pytest.raises(TaskFailed) as raised:
        client.outputs(task_id)
    failed = raised.value
    assert failed.code == 805 and failed.decision == "fail" and failed.task_id == task_id
    assert isinstance(json.loads(failed.failed_reason["traceback"]), list)  # a JSON string, as sent
    assert set(failed.failed_reason) == {
        "node_id",
        "node_name",
        "exception_type",
        "exception_message",
        "traceback",
    }
    assert failed.user_message == "AI 渲染失败：CUDA out of memory"
    assert "Traceback" not in failed.user_message


def test_fewer_expired_and_corrupt_outputs(runninghub_standin):
    runninghub_standin.set_faults({"fewer_outputs": {"count": 1, "keep": 5}})
    client = client_for(runninghub_standin)
    task_id = start_task(client)
    wait_for(lambda: finished(client, task_id))
    outputs = client.outputs(task_id)
    assert len(outputs) == 5

    runninghub_standin.set_faults({"expire_outputs": {"count": 1}, "corrupt_outputs": {"count": 1}})
    assert requests.get(outputs[0].file_url, timeout=10).status_code == 404
    corrupt = requests.get(outputs[0].file_url, timeout=10)
    assert corrupt.status_code == 200
    with pytest.raises(OSError):
        Image.open(io.BytesIO(corrupt.content)).load()
    runninghub_standin.set_faults({"expire_outputs": {"status": 403}})
    assert requests.get(outputs[1].file_url, timeout=10).status_code == 403


def test_max_running_limit(runninghub_standin_factory):
    standin = runninghub_standin_factory(render_seconds=60, max_running=2)
    client = client_for(standin)
    first, _ = start_task(client), start_task(client)
    with pytest.raises(RetryLater) as raised:
        start_task(client)
    assert raised.value.code == 421
    assert client.account_status()["currentTaskCounts"] == "2"
    client.cancel(first)
    start_task(client)  # the cancelled task freed its slot
    state = standin.state()
    assert (state["creates"], state["rejected_creates"], state["max_running"]) == (3, 1, 2)


def test_fractional_faults_are_reproducible(runninghub_standin_factory):
    # A stand-in of its own: on the shared one, a call from anything else (a worker of an earlier
    # test still shutting down) would take a seeded draw and shift the pattern.
    runninghub_standin = runninghub_standin_factory()
    client = client_for(runninghub_standin)
    # Only the seeded draws may decide the pattern. A transport hiccup (code None: seen once under a
    # loaded machine, a reused keep-alive connection) reaches no fault rule and draws nothing, so
    # that call is repeated rather than counted; one connection per call makes it rarer still.
    client.session.headers["Connection"] = "close"

    def outcome() -> bool:
        for _ in range(3):
            try:
                client.account_status()
                return False
            except RetryLater as exc:
                if exc.code == 500:  # the injected UNKNOWN_ERROR
                    return True
        raise AssertionError("three transport errors in a row")

    def pattern() -> list[bool]:
        runninghub_standin.set_faults({"server_error": {"fraction": 0.5, "on": ["accountStatus"]}}, seed=42)
        return [outcome() for _ in range(12)]

    first = pattern()
    assert any(first) and not all(first)
    assert pattern() == first


def test_admin_rejects_unknown_fault(runninghub_standin):
    with pytest.raises(requests.HTTPError):
        runninghub_standin.set_faults({"gremlins": {}})


def test_every_documented_code_has_a_decision():
    decisions = {code: error.decision for code, error in ERRORS.items()}
    assert decisions == {
        301: "fail",
        380: "fail",
        415: "retry",
        421: "retry",
        433: "fail",
        500: "retry",
        801: "fail",
        802: "fail",
        803: "fail",
        804: "wait",
        805: "fail",
        807: "fail",
        809: "fail",
        813: "wait",
        814: "retry",
        414: "retry",
        416: "retry",
        423: "fail",
        1003: "retry",
        1520: "retry",
    }


# --- webhooks ------------------------------------------------------------------------------------


def test_webhook_arrives_and_matches_outputs(runninghub_standin, webhook_receiver):
    client = client_for(runninghub_standin)
    task_id = start_task(client, webhook_url=webhook_receiver.url)
    wait_for(lambda: webhook_receiver.bodies)
    body = webhook_receiver.bodies[0]
    assert body["event"] == "TASK_END" and isinstance(body["eventData"], str)
    hook_id, outputs = parse_webhook(body)
    assert hook_id == task_id
    assert outputs == client.outputs(task_id)


def test_duplicate_and_late_webhooks(runninghub_standin, webhook_receiver):
    runninghub_standin.set_faults({"duplicate_webhook": {"count": 1}})
    client = client_for(runninghub_standin)
    duplicated = start_task(client, webhook_url=webhook_receiver.url)
    wait_for(lambda: len(webhook_receiver.bodies) == 2)
    assert [parse_webhook(b)[0] for b in webhook_receiver.bodies] == [duplicated, duplicated]

    runninghub_standin.set_faults({"late_webhook": {"count": 1, "seconds": 1}})
    late = start_task(client, webhook_url=webhook_receiver.url)
    wait_for(lambda: len(webhook_receiver.bodies) == 3)
    assert parse_webhook(webhook_receiver.bodies[2])[0] == late
    wait_for(lambda: runninghub_standin.state()["webhook_deliveries"] == 3)


def test_no_webhook(runninghub_standin, webhook_receiver):
    runninghub_standin.set_faults({"no_webhook": {"count": 1}})
    client = client_for(runninghub_standin)
    silent = start_task(client, webhook_url=webhook_receiver.url)
    loud = start_task(client, webhook_url=webhook_receiver.url)
    wait_for(lambda: webhook_receiver.bodies)
    wait_for(lambda: finished(client, silent))
    assert [parse_webhook(b)[0] for b in webhook_receiver.bodies] == [loud]


def test_webhook_is_retried_after_failures(runninghub_standin):
    receiver = WebhookReceiver(fail_first=2)
    try:
        start_task(client_for(runninghub_standin), webhook_url=receiver.url)
        wait_for(lambda: receiver.bodies)
        wait_for(lambda: runninghub_standin.state()["webhook_deliveries"] == 1)
        state = runninghub_standin.state()
        assert (state["webhook_attempts"], state["webhook_errors"], state["webhook_failures"]) == (3, 2, 0)
    finally:
        receiver.close()


def test_webhook_for_failed_task(runninghub_standin, webhook_receiver):
    runninghub_standin.set_faults({"fail_task": {"count": 1}})
    task_id = start_task(client_for(runninghub_standin), webhook_url=webhook_receiver.url)
    wait_for(lambda: webhook_receiver.bodies)
    with pytest.raises(TaskFailed) as raised:
        parse_webhook(webhook_receiver.bodies[0])
    assert raised.value.task_id == task_id and raised.value.user_message.startswith("AI 渲染失败：")


@pytest.mark.parametrize(
    "body",
    [{}, {"event": "TASK_START", "taskId": "1"}, {"event": "TASK_END", "taskId": "1", "eventData": "{oops"}],
)
def test_malformed_webhook(body):
    with pytest.raises(ValueError):
        parse_webhook(body)


def test_webhook_with_bare_list_and_numeric_cost():
    event = [{"fileUrl": "https://x/1.png", "fileType": "png", "taskCostTime": 12, "nodeId": 9}]
    task_id, outputs = parse_webhook(
        {"event": "TASK_END", "taskId": "1950000000000000001", "eventData": json.dumps(event)}
    )
    assert task_id == "1950000000000000001"
    assert outputs == [Output("https://x/1.png", "png", "9", 12.0)]


def test_unknown_code_is_base_error():
    from worker.runninghub import raise_for_code

    with pytest.raises(RunningHubError) as raised:
        raise_for_code({"code": 999, "msg": "NEW_THING"})
    assert type(raised.value) is RunningHubError and raised.value.decision == "fail"


# --- workflow mapping ----------------------------------------------------------------------------


def example() -> dict:
    return json.loads(WORKFLOWS_EXAMPLE.read_text())


def test_example_workflows_validate():
    workflows = load_workflows(str(WORKFLOWS_EXAMPLE))
    assert len(workflows.entries) == 9
    workflow_id, nodes = workflows.node_info_list(
        "indoor", "hoodie", image_file_name="api/in.png", description="grey hoodie", seed=3
    )
    assert workflow_id == "1950000000000000303"
    assert nodes[0] == {"nodeId": "10", "fieldName": "image", "fieldValue": "api/in.png"}
    assert {"nodeId": "31", "fieldName": "noise_seed", "fieldValue": 3} in nodes  # per-entry override
    assert {"nodeId": "23", "fieldName": "text", "fieldValue": "grey hoodie"} in nodes  # inherited


def broken(change: Callable[[dict], None]) -> str:
    raw = copy.deepcopy(example())
    change(raw)
    with pytest.raises(WorkflowConfigError) as raised:
        parse_workflows(raw)
    return str(raised.value)


def test_workflow_errors_name_the_entry():
    missing = broken(lambda raw: raw["workflows"].pop("indoor/shoes"))
    assert missing == "runninghub workflows: missing entry for scene=indoor category=shoes"

    numeric = broken(lambda raw: raw["workflows"]["street/dress"].update(workflowId=1950000000000000102))
    assert "scene=street category=dress" in numeric and "workflowId" in numeric

    no_node = broken(
        lambda raw: raw["workflows"]["studio/shoes"].update(inputs={"seed": {"fieldName": "seed"}})
    )
    assert "scene=studio category=shoes input=seed" in no_node and "nodeId" in no_node

    assert "'beach/shoes'" in broken(lambda raw: raw["workflows"].update({"beach/shoes": {}}))
    assert "missing input 'image'" in broken(lambda raw: raw["defaults"]["inputs"].update(image=None))
    assert "categoryText" in broken(lambda raw: raw["defaults"]["categoryText"].pop("dress"))


def test_workflow_file_errors(tmp_path):
    with pytest.raises(WorkflowConfigError, match="cannot read"):
        load_workflows(str(tmp_path / "missing.json"))
    with pytest.raises(WorkflowConfigError, match="scene=beach"):
        load_workflows(str(WORKFLOWS_EXAMPLE)).node_info_list(
            "beach", "dress", image_file_name="x", description="", seed=1
        )
