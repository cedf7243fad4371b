"""A small client for RunningHub's v1 OpenAPI (hosted ComfyUI).

Every answer is HTTP 200 with `{code, msg, data}`; the client turns each non-zero code into a typed
exception whose `decision` tells the job layer what to do (retry later, poll again, or fail the
task). It never retries by itself: rq owns retries. IDs are 19-digit numbers and stay strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import requests

TASK_STATUSES = ("QUEUED", "RUNNING", "SUCCESS", "FAILED")
"""The bare strings `/task/openapi/status` answers with."""


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


class ConfigError(RunningHubError):
    """Our key, workflow or node inputs are wrong: fail the task and alert an operator."""


class NotFound(RunningHubError):
    """RunningHub does not know the task."""


class FileTooLarge(RunningHubError):
    """The upload is over RunningHub's size limit (30 MB)."""


ERRORS: dict[int, type[RunningHubError]] = {
    301: ConfigError,  # PARAMS_INVALID
    380: ConfigError,  # WORKFLOW_NOT_EXISTS
    415: RetryLater,  # TASK_INSTANCE_MAXED
    421: RetryLater,  # TASK_QUEUE_MAXED
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
        """Start a workflow run and return its taskId; rejected node inputs raise `ConfigError`."""
        body: dict[str, Any] = {
            "apiKey": self.api_key,
            "workflowId": str(workflow_id),
            "nodeInfoList": node_info_list,
        }
        if webhook_url:
            body["webhookUrl"] = webhook_url
        result = self._call("/task/openapi/create", json=body)
        task_id = str(_field(result, "taskId"))
        node_errors = _node_errors(result.get("promptTips"))
        if node_errors:
            raise ConfigError(433, f"workflow inputs rejected: {node_errors}", task_id=task_id)
        return task_id

    def status(self, task_id: str) -> str:
        """Return QUEUED, RUNNING, SUCCESS or FAILED."""
        result = self._call("/task/openapi/status", json={"apiKey": self.api_key, "taskId": str(task_id)})
        if result not in TASK_STATUSES:
            raise RunningHubError(0, f"unexpected task status {result!r}", task_id=str(task_id))
        return result

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
    """Turn an outputs answer (HTTP or webhook) into `Output`s, raising for any non-zero code."""
    raise_for_code(envelope, task_id)
    items = envelope.get("data") or []
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


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
