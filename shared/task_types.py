"""Task types: one entry per type, holding everything the API, the workers and the console ask about it.

An entry names its params schema (allowed values, defaults, ranges), the job that runs it and its
queue (`shared.queues`), the job that undoes its external side after a cancel or timeout, what a
deployment needs to offer it, its outputs, and what a worker preloads to serve it. Routes, the
sweeper and reconciler, the failure callback, worker preloading, metrics and the OpenAPI document
read the registry; none of them names a type.

Each app holds its registry (`registry()`): the built-in types plus those of the modules named in
`TASK_TYPE_MODULES` (comma-separated dotted module names, each with a `TASK_TYPES` tuple of
`TaskType`). The web process and every worker load the same modules, so a type added that way is
created, listed, run, swept and cancelled like a built-in one; the tests add a throwaway type so.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app
from marshmallow import Schema, fields, missing, validate

from . import queues
from .config import Config
from .hd import HD_UNAVAILABLE, hd_available
from .output_params import OutputParams, output_names
from .workflows import CATEGORIES, SCENES

MATTING, WHITE_BG, ENHANCED = "matting.png", "white-bg.png", "enhanced.png"

TEMPLATES: dict[str, tuple[str, ...]] = {
    "all": (MATTING, WHITE_BG, ENHANCED),
    "matting": (MATTING,),
    "white_bg": (WHITE_BG,),
    "enhanced": (ENHANCED,),
}
"""basic_clean's templates: the outputs of each, in the order they are returned."""

MATTING_MODEL = "u2netp.onnx"
"""The matting model file basic_clean needs in `MODEL_DIR` (the worker also checks its md5)."""

DESCRIPTION_MAX = 500


@dataclass(frozen=True)
class Requirement:
    """Something a deployment must have for a type to be offered; `reason` tells clients what is missing."""

    met: Callable[[Config], bool]
    reason: str


RUNNINGHUB = Requirement(
    lambda config: config.runninghub_configured, "RunningHub is not configured on this server"
)
MATTING_MODEL_PRESENT = Requirement(
    lambda config: (Path(config.MODEL_DIR) / MATTING_MODEL).is_file(),
    f"the matting model ({MATTING_MODEL}) is not installed on this server",
)

HD_MODEL_PRESENT = Requirement(lambda config: hd_available(config.MODEL_DIR), HD_UNAVAILABLE)


@dataclass(frozen=True)
class Option:
    """A boolean param that, when true, moves the task onto a queue of its own (served by its own
    worker processes), needs something of its own and preloads its own resources there."""

    param: str
    queue: str
    requires: Requirement
    preload: tuple[str, ...] = ()


Outputs = Callable[[Mapping[str, Any], Config], tuple[str, ...]]
"""The output names of a task with these (loaded) params."""


@dataclass(frozen=True)
class TaskType:
    name: str
    params: Schema
    """Loads and validates `params` at create; its fields' defaults fill what the client left out."""
    job: queues.JobSpec
    """The first job of a task, on its queue; follow-ups go to the same queue."""
    outputs: Outputs
    outputs_vary_with: str | None = None
    """The param whose value decides the outputs, if any (clients see the outputs per value)."""
    cancel_job: str | None = None
    """Run after our cancel, a timeout or a final failure: frees what the task holds outside us."""
    requires: tuple[Requirement, ...] = ()
    preload: tuple[str, ...] = ()
    """Functions a worker serving `job.queue` calls at start-up, so the first task does not pay."""
    options: tuple[Option, ...] = ()

    def unavailable_reason(self, config: Config) -> str | None:
        """Why this deployment cannot run the type, or None when it can."""
        for requirement in self.requires:
            if not requirement.met(config):
                return requirement.reason
        return None

    def unavailable_option(self, params: Mapping[str, Any], config: Config) -> str | None:
        """Why this deployment cannot run a task with these params' options, or None when it can."""
        for option in self._chosen(params):
            if not option.requires.met(config):
                return option.requires.reason
        return None

    def queue_for(self, params: Mapping[str, Any] | None, *, in_batch: bool = False) -> str:
        """The queue of a task with these params: an option's own, else the type's; a batch's
        task goes to that queue's bulk twin (`queues.bulk`)."""
        chosen = self._chosen(params or {})
        queue = chosen[0].queue if chosen else self.job.queue
        return queues.bulk(queue) if in_batch else queue

    def queues(self) -> tuple[str, ...]:
        own = (self.job.queue, *(option.queue for option in self.options))
        return (*own, *(queues.bulk(queue) for queue in own))

    def job_spec(
        self,
        overrides: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        in_batch: bool = False,
    ) -> queues.JobSpec:
        """The first job on the params' queue, pointed elsewhere by `JOB_OVERRIDES` (tests run stubs)."""
        func = overrides[self.name] if overrides and self.name in overrides else self.job.func
        queue = self.queue_for(params, in_batch=in_batch)
        return queues.JobSpec(func, queue, self.job.timeout, self.job.retry_intervals)

    def _chosen(self, params: Mapping[str, Any]) -> list[Option]:
        return [option for option in self.options if params.get(option.param)]


class BasicCleanParams(OutputParams):
    template = fields.String(load_default="all", validate=validate.OneOf(tuple(TEMPLATES)))
    hd = fields.Boolean(
        metadata={
            "description": "HD cut-out: the full u2net model and the same edge refinement; cleaner "
            "edges, about 2 s more per image. Left out means false. `GET /api/task/types` (`options`) "
            "says whether this server has it; without it `hd: true` is refused with 400/4001."
        },
    )


