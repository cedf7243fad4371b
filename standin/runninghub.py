"""A local stand-in for RunningHub's v1 OpenAPI, for development and tests only.

It is not RunningHub: it speaks the same request and answer shapes (see
/work/shared/runninghub-api.md, part 1), renders twelve "pose" images derived from the uploaded
input so the whole flow is visible locally, calls webhooks, and injects faults on demand through
`POST /__admin/faults`. Run it with:

    python -m standin.runninghub --port 8700 --api-key KEY [--render-seconds 2]
"""

from __future__ import annotations

import argparse
import colorsys
import io
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import requests
from flask import Flask, Response, abort, jsonify, request
from PIL import Image, ImageDraw, ImageFont, ImageOps, PngImagePlugin
from werkzeug.serving import make_server

OUTPUT_COUNT = 12
"""Images per finished task, as the model_pose12 workflows render."""

OUTPUT_SIZE = (768, 1024)
"""Width × height of each rendered image (portrait)."""

OUTPUT_NODE_ID = "90"
"""The SaveImage node the outputs claim to come from."""

PREVIEW_NODE_ID = "95"
"""A PreviewImage node the `extra_outputs` fault lists beside the real outputs."""

API_ENDPOINTS = ("upload", "create", "status", "outputs", "cancel", "accountStatus")
"""Events call faults apply to by default; `"on": ["files"]` also reaches output downloads."""

WEBHOOK_RETRIES = 3
"""Extra attempts after a failed callback, as RunningHub was seen to do."""

MESSAGES = {
    0: "success",
    301: "PARAMS_INVALID",
    380: "WORKFLOW_NOT_EXISTS",
    414: "INSUFFICIENT_BALANCE",
    415: "TASK_INSTANCE_MAXED",
    416: "INSUFFICIENT_COINS",
    421: "TASK_QUEUE_MAXED",
    423: "TASK_NOT_FOUND",
    433: "VALIDATE_PROMPT_FAILED",
    500: "UNKNOWN_ERROR",
    802: "APIKEY_UNAUTHORIZED",
    803: "APIKEY_INVALID_NODE_INFO",
    804: "APIKEY_TASK_IS_RUNNING",
    805: "APIKEY_TASK_STATUS_ERROR",
    807: "APIKEY_TASK_NOT_FOUND",
    809: "APIKEY_FILE_SIZE_EXCEEDED",
    813: "APIKEY_TASK_IS_QUEUED",
    1003: "RATE_LIMIT",
    1520: "USER_CONCURRENCY_LIMIT",
}

TINTS = [tuple(round(c * 255) for c in colorsys.hsv_to_rgb(hue / 12, 0.6, 0.9)) for hue in range(12)]
"""One tint per pose, around the colour wheel."""


@dataclass(frozen=True)
class FaultKind:
    """Where a fault is decided: per API `call`, per accepted `create`, once per `task` when it is
    created, or per `file` download."""

    scope: str
    doc: str


FAULTS = {
    "slow": FaultKind("call", "delay the answer by `seconds` (default 2)"),
    "server_error": FaultKind("call", 'code 500 UNKNOWN_ERROR; with "http": 502, HTTP 502 and an HTML body'),
    "answer_code": FaultKind("call", "answer `code` (e.g. 1520, 1003, 414, 416, 423) with data null"),
    "status_answer": FaultKind("call", 'status answers `value` (e.g. CREATE, CANCEL, "" or null)'),
    "queue_full": FaultKind("create", "create answers 421 TASK_QUEUE_MAXED"),
    "instance_maxed": FaultKind("create", "create answers 415 TASK_INSTANCE_MAXED"),
    "prompt_errors": FaultKind("create", "create succeeds but promptTips carries node_errors"),
    "create_then_slow": FaultKind("create", "create starts the task, then answers `seconds` (5) late"),
    "fail_task": FaultKind("task", "the task ends FAILED; outputs answers 805 with failedReason"),
    "fewer_outputs": FaultKind("task", "the task renders `keep` (default 6) images instead of 12"),
    "extra_outputs": FaultKind("task", "outputs also list a text file and a preview image (node 95)"),
    "null_while_running": FaultKind("task", "outputs answer code 0, data null (not 804/813) until it ends"),
    "no_webhook": FaultKind("task", "no TASK_END callback"),
    "duplicate_webhook": FaultKind("task", "the TASK_END callback is sent twice"),
    "late_webhook": FaultKind("task", "the TASK_END callback is sent `seconds` (default 3) late"),
    "expire_outputs": FaultKind("file", "output files answer `status` (default 404; 403 also useful)"),
    "corrupt_outputs": FaultKind("file", "output files are bytes that do not decode as an image"),
}
"""Every injectable fault; `POST /__admin/faults` accepts exactly these names."""


