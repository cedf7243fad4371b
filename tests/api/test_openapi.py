"""The OpenAPI document: valid, complete against the app's routes, true to what the app answers."""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from api.openapi import COMMON_ERRORS, missing_routes, undocumented_routes
from api.schemas.responses import ERROR_CODES, STATUS_CODES
from tests.conftest import app_with
from tests.standin_fixtures import STANDIN_API_KEY, WORKFLOWS_EXAMPLE

FUZZ_EXAMPLES = int(os.environ.get("OPENAPI_FUZZ_EXAMPLES", "25"))
"""Examples per operation and generation mode; `make fuzz` raises it."""
FUZZ_SEED = int(os.environ.get("OPENAPI_FUZZ_SEED", "0"))
"""0 derandomizes (the same examples every run); any other value seeds a different run."""
SERVICE_TOKEN = "test-service-token"
METRICS_TOKEN = "fuzz-metrics-token"
WEBHOOK_SECRET = "fuzz-runninghub-secret"

SETTINGS = {
    # model_pose12 accepted (nothing calls RunningHub: no worker runs here)
    "RUNNINGHUB_BASE_URL": "http://127.0.0.1:9",
    "RUNNINGHUB_API_KEY": STANDIN_API_KEY,
    "RUNNINGHUB_WORKFLOWS_FILE": str(WORKFLOWS_EXAMPLE),
    "RUNNINGHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "METRICS_TOKEN": METRICS_TOKEN,
    "SSE_MAX_SECONDS": "1",
    "SSE_HEARTBEAT_SECONDS": "1",
    # the limiter stays on, with limits the fuzzer does not reach
    "RATELIMIT_LOGIN": "100000/minute",
    "RATELIMIT_CREATE": "100000/minute",
    "RATELIMIT_AUTHENTICATED": "100000/minute",
    "RATELIMIT_ANONYMOUS": "100000/minute",
    "RATELIMIT_ADMIN": "100000/minute",
}
POSITIVE_REJECTED = {
    "POST /api/uploads": "the file must really be a JPEG, PNG or WebP: no schema can say that of bytes",
}
"""Operations where schema-valid examples may rightly be refused (so positive_data_acceptance is off)."""
NEGATIVE_ACCEPTED = {
    "POST /api/webhooks/runninghub/{secret}": "answers 200 `accepted: false` to any body it cannot use",
}
"""Operations that rightly accept what the document calls invalid (so negative_data_rejection is off)."""


@pytest.fixture
def app(database, redis):
    yield from app_with(**SETTINGS)


def document(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_document_is_valid_openapi(client):
    spec = document(client)
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert {"bearerAuth", "serviceToken"} <= set(spec["components"]["securitySchemes"])


def test_every_route_has_an_operation(app):
    assert undocumented_routes(app) == []


def test_every_operation_has_a_route(app):
    assert missing_routes(app) == []


def test_every_operation_lists_its_error_responses(client):
    for path, item in document(client)["paths"].items():
        for method, operation in item.items():
            statuses = {int(status) for status in operation["responses"]}
            errors = {status for status in statuses if status >= 400}
            assert any(status < 400 for status in statuses), (method, path)
            assert any(400 <= status < 500 for status in errors), (method, path)
            assert set(COMMON_ERRORS) <= errors, (method, path)
            for status in errors:
                response = operation["responses"][str(status)]
                assert response.get("$ref") == f"#/components/responses/{status}" or response["content"]


def test_every_business_code_is_documented_with_its_status(client):
    responses = document(client)["components"]["responses"]
    documented = set()
    for status, codes in STATUS_CODES.items():
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        assert schema["allOf"][1]["properties"]["code"]["enum"] == list(codes)
        documented |= set(codes)
    assert documented == set(ERROR_CODES)


def test_the_special_operations_are_described(client):
    paths = document(client)["paths"]
    create = paths["/api/task/create"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create["parameters"])
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateTaskRequest"
    }
    assert paths["/api/task/{taskId}/status"]["put"]["security"] == [{"serviceToken": []}, {"bearerAuth": []}]
    assert "multipart/form-data" in paths["/api/uploads"]["post"]["requestBody"]["content"]
    assert "application/zip" in paths["/api/task/{taskId}/download"]["get"]["responses"]["200"]["content"]
    assert {p["name"] for p in paths["/api/task/list"]["get"]["parameters"]} == {
        "limit",
        "offset",
        "status",
        "type",
    }