class ModelPoseParams(Schema):
    scene = fields.String(load_default="studio", validate=validate.OneOf(SCENES))
    category = fields.String(load_default="dress", validate=validate.OneOf(CATEGORIES))
    productDescription = fields.String(load_default="", validate=validate.Length(max=DESCRIPTION_MAX))


def _model_photo_names(_params: Mapping[str, Any], config: Config) -> tuple[str, ...]:
    """`pose-01` … : each stored with the extension of the image RunningHub returned."""
    return tuple(f"pose-{n:02d}" for n in range(1, config.RUNNINGHUB_OUTPUT_COUNT + 1))


MODEL_PHOTOS_COLLECT = "worker.jobs.model_photos.collect_model_pose12"
"""The job RunningHub's task-end callback starts (it reads the outputs and finishes the task)."""

BUILTIN: tuple[TaskType, ...] = (
    TaskType(
        name="basic_clean",
        params=BasicCleanParams(),
        job=queues.JobSpec(
            "worker.jobs.images.process_basic_clean", queues.IMAGES, timeout=300, retry_intervals=(5, 20)
        ),
        outputs=lambda params, _config: output_names(TEMPLATES[params["template"]], params),
        outputs_vary_with="template",
        requires=(MATTING_MODEL_PRESENT,),
        preload=("worker.resources.matting_session",),
        options=(Option("hd", queues.IMAGES_HD, HD_MODEL_PRESENT, preload=("worker.resources.hd_session",)),),
    ),
    TaskType(
        name="model_pose12",
        params=ModelPoseParams(),
        job=queues.JobSpec(
            "worker.jobs.model_photos.submit_model_pose12",
            queues.RUNNINGHUB,
            timeout=120,
            retry_intervals=(10, 30, 60),
        ),
        outputs=_model_photo_names,
        cancel_job="worker.jobs.model_photos.cancel_model_pose12",
        requires=(RUNNINGHUB,),
        # Validates the workflow mapping at start-up: a missing entry stops the worker with its name.
        preload=("worker.runninghub_access.workflows",),
    ),
)


class UnknownTaskType(KeyError):
    """No registered type has this name."""


class Registry:
    """The task types one app knows, by name, in the order they are offered."""

    def __init__(self, types: Iterable[TaskType]) -> None:
        self.types: dict[str, TaskType] = {}
        for task_type in types:
            if task_type.name in self.types:
                raise ValueError(f"task type {task_type.name!r} is registered twice")
            self.types[task_type.name] = task_type

    @classmethod
    def load(cls, modules: Iterable[str] = ()) -> Registry:
        """The built-in types plus the `TASK_TYPES` of each named module."""
        extra = [t for name in modules for t in importlib.import_module(name).TASK_TYPES]
        return cls([*BUILTIN, *extra])

    def __getitem__(self, name: str) -> TaskType:
        try:
            return self.types[name]
        except KeyError:
            raise UnknownTaskType(name) from None

    def find(self, name: str) -> TaskType | None:
        """The type, or None for a name this app does not know (a row left by a removed type)."""
        return self.types.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.types

    def __iter__(self):
        return iter(self.types.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self.types)

    def on_queues(self, queue_names: Iterable[str]) -> list[TaskType]:
        """The types whose jobs run on any of these queues (an option's queue counts)."""
        wanted = set(queue_names)
        return [t for t in self.types.values() if wanted.intersection(t.queues())]


def registry() -> Registry:
    """The current app's task types."""
    return current_app.extensions["task_types"]


def get(name: str) -> TaskType:
    return registry()[name]


def describe(task_type: TaskType, config: Config) -> dict[str, Any]:
    """A type as `GET /api/task/types` lists it: its params, outputs and whether it is offered here."""
    reason = task_type.unavailable_reason(config)
    params = [_describe_field(name, field) for name, field in task_type.params.fields.items()]
    defaults = task_type.params.load({})
    vary = task_type.outputs_vary_with
    choices = next(p["allowed"] for p in params if p["name"] == vary) if vary else [None]
    outputs = []
    for value in choices:
        chosen = defaults if value is None else {**defaults, vary: value}
        outputs.append(
            {
                "params": {} if value is None else {vary: value},
                "names": list(task_type.outputs(chosen, config)),
            }
        )
    return {
        "name": task_type.name,
        "available": reason is None,
        "unavailableReason": reason,
        "params": params,
        "outputs": outputs,
        "options": [
            {
                "param": option.param,
                "available": option.requires.met(config),
                "unavailableReason": None if option.requires.met(config) else option.requires.reason,
            }
            for option in task_type.options
        ],
    }


def _describe_field(name: str, field: fields.Field) -> dict[str, Any]:
    """A params field for clients: its type, allowed values, default and range (what it validates).

    `min`/`max` bound a number's value, or a string's length.
    """
    kinds = ((fields.Boolean, "boolean"), (fields.Integer, "integer"), (fields.Number, "number"))
    default = field.load_default
    out: dict[str, Any] = {
        "name": name,
        "type": next((name for klass, name in kinds if isinstance(field, klass)), "string"),
        "default": None if default is missing or callable(default) else default,
        "allowed": None,
        "min": None,
        "max": None,
    }
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            out["allowed"] = list(validator.choices)
        elif isinstance(validator, validate.Range | validate.Length):
            out["min"], out["max"] = validator.min, validator.max
    return out