@dataclass
class FaultRule:
    """When a fault fires: the next `count` matching events, a `fraction` of them, or always."""

    count: int | None = None
    fraction: float | None = None
    on: tuple[str, ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, name: str, spec: Any) -> FaultRule:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(FAULTS)}")
        if not isinstance(spec, dict):
            raise ValueError(f"fault {name!r}: expected an object, null to clear")
        params = dict(spec)
        count, fraction, on = params.pop("count", None), params.pop("fraction", None), params.pop("on", None)
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError(f"fault {name!r}: count must be a positive integer")
        if on is not None and not (isinstance(on, list) and set(on) <= {*API_ENDPOINTS, "files"}):
            raise ValueError(f"fault {name!r}: on must list some of {[*API_ENDPOINTS, 'files']}")
        if fraction is not None and not (isinstance(fraction, int | float) and 0 <= fraction <= 1):
            raise ValueError(f"fault {name!r}: fraction must be between 0 and 1")
        return cls(count, fraction, tuple(on) if on else None, params)

    def matches(self, name: str, event: str | None) -> bool:
        """`on` narrows call faults to some endpoints; by default they hit every API endpoint."""
        return FAULTS[name].scope != "call" or event in (self.on or API_ENDPOINTS)

    def describe(self) -> dict[str, Any]:
        extra = {"count": self.count, "fraction": self.fraction, "on": list(self.on) if self.on else None}
        return {**{k: v for k, v in extra.items() if v is not None}, **self.params}


class Faults:
    """The active fault rules, with a seeded random source so fractions are reproducible."""

    def __init__(self, seed: int = 0) -> None:
        self.rules: dict[str, FaultRule] = {}
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def configure(self, body: dict[str, Any]) -> None:
        """Merge `{"seed"?: int, "faults": {name: rule | null}}` into the active rules."""
        faults = body.get("faults", {})
        if not isinstance(faults, dict):
            raise ValueError('expected {"faults": {name: {...} | null}, "seed"?: int}')
        parsed = {
            name: None if spec is None else FaultRule.parse(name, spec) for name, spec in faults.items()
        }
        with self.lock:
            if "seed" in body:
                self.rng.seed(body["seed"])
            for name, rule in parsed.items():
                if rule is None:
                    self.rules.pop(name, None)
                else:
                    self.rules[name] = rule

    def hit(self, name: str, event: str | None = None) -> dict[str, Any] | None:
        """Return the fault's params if it fires for this event, else None."""
        with self.lock:
            rule = self.rules.get(name)
            if rule is None or not rule.matches(name, event):
                return None
            if rule.fraction is not None and self.rng.random() >= rule.fraction:
                return None
            if rule.count is not None:
                rule.count -= 1
                if rule.count == 0:
                    del self.rules[name]
            return rule.params

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {name: rule.describe() for name, rule in self.rules.items()}


@dataclass(frozen=True)
class StandinConfig:
    api_key: str
    render_seconds: float = 2.0
    public_url: str = "http://127.0.0.1:8700"
    workflows: dict[str, set[tuple[str, str]]] | None = None
    max_running: int = 0
    max_upload_bytes: int = 30 * 1024 * 1024
    numeric_ids: bool = False
    seed: int = 0


@dataclass
class Task:
    id: str
    workflow_id: str
    image_name: str | None
    created: float
    render_seconds: float
    webhook_url: str | None
    failed_reason: dict[str, Any] | None = None
    output_count: int = OUTPUT_COUNT
    webhook_copies: int = 1
    webhook_delay: float = 0.0
    cancelled: bool = False
    extra_outputs: bool = False
    null_while_running: bool = False
    add_metadata: bool = True
    prompt: str = ""

    def status(self, now: float) -> str:
        """QUEUED for the first quarter of the render time, RUNNING until it ends (wall clock)."""
        elapsed = now - self.created
        if self.cancelled or (elapsed >= self.render_seconds and self.failed_reason):
            return "FAILED"
        if elapsed >= self.render_seconds:
            return "SUCCESS"
        return "QUEUED" if elapsed < self.render_seconds / 4 else "RUNNING"

    def file_names(self) -> list[str]:
        return [f"{self.id}-{index + 1:02d}.png" for index in range(self.output_count)]

    def extra_names(self) -> list[str]:
        return [f"{self.id}-preview.png", f"{self.id}-caption.txt"] if self.extra_outputs else []