def test_docs_page_and_its_assets_load_from_this_app(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "http" not in csp
    html = page.get_data(as_text=True)
    assert "<script>" not in html  # no inline script: the CSP would block it
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        response = client.get(asset)
        assert response.status_code == 200, asset
        if asset.endswith("docs.js"):
            assert not re.search(r"https?://", response.get_data(as_text=True))


@pytest.fixture
def fuzz_tokens(app, make_user, auth, client) -> dict[str, object]:
    """A member's tokens and two of the member's tasks, for the fuzzer to act on."""
    member = make_user("fuzz@example.com", quota=1000)
    tokens = auth.login(member.email)
    headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
    task_ids = []
    for _ in range(2):
        response = client.post(
            "/api/task/create",
            json={"type": "basic_clean", "inputImageUrl": "https://example.com/a.jpg"},
            headers=headers,
        )
        assert response.status_code == 201, response.get_json()
        task_ids.append(response.get_json()["data"]["taskId"])
    assert client.post(f"/api/task/{task_ids[1]}/cancel", headers=headers).status_code == 200
    return {"access": tokens["accessToken"], "refresh": tokens["refreshToken"], "tasks": task_ids}


def test_schemathesis_finds_no_server_errors_and_no_document_breaks(app, fuzz_tokens):
    """Every operation, positive and negative examples, checked against the document.

    Two thirds of the positive examples that take a `taskId` use one of the member's real tasks
    (one pending, one cancelled), so the paths past the 404 (cancel, retry, status moves,
    download, event stream) are reached too; the RunningHub callback gets the real path secret.
    """
    config = schemathesis.Config.from_dict({"generation": {"allow-extra-parameters": False}})
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=config)
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, fuzz_tokens)
            except Unsatisfiable:
                pass  # nothing to negate: no parameters, or only free-form strings
            except (
                BaseExceptionGroup
            ) as exc:  # schemathesis' FailureGroup: collect them all, report at the end
                failures[f"{operation.label} [{mode.value}]"] = str(exc)
            except Exception as exc:
                failures[f"{operation.label} [{mode.value}]"] = str(exc)
    assert not failures, f"{len(failures)} failing operations:\n\n" + "\n\n".join(
        f"== {label}\n{text}" for label, text in failures.items()
    )


def _fuzz(operation, mode, tokens: dict[str, object]) -> None:
    security = {name for item in operation.definition.raw.get("security", []) for name in item}
    if "serviceToken" in security:
        headers = {"X-Service-Token": SERVICE_TOKEN}
    elif "refreshToken" in security:
        headers = {"Authorization": f"Bearer {tokens['refresh']}"}
    elif "metricsToken" in security:
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    else:
        headers = {"Authorization": f"Bearer {tokens['access']}"}
    excluded = [positive_data_acceptance] if operation.label in POSITIVE_REJECTED else []
    if operation.label in NEGATIVE_ACCEPTED:
        excluded.append(negative_data_rejection)
    real_ids = st.sampled_from([None, *tokens["tasks"]])  # type: ignore[misc]

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=FUZZ_SEED == 0,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode), task_id=real_ids)
    def run(case, task_id) -> None:
        path = case.path_parameters or {}
        if task_id and "taskId" in path and mode is schemathesis.GenerationMode.POSITIVE:
            path["taskId"] = task_id
        if task_id and "secret" in path:
            path["secret"] = WEBHOOK_SECRET
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    if FUZZ_SEED:
        run = seed(FUZZ_SEED)(run)
    run()


def test_every_error_class_is_documented_under_its_status():
    """Each error the API can raise is in the document's code list, under its HTTP status."""
    from api.schemas.responses import ERROR_CODES, STATUS_CODES
    from shared import errors

    def subclasses(klass):
        for sub in klass.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for error in subclasses(errors.ServiceError):
        assert error.code in ERROR_CODES, error.__name__
        assert error.code in STATUS_CODES[error.status], (error.__name__, error.status)
