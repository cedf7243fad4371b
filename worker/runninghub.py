"""A small client for RunningHub's v1 OpenAPI (hosted ComfyUI).

Every answer is HTTP 200 with `{code, msg, data}`; the client turns each non-zero code into a typed
exception whose `decision` tells the job layer what to do (retry later, poll again, or fail the
task). It never retries by itself: rq owns retries. IDs are 19-digit numbers and stay strings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import requests
from redis import Redis

from shared import metrics

log = logging.getLogger(__name__)

WAITING_STATUSES = ("CREATE", "QUEUED", "RUNNING")
"""Statuses of a task that has not ended (`CREATE` comes from RunningHub's newer API)."""

ENDED_STATUSES = ("SUCCESS", "FAILED", "CANCEL")
"""Statuses of a task that has ended; `outputs` tells how. Any other status, empty included, is
not trusted either way: `/task/openapi/status` is unmaintained upstream, so `outputs` decides."""

UNCERTAIN_CREATE_KEY = "shopimage:runninghub:uncertain-create:{task_id}"
"""Set while a task's timed-out create may still report a RunningHub task (expires on its own)."""

IMAGE_FILE_TYPES = frozenset({"png", "jpg", "jpeg", "webp"})
"""Output file types we hand to customers; a workflow may also list previews, text or video."""


class RunningHubError(Exception):
    """A RunningHub answer we cannot use; `decision` says what the caller should do about it."""

    decision: ClassVar[str] = "fail"

    def __init__(self, code: int | None, msg: str, *, task_id: str | None = None) -> None:
        super().__init__(f"runninghub code={code} msg={msg}" + (f" task={task_id}" if task_id else ""))
        self.code = code
        self.msg = msg
        self.task_id = task_id


class RetryLater(RunningHubError):
    """Busy, overloaded or unreachable: try the same call again later."""

    decision = "retry"


class StillRunning(RunningHubError):
    """The task has not finished: poll again."""

    decision = "wait"


class TaskFailed(RunningHubError):
    """The task ran and failed; `user_message` is safe to show, `failed_reason` is for logs."""

    def __init__(self, code: int | None, msg: str, failed_reason: dict, *, task_id: str | None = None):
        super().__init__(code, msg, task_id=task_id)
        self.failed_reason = failed_reason
        detail = failed_reason.get("exception_message") or failed_reason.get("exception_type") or msg
        self.user_message = f"AI 渲染失败：{str(detail).strip()[:200]}"


class OutOfBalance(RetryLater):
    """The RunningHub account cannot pay for more renders: tasks wait, an operator tops it up."""


class CreateUncertain(RetryLater):
    """A create timed out after it was sent: RunningHub may have started (and billed) a task."""


class ConfigError(RunningHubError):
    """Our key, workflow or node inputs are wrong: fail the task and alert an operator."""


class PromptRejected(ConfigError):
    """The create started task `task_id` but ComfyUI rejected its node inputs (`node_errors`).

    RunningHub bills a started task, so the caller cancels it before failing ours.
    """

    def __init__(self, node_errors: Any, *, task_id: str) -> None:
        super().__init__(433, f"workflow inputs rejected: {node_errors}", task_id=task_id)
        self.node_errors = node_errors
        self.user_message = f"AI 工作流拒绝了输入：{_describe_node_errors(node_errors)[:300]}"


class NotFound(RunningHubError):
    """RunningHub does not know the task."""


class FileTooLarge(RunningHubError):
    """The upload is over RunningHub's size limit (30 MB)."""


ERRORS: dict[int, type[RunningHubError]] = {
    301: ConfigError,  # PARAMS_INVALID
    380: ConfigError,  # WORKFLOW_NOT_EXISTS
    415: RetryLater,  # TASK_INSTANCE_MAXED
    421: RetryLater,  # TASK_QUEUE_MAXED
    414: OutOfBalance,  # insufficient balance
    416: OutOfBalance,  # insufficient balance (coins)
    423: NotFound,  # task not found
    433: ConfigError,  # VALIDATE_PROMPT_FAILED
    500: RetryLater,  # UNKNOWN_ERROR
    801: ConfigError,  # APIKEY_UNSUPPORTED_FREE_USER
    802: ConfigError,  # APIKEY_UNAUTHORIZED
    803: ConfigError,  # APIKEY_INVALID_NODE_INFO
    804: StillRunning,  # APIKEY_TASK_IS_RUNNING
    805: TaskFailed,  # APIKEY_TASK_STATUS_ERROR
    807: NotFound,  # APIKEY_TASK_NOT_FOUND
    809: FileTooLarge,  # APIKEY_FILE_SIZE_EXCEEDED
    813: StillRunning,  # APIKEY_TASK_IS_QUEUED
    814: RetryLater,  # PERSONAL_QUEUE_COUNT_LIMIT
    1003: RetryLater,  # rate limit
    1520: RetryLater,  # per-user concurrency limit
}
"""RunningHub `code` → exception class; unknown codes raise the `RunningHubError` base (fail)."""


@dataclass(frozen=True)
class Output:
    """One rendered file as `/task/openapi/outputs` lists it (`fileUrl` expires after ~24 h)."""

    file_url: str
    file_type: str
    node_id: str
    cost_time: float | None


class RunningHubClient:
    """Calls the v1 endpoints and classifies their answers; one instance per worker is fine."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = (5, 30),
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.session = session or requests.Session()

    def upload(self, data: bytes, filename: str) -> str:
        """Upload an input image; return the `fileName` to pass as a LoadImage node's value."""
        result = self._call(
            "/task/openapi/upload",
            data={"apiKey": self.api_key, "fileType": "image"},
            files={"file": (filename, data)},
        )
        return str(_field(result, "fileName"))

    def create(self, workflow_id: str, node_info_list: list[dict], webhook_url: str | None = None) -> str:
        """Start a workflow run and return its taskId.

        Rejected node inputs raise `PromptRejected` carrying the started task's id. A read timeout
        raises `CreateUncertain`: the request was sent, so a task may exist. `addMetadata: false`
        keeps RunningHub from embedding our workflow and prompt in the images customers receive.
        """
        body: dict[str, Any] = {
            "apiKey": self.api_key,
            "workflowId": str(workflow_id),
            "nodeInfoList": node_info_list,
            "addMetadata": False,
        }
        if webhook_url:
            body["webhookUrl"] = webhook_url
        result = self._call("/task/openapi/create", json=body)
        task_id = str(_field(result, "taskId"))
        node_errors = _node_errors(result.get("promptTips"))
        if node_errors:
            raise PromptRejected(node_errors, task_id=task_id)
        return task_id

    def status(self, task_id: str) -> str:
        """The task's status as RunningHub spells it, upper-cased; "" when it sends none.

        Compare with `WAITING_STATUSES` and `ENDED_STATUSES`; anything else means "ask outputs".
        """
        result = self._call("/task/openapi/status", json={"apiKey": self.api_key, "taskId": str(task_id)})
        if isinstance(result, dict):  # the newer API wraps it
            result = result.get("status") or result.get("taskStatus")
        return str(result or "").strip().upper()

    def outputs(self, task_id: str) -> list[Output]:
        """Return the finished task's files; raises `StillRunning` or `TaskFailed` otherwise."""
        envelope = self._envelope(
            "/task/openapi/outputs", json={"apiKey": self.api_key, "taskId": str(task_id)}
        )
        return outputs_from_envelope(envelope, str(task_id))

    def cancel(self, task_id: str) -> None:
        self._call("/task/openapi/cancel", json={"apiKey": self.api_key, "taskId": str(task_id)})

    def account_status(self) -> dict:
        """Coins, money and `currentTaskCounts` (RunningHub sends the numbers as strings)."""
        result = self._call("/uc/openapi/accountStatus", json={"apikey": self.api_key})
        if not isinstance(result, dict):
            raise RunningHubError(0, f"unexpected account status {result!r}")
        return result

    def _call(self, path: str, **kwargs: Any) -> Any:
        envelope = self._envelope(path, **kwargs)
        raise_for_code(envelope)
        return envelope.get("data")

    def _envelope(self, path: str, **kwargs: Any) -> dict:
        """POST and decode the envelope; anything but a JSON envelope is a transport error."""
        try:
            response = self.session.post(
                self.base_url + path,
                headers={"Authorization": f"Bearer {self.api_key}"},
                timeout=self.timeout,
                **kwargs,
            )
        except requests.ReadTimeout as exc:
            error = CreateUncertain if path == "/task/openapi/create" else RetryLater
            raise error(None, f"{path}: {type(exc).__name__}: {exc}") from exc
        except requests.RequestException as exc:
            raise RetryLater(None, f"{path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise RetryLater(None, f"{path}: HTTP {response.status_code}")
        try:
            envelope = json.loads(response.text, parse_int=str)
            envelope["code"] = int(envelope["code"])
        except (ValueError, TypeError, KeyError) as exc:
            raise RetryLater(None, f"{path}: HTTP {response.status_code}, not a JSON envelope") from exc
        return envelope


def raise_for_code(envelope: dict, task_id: str | None = None) -> None:
    """Raise the exception `ERRORS` maps the envelope's code to; do nothing for code 0."""
    code, msg = envelope["code"], str(envelope.get("msg") or "")
    if code == 0:
        return
    error = ERRORS.get(code, RunningHubError)
    if error is TaskFailed:
        data = envelope.get("data")
        reason = data.get("failedReason") if isinstance(data, dict) else None
        raise TaskFailed(code, msg, reason if isinstance(reason, dict) else {}, task_id=task_id)
    raise error(code, msg, task_id=task_id)


def outputs_from_envelope(envelope: dict, task_id: str) -> list[Output]:
    """Turn an outputs answer (HTTP or webhook) into `Output`s, raising for any non-zero code.

    Code 0 with `data: null` is a task still running (RunningHub answers so before it ends); an
    empty list is a task that ended with nothing to show.
    """
    raise_for_code(envelope, task_id)
    items = envelope.get("data")
    if items is None:
        raise StillRunning(0, "outputs not ready (data: null)", task_id=task_id)
    if not isinstance(items, list):
        raise RunningHubError(0, f"outputs: expected a list, got {type(items).__name__}", task_id=task_id)
    return [
        Output(
            file_url=str(_field(item, "fileUrl")),
            file_type=str(item.get("fileType") or ""),
            node_id=str(item.get("nodeId") or ""),
            cost_time=_float_or_none(item.get("taskCostTime")),
        )
        for item in items
    ]


def select_images(outputs: Iterable[Output], node_id: str = "") -> list[Output]:
    """The outputs we deliver: image files only, and only from `node_id` when one is configured."""
    return [
        output
        for output in outputs
        if _file_type(output) in IMAGE_FILE_TYPES and (not node_id or output.node_id == node_id)
    ]


def webhook_url(base_url: str, secret: str, task_id: str) -> str:
    """The callback URL for one of our tasks. It carries our task id as a marker: a create that
    timed out may still have started a task, and its TASK_END callback is how we learn its id."""
    return f"{base_url}/api/webhooks/runninghub/{secret}?task={task_id}"


def mark_create_uncertain(redis: Redis, task_id: str, seconds: int) -> None:
    """Hold off resubmitting for `seconds`: the timed-out create may report a task meanwhile."""
    redis.set(UNCERTAIN_CREATE_KEY.format(task_id=task_id), "1", ex=max(1, seconds))


def create_uncertain(redis: Redis, task_id: str) -> bool:
    return bool(redis.exists(UNCERTAIN_CREATE_KEY.format(task_id=task_id)))


def report(exc: RunningHubError, redis: Redis) -> None:
    """Count a RunningHub error by code; an empty balance also alerts an operator.

    Tasks wait rather than fail one by one while the account is empty, so the error log line and
    `shopimage_runninghub_errors_total{code="414"|"416"}` are how anyone learns of it.
    """
    metrics.count_runninghub_error(redis, exc.code)
    if isinstance(exc, OutOfBalance):
        log.error(
            "RunningHub account balance is exhausted (code=%s msg=%s): model tasks wait until it is "
            "topped up",
            exc.code,
            exc.msg,
        )


def parse_webhook(body: dict) -> tuple[str, list[Output]]:
    """Read a TASK_END callback: `(task_id, outputs)`; raises `TaskFailed` (with .task_id) for a
    failed task and ValueError for a malformed body. A callback is only a hint: confirm with
    `outputs()` before trusting it."""
    if not isinstance(body, dict) or body.get("event") != "TASK_END" or not body.get("taskId"):
        raise ValueError("runninghub webhook: expected {event: TASK_END, taskId, eventData}")
    task_id = str(body["taskId"])
    event_data = body.get("eventData")
    try:
        envelope = json.loads(event_data, parse_int=str) if isinstance(event_data, str) else event_data
        if isinstance(envelope, list):  # some senders pass the bare list
            envelope = {"code": 0, "msg": "success", "data": envelope}
        envelope["code"] = int(envelope["code"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"runninghub webhook: task {task_id}: unreadable eventData") from exc
    return task_id, outputs_from_envelope(envelope, task_id)


def _field(data: Any, name: str) -> Any:
    if not isinstance(data, dict) or data.get(name) in (None, ""):
        raise RunningHubError(0, f"answer has no {name}: {data!r}")
    return data[name]


def _node_errors(prompt_tips: Any) -> Any:
    """`promptTips` is a JSON string with ComfyUI's validation result."""
    if not prompt_tips:
        return None
    try:
        tips = json.loads(prompt_tips) if isinstance(prompt_tips, str) else prompt_tips
    except ValueError:
        return None
    return tips.get("node_errors") if isinstance(tips, dict) else None


def _file_type(output: Output) -> str:
    """`fileType` ("png", sometimes "image/png"), else the URL's extension."""
    kind = output.file_type or output.file_url.split("?", 1)[0].rsplit(".", 1)[-1]
    return kind.lower().rpartition("/")[2]


def _describe_node_errors(node_errors: Any) -> str:
    """ComfyUI's `node_errors` as "node 10 (LoadImage): message; ..." for a person to read."""
    if not isinstance(node_errors, dict):
        return str(node_errors)
    parts = []
    for node_id, entry in node_errors.items():
        entry = entry if isinstance(entry, dict) else {"errors": [entry]}
        label = f"node {node_id}" + (f" ({entry['class_type']})" if entry.get("class_type") else "")
        for error in entry.get("errors") or [""]:
            if isinstance(error, dict):
                error = ": ".join(str(error[k]) for k in ("message", "details") if error.get(k))
            parts.append(f"{label}: {error}" if error else label)
    return "; ".join(parts)


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