class ApiError(Exception):
    """Answered as the envelope `{code, msg, data}` with HTTP 200."""

    def __init__(self, code: int, detail: str = "", data: Any = None) -> None:
        super().__init__(code, detail)
        self.code, self.detail, self.data = code, detail, data


class Standin:
    """The stand-in's state: uploads, tasks, counters and faults, shared by request threads."""

    def __init__(self, config: StandinConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.faults = Faults(config.seed)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.uploads: dict[str, bytes] = {}
            self.tasks: dict[str, Task] = {}
            self.images: dict[str, bytes] = {}
            self.next_id = 1_950_000_000_000_000_001
            self.counters = {
                "uploads": 0,
                "creates": 0,
                "rejected_creates": 0,
                "cancels": 0,
                "max_running": 0,
                "webhook_attempts": 0,
                "webhook_deliveries": 0,
                "webhook_errors": 0,
                "webhook_failures": 0,
            }
        self.faults = Faults(self.config.seed)

    def running(self, now: float | None = None) -> int:
        """Tasks holding a slot (QUEUED or RUNNING)."""
        now = time.time() if now is None else now
        return sum(1 for task in self.tasks.values() if task.status(now) in ("QUEUED", "RUNNING"))

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                **self.counters,
                "running": self.running(),
                "tasks": len(self.tasks),
                "faults": self.faults.describe(),
            }

    def check_key(self, key: Any) -> None:
        if key != self.config.api_key:
            raise ApiError(802)

    def upload(self, key: Any, file: Any) -> dict[str, str]:
        self.check_key(key)
        if file is None:
            raise ApiError(301, "file is required")
        data = file.read(self.config.max_upload_bytes + 1)
        if len(data) > self.config.max_upload_bytes:
            raise ApiError(809)
        suffix = (file.filename or "").rpartition(".")[2].lower() or "png"
        name = f"api/{uuid.uuid4().hex}.{suffix}"
        with self.lock:
            self.uploads[name] = data
            self.counters["uploads"] += 1
        return {"fileName": name, "fileType": "image"}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        self.check_key(body.get("apiKey"))
        workflow_id = str(body.get("workflowId") or "")
        known = self.config.workflows
        if not workflow_id or (known is not None and workflow_id not in known):
            raise ApiError(380, workflow_id)
        fields = None if known is None else known[workflow_id]
        image_name = self._check_nodes(body.get("nodeInfoList") or [], fields)
        webhook_url = body.get("webhookUrl") or None
        with self.lock:
            now = time.time()
            if self.faults.hit("queue_full") is not None:
                self.counters["rejected_creates"] += 1
                raise ApiError(421)
            if self.faults.hit("instance_maxed") is not None:
                self.counters["rejected_creates"] += 1
                raise ApiError(415)
            if self.config.max_running and self.running(now) >= self.config.max_running:
                self.counters["rejected_creates"] += 1
                raise ApiError(421, f"{self.config.max_running} tasks already running")
            task = Task(
                str(self.next_id), workflow_id, image_name, now, self.config.render_seconds, webhook_url
            )
            # RunningHub embeds the workflow and prompt in the images unless told not to.
            task.add_metadata = body.get("addMetadata") is not False
            task.prompt = json.dumps(body.get("nodeInfoList") or [])
            self.next_id += 7919  # keep ids far apart so float rounding would show
            self._apply_task_faults(task)
            self.tasks[task.id] = task
            self.counters["creates"] += 1
            self.counters["max_running"] = max(self.counters["max_running"], self.running(now))
            node_errors = PROMPT_NODE_ERRORS if self.faults.hit("prompt_errors") is not None else {}
            late = self.faults.hit("create_then_slow")
        timer = threading.Timer(task.render_seconds, self._task_ended, [task])
        timer.daemon = True
        timer.start()
        if late is not None:  # the task exists and is billed, but the answer comes too late
            time.sleep(float(late.get("seconds", 5)))
        return {
            "taskId": self._wire_id(task.id),
            "taskStatus": "QUEUED",
            "clientId": uuid.uuid4().hex,
            "netWssUrl": f"wss://standin.invalid/ws?clientId={task.id}",
            "promptTips": json.dumps({"node_errors": node_errors}),
        }

    def _check_nodes(self, nodes: Any, fields: set[tuple[str, str]] | None) -> str | None:
        """Validate nodeInfoList like RunningHub does (803); return the input image's fileName."""
        if not isinstance(nodes, list):
            raise ApiError(803, "nodeInfoList must be a list")
        image_name = None
        for item in nodes:
            if not isinstance(item, dict) or not {"nodeId", "fieldName", "fieldValue"} <= item.keys():
                raise ApiError(803, f"each item needs nodeId, fieldName, fieldValue: {item!r}")
            node = (str(item["nodeId"]), str(item["fieldName"]))
            if fields is not None and node not in fields:
                raise ApiError(803, f"workflow has no node {node[0]} field {node[1]}")
            if node[1] == "image":
                if item["fieldValue"] not in self.uploads:
                    raise ApiError(803, f"node {node[0]}: {item['fieldValue']!r} is not an uploaded file")
                image_name = image_name or item["fieldValue"]
        return image_name

    def _apply_task_faults(self, task: Task) -> None:
        if (params := self.faults.hit("fail_task")) is not None:
            task.failed_reason = {
                "node_id": str(params.get("node_id", "42")),
                "node_name": params.get("node_name", "KSampler"),
                "exception_type": params.get("exception_type", "torch.OutOfMemoryError"),
                "exception_message": params.get("exception_message", "CUDA out of memory (stand-in fault)"),
                # RunningHub sends the traceback as a JSON string of a list of lines.
                "traceback": json.dumps(
                    ["Traceback (most recent call last):\n", '  File "execution.py", line 1\n']
                ),
            }
        if (params := self.faults.hit("fewer_outputs")) is not None:
            task.output_count = int(params.get("keep", 6))
        if self.faults.hit("no_webhook") is not None:
            task.webhook_copies = 0
        if self.faults.hit("duplicate_webhook") is not None:
            task.webhook_copies = 2
        if (params := self.faults.hit("late_webhook")) is not None:
            task.webhook_delay = float(params.get("seconds", 3))
        task.extra_outputs = self.faults.hit("extra_outputs") is not None
        task.null_while_running = self.faults.hit("null_while_running") is not None

    def task(self, key: Any, task_id: Any) -> Task:
        self.check_key(key)
        task = self.tasks.get(str(task_id))
        if task is None:
            raise ApiError(807)
        return task

    def outputs(self, task: Task) -> list[dict[str, Any]]:
        """The outputs answer's data; raises the not-finished and failed codes."""
        status = task.status(time.time())
        if task.null_while_running and status in ("QUEUED", "RUNNING"):
            return None
        if status == "QUEUED":
            raise ApiError(813)
        if status == "RUNNING":
            raise ApiError(804)
        if status == "FAILED":
            reason = task.failed_reason or {
                "node_id": "",
                "node_name": "",
                "exception_type": "TaskCancelled",
                "exception_message": "task was cancelled",
                "traceback": "[]",
            }
            raise ApiError(805, data={"failedReason": reason})
        cost = round(task.render_seconds, 2)
        listed = [(name, OUTPUT_NODE_ID) for name in task.file_names()]
        listed += [(name, PREVIEW_NODE_ID) for name in task.extra_names()]
        return [
            {
                "fileUrl": f"{self.config.public_url}/files/{name}",
                "fileType": name.rpartition(".")[2],
                # RunningHub sends this as a string or a number: send both.
                "taskCostTime": str(cost) if index % 2 == 0 else cost,
                "nodeId": node_id,
            }
            for index, (name, node_id) in enumerate(listed)
        ]

    def cancel(self, task: Task) -> None:
        with self.lock:
            if task.status(time.time()) in ("QUEUED", "RUNNING"):
                task.cancelled = True
            self.counters["cancels"] += 1

    def account(self, key: Any) -> dict[str, str]:
        self.check_key(key)
        return {
            "remainCoins": None,  # null on accounts that pay in money, not coins
            "currentTaskCounts": str(self.running()),
            "remainMoney": "100.00",
            "currency": "CNY",
            "apiType": "NORMAL",
        }

    def file(self, name: str) -> bytes:
        """A rendered output image, derived from the task's input image."""
        task_id, _, rest = name.partition("-")
        task = self.tasks.get(task_id)
        names = task.file_names() + task.extra_names() if task else []
        if task is None or name not in names or task.status(time.time()) != "SUCCESS":
            abort(404)
        if (params := self.faults.hit("expire_outputs", "files")) is not None:
            abort(int(params.get("status", 404)))
        if self.faults.hit("corrupt_outputs", "files") is not None:
            return b"\x89PNG\r\n\x1a\n" + b"stand-in corrupt_outputs fault" * 10
        if name.endswith(".txt"):
            return b"a caption, not an image"
        if name not in self.images:
            number = 1 if rest.startswith("preview") else int(rest[:2])
            metadata = {"prompt": task.prompt, "workflow": task.workflow_id} if task.add_metadata else {}
            self.images[name] = render_pose(self.uploads.get(task.image_name or ""), number, metadata)
        return self.images[name]

    def _task_ended(self, task: Task) -> None:
        """Timer callback at the end of the render: send the TASK_END callback(s)."""
        if task.cancelled or not task.webhook_url or task.webhook_copies == 0:
            return
        time.sleep(task.webhook_delay)
        try:
            envelope = {"code": 0, "msg": "success", "data": self.outputs(task)}
        except ApiError as exc:
            envelope = {"code": exc.code, "msg": MESSAGES[exc.code], "data": exc.data}
        body = {"event": "TASK_END", "taskId": self._wire_id(task.id), "eventData": json.dumps(envelope)}
        for _ in range(task.webhook_copies):
            self._deliver(task, body)

    def _deliver(self, task: Task, body: dict[str, Any]) -> None:
        """POST one callback, retrying on failure; stops if an admin reset forgot the task."""
        for attempt in range(1 + WEBHOOK_RETRIES):
            with self.lock:
                if self.tasks.get(task.id) is not task:
                    return
                self.counters["webhook_attempts"] += 1
            try:
                ok = requests.post(task.webhook_url or "", json=body, timeout=5).ok
            except requests.RequestException:
                ok = False
            with self.lock:
                self.counters["webhook_deliveries" if ok else "webhook_errors"] += 1
            if ok:
                return
            time.sleep(0.2 * (attempt + 1))
        with self.lock:
            self.counters["webhook_failures"] += 1

    def _wire_id(self, task_id: str) -> str | int:
        return int(task_id) if self.config.numeric_ids else task_id


