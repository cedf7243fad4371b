"""RunningHub workflow mapping: which workflow renders which scene/category, and where its inputs go.

The mapping is configuration (a JSON file, see config/runninghub-workflows.example.json), checked
once at start-up so a missing or malformed entry stops the process instead of failing a paid task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SCENES = ("street", "studio", "indoor")
"""Scenes a model-photo task may ask for."""

CATEGORIES = ("shoes", "dress", "hoodie")
"""Product categories a model-photo task may ask for."""

INPUTS = ("image", "scene", "category", "description", "seed")
"""Workflow inputs we fill; only `image` is required, the others may be null (no such node)."""


class WorkflowConfigError(ValueError):
    """The workflow mapping is missing an entry or has an invalid one."""


@dataclass(frozen=True)
class NodeField:
    """One ComfyUI node input: `nodeId` and `fieldName` as RunningHub names them."""

    node_id: str
    field_name: str


@dataclass(frozen=True)
class Workflow:
    """The resolved configuration of one scene/category pair."""

    workflow_id: str
    inputs: dict[str, NodeField | None]
    scene_text: str
    category_text: str


@dataclass(frozen=True)
class WorkflowMap:
    """Every scene × category pair mapped to a workflow; built by `load_workflows`."""

    entries: dict[tuple[str, str], Workflow]

    def get(self, scene: str, category: str) -> Workflow:
        try:
            return self.entries[(scene, category)]
        except KeyError:
            raise WorkflowConfigError(
                f"runninghub workflows: no entry for scene={scene} category={category}"
            ) from None

    def node_info_list(
        self, scene: str, category: str, *, image_file_name: str, description: str, seed: int
    ) -> tuple[str, list[dict[str, Any]]]:
        """Return `(workflow_id, nodeInfoList)` for a create call."""
        workflow = self.get(scene, category)
        values: dict[str, Any] = {
            "image": image_file_name,
            "scene": workflow.scene_text,
            "category": workflow.category_text,
            "description": description,
            "seed": seed,
        }
        node_info = [
            {"nodeId": field.node_id, "fieldName": field.field_name, "fieldValue": values[name]}
            for name, field in workflow.inputs.items()
            if field is not None
        ]
        return workflow.workflow_id, node_info

    def workflow_fields(self) -> dict[str, set[tuple[str, str]]]:
        """Map each workflowId to the (nodeId, fieldName) pairs its entries use."""
        fields: dict[str, set[tuple[str, str]]] = {}
        for workflow in self.entries.values():
            known = fields.setdefault(workflow.workflow_id, set())
            known.update((f.node_id, f.field_name) for f in workflow.inputs.values() if f is not None)
        return fields


def load_workflows(path: str) -> WorkflowMap:
    """Read and validate the mapping file; raise `WorkflowConfigError` naming the bad entry."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as exc:
        raise WorkflowConfigError(f"runninghub workflows: cannot read {path}: {exc}") from exc
    return parse_workflows(raw)


def parse_workflows(raw: Any) -> WorkflowMap:
    """Validate an already-decoded mapping (see `load_workflows`)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("workflows"), dict):
        raise WorkflowConfigError("runninghub workflows: top level must be an object with 'workflows'")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise WorkflowConfigError("runninghub workflows: 'defaults' must be an object")

    for key in raw["workflows"]:
        scene, _, category = key.partition("/")
        if scene not in SCENES or category not in CATEGORIES:
            raise WorkflowConfigError(
                f"runninghub workflows: unknown entry {key!r} (expected <scene>/<category> with "
                f"scene in {SCENES} and category in {CATEGORIES})"
            )

    entries = {}
    for scene in SCENES:
        for category in CATEGORIES:
            entry = raw["workflows"].get(f"{scene}/{category}")
            where = f"scene={scene} category={category}"
            if entry is None:
                raise WorkflowConfigError(f"runninghub workflows: missing entry for {where}")
            if not isinstance(entry, dict):
                raise WorkflowConfigError(f"runninghub workflows: entry for {where} must be an object")
            entries[(scene, category)] = _workflow(scene, category, {**defaults, **entry}, defaults, where)
    return WorkflowMap(entries)


def _workflow(scene: str, category: str, merged: dict, defaults: dict, where: str) -> Workflow:
    workflow_id = merged.get("workflowId")
    if not isinstance(workflow_id, str) or not workflow_id.isdigit():
        raise WorkflowConfigError(
            f"runninghub workflows: {where}: workflowId must be a string of digits, got {workflow_id!r}"
        )
    # Inputs merge per input name, so an entry can move one node and inherit the rest.
    inputs_raw = {**defaults.get("inputs", {}), **merged.get("inputs", {})}
    inputs: dict[str, NodeField | None] = {}
    for name, field in inputs_raw.items():
        if name not in INPUTS:
            raise WorkflowConfigError(f"runninghub workflows: {where}: unknown input {name!r}")
        inputs[name] = None if field is None else _node_field(field, f"{where} input={name}")
    if inputs.get("image") is None:
        raise WorkflowConfigError(f"runninghub workflows: {where}: missing input 'image'")
    return Workflow(
        workflow_id=workflow_id,
        inputs=inputs,
        scene_text=_text(merged, "sceneText", scene, where),
        category_text=_text(merged, "categoryText", category, where),
    )


def _node_field(field: Any, where: str) -> NodeField:
    if not isinstance(field, dict):
        raise WorkflowConfigError(f"runninghub workflows: {where}: must be an object with nodeId, fieldName")
    node_id, field_name = field.get("nodeId"), field.get("fieldName")
    if not isinstance(node_id, str) or not node_id:
        raise WorkflowConfigError(f"runninghub workflows: {where}: nodeId must be a non-empty string")
    if not isinstance(field_name, str) or not field_name:
        raise WorkflowConfigError(f"runninghub workflows: {where}: fieldName must be a non-empty string")
    return NodeField(node_id, field_name)


def _text(merged: dict, key: str, name: str, where: str) -> str:
    """A text is either a plain string (entry override) or a table keyed by scene/category (defaults)."""
    value = merged.get(key)
    if isinstance(value, dict):
        value = value.get(name)
    if not isinstance(value, str) or not value:
        raise WorkflowConfigError(f"runninghub workflows: {where}: missing {key} for {name!r}")
    return value