PROMPT_NODE_ERRORS = {
    "10": {
        "errors": [
            {
                "type": "value_not_in_list",
                "message": "Value not in list",
                "details": "image: 'stand-in.png' not in []",
                "extra_info": {},
            }
        ],
        "dependent_outputs": ["90"],
        "class_type": "LoadImage",
    }
}
"""ComfyUI's validation result as the `prompt_errors` fault reports it in `promptTips`."""


def render_pose(source: bytes | None, number: int, metadata: dict[str, str] | None = None) -> bytes:
    """Pose `number` (1..12): the input padded to portrait, zoomed, flipped, tinted and captioned.

    `metadata` becomes PNG text chunks, as ComfyUI's SaveImage writes the prompt and workflow.
    """
    try:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(source or b""))).convert("RGB")
    except Exception:
        image = Image.new("RGB", OUTPUT_SIZE, (200, 200, 200))
    index = number - 1
    zoom = 1 + 0.1 * (index % 3)
    width, height = OUTPUT_SIZE
    centering = ((index % 4) / 3, (index // 4) / 2)
    # Pad (not crop) to portrait so the product stays in view, then zoom in a little.
    background = image.resize((1, 1)).getpixel((0, 0))
    image = ImageOps.pad(
        image, (int(width * zoom), int(height * zoom)), color=background, centering=centering
    )
    image = ImageOps.fit(image, OUTPUT_SIZE)
    if index % 2:
        image = ImageOps.mirror(image)
    image = Image.blend(image, Image.new("RGB", OUTPUT_SIZE, TINTS[index % len(TINTS)]), 0.25)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height - 90, width, height), fill=(0, 0, 0))
    draw.text(
        (24, height - 78), f"pose {number} · stand-in", fill=(255, 255, 255), font=ImageFont.load_default(48)
    )
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def create_app(config: StandinConfig) -> Flask:
    app = Flask(__name__)
    standin = Standin(config)
    app.extensions["runninghub_standin"] = standin

    def envelope(data: Any = None, code: int = 0, detail: str = "") -> Response:
        msg = MESSAGES.get(code, "UNKNOWN_ERROR") + (f": {detail}" if detail else "")
        return jsonify({"code": code, "msg": msg, "data": data})

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ApiError(301, "expected a JSON object")
        return data

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return envelope(exc.data, exc.code, exc.detail)

    @app.before_request
    def call_faults() -> Any:
        if request.path.startswith("/__admin/"):
            return None
        event = "files" if request.path.startswith("/files/") else request.path.rsplit("/", 1)[-1]
        if (params := standin.faults.hit("slow", event)) is not None:
            time.sleep(float(params.get("seconds", 2)))
        if (params := standin.faults.hit("server_error", event)) is not None:
            if http_status := params.get("http"):
                html = f"<html><head><title>{http_status} Bad Gateway</title></head><body>nginx</body></html>"
                return Response(html, status=int(http_status), mimetype="text/html")
            return envelope(code=500)
        if (params := standin.faults.hit("answer_code", event)) is not None:
            return envelope(code=int(params.get("code", 1520)))
        return None

    @app.post("/task/openapi/upload")
    def upload() -> Response:
        return envelope(standin.upload(request.form.get("apiKey"), request.files.get("file")))

    @app.post("/task/openapi/create")
    def create() -> Response:
        return envelope(standin.create(body()))

    @app.post("/task/openapi/status")
    def status() -> Response:
        data = body()
        task = standin.task(data.get("apiKey"), data.get("taskId"))
        if (params := standin.faults.hit("status_answer", "status")) is not None:
            return envelope(params.get("value"))
        return envelope(task.status(time.time()))

    @app.post("/task/openapi/outputs")
    def outputs() -> Response:
        data = body()
        return envelope(standin.outputs(standin.task(data.get("apiKey"), data.get("taskId"))))

    @app.post("/task/openapi/cancel")
    def cancel() -> Response:
        data = body()
        standin.cancel(standin.task(data.get("apiKey"), data.get("taskId")))
        return envelope(None)

    @app.post("/uc/openapi/accountStatus")
    def account_status() -> Response:
        return envelope(standin.account(body().get("apikey")))

    @app.get("/files/<path:name>")
    def files(name: str) -> Response:
        mimetype = "text/plain" if name.endswith(".txt") else "image/png"
        return Response(standin.file(name), mimetype=mimetype)

    @app.post("/__admin/faults")
    def admin_faults() -> Any:
        try:
            standin.faults.configure(request.get_json(force=True) or {})
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify({"faults": standin.faults.describe()})

    @app.get("/__admin/state")
    def admin_state() -> Response:
        return jsonify(standin.state())

    @app.post("/__admin/reset")
    def admin_reset() -> Response:
        standin.reset()
        return jsonify(standin.state())

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standin.runninghub", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700, help="0 picks a free port")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--render-seconds", type=float, default=2.0)
    parser.add_argument("--public-url", help="base of output file URLs (default: the listening address)")
    parser.add_argument(
        "--workflows", help="workflow mapping JSON; only its workflowIds and nodes are accepted"
    )
    parser.add_argument("--max-running", type=int, default=0, help="create answers 421 at this many tasks")
    parser.add_argument("--max-upload-mb", type=float, default=30)
    parser.add_argument("--numeric-ids", action="store_true", help="send taskId as a bare JSON number")
    parser.add_argument("--seed", type=int, default=0, help="seed for fraction-based faults")
    args = parser.parse_args(argv)

    workflows = None
    if args.workflows:
        from shared.workflows import load_workflows

        workflows = load_workflows(args.workflows).workflow_fields()

    config = StandinConfig(
        api_key=args.api_key,
        render_seconds=args.render_seconds,
        public_url=(args.public_url or "").rstrip("/"),
        workflows=workflows,
        max_running=args.max_running,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        numeric_ids=args.numeric_ids,
        seed=args.seed,
    )
    app = create_app(config)
    server = make_server(args.host, args.port, app, threaded=True)
    url = f"http://{args.host}:{server.server_port}"
    if not config.public_url:  # with --port 0 the address is only known after binding
        app.extensions["runninghub_standin"].config = replace(config, public_url=url)
    print(f"runninghub stand-in listening on {url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
