"""The console's new-task form is built from `GET /api/task/types`, not from a list of its own.

A web server configured with a third type (defined in tests/worker/test_task_types_e2e.py) and
without RunningHub: the form offers the third type with its params, greys out model_pose12 with
the server's reason, and creates the third type's task with the chosen values.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from shared.db import db
from shared.models import Task
from shared.task_types import TEMPLATES
from tests.conftest import ROOT
from tests.conftest import test_env as env_for_tests
from tests.worker.test_task_types_e2e import MODULE, THIRD

from .conftest import LiveServer, _finish, _free_port, _new_page, product_jpeg, sign_in

SCREENSHOT = ROOT / "var" / "console-create-form.png"


@pytest.fixture
def third_type_server(database, tmp_path):
    port = _free_port()
    env = env_for_tests(
        TASK_TYPE_MODULES=MODULE,
        HOST="127.0.0.1",
        PORT=str(port),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
    )
    server = LiveServer(port, env, tmp_path / "web.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def third_type_page(request, browser, third_type_server, app, tmp_path):
    context, page = _new_page(browser, third_type_server, 1280, 900)
    yield page
    _finish(request, context, page, third_type_server, tmp_path)


def test_form_choices_come_from_the_server(third_type_page, make_user):
    page = third_type_page
    make_user("types@example.com", quota=2)
    sign_in(page, "types@example.com")

    cards = page.locator("label.type-card")
    expect(cards).to_have_count(3)
    expect(cards.nth(0)).to_contain_text("基础修图")
    # Unavailable here: shown, not selectable, with the server's reason.
    model = page.locator("label.type-card:has(input[value=model_pose12])")
    expect(model).to_have_class("type-card unavailable")
    expect(model.locator("input")).to_be_disabled()
    expect(model).to_contain_text("RunningHub is not configured on this server")
    # No label in i18n.js: the value itself is shown.
    expect(page.locator(f"label.type-card:has(input[value={THIRD}]) strong")).to_have_text(THIRD)

    template_values = page.eval_on_selector_all("#template option", "options => options.map(o => o.value)")
    assert template_values == list(TEMPLATES)
    expect(page.locator("#template option[value=white_bg]")).to_have_text("仅白底图")

    page.set_input_files(
        "#file-input", files=[{"name": "bottle.jpg", "mimeType": "image/jpeg", "buffer": product_jpeg()}]
    )
    expect(page.locator("#upload-status")).to_have_text("已上传：bottle.jpg")
    page.click(f"label.type-card:has(input[value={THIRD}])")
    expect(page.locator(f"#params-{THIRD}")).to_be_visible()
    expect(page.locator("#params-basic_clean")).to_be_hidden()
    expect(page.locator("#size")).to_have_value("128")
    expect(page.locator("#size")).to_have_attribute("max", "512")
    assert page.eval_on_selector_all("#style option", "options => options.map(o => o.textContent)") == [
        "plain",
        "framed",
    ]
    page.fill("#size", "64")
    page.select_option("#style", "framed")
    os.makedirs(SCREENSHOT.parent, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click("#submit-task")
    page.wait_for_url("**/#/task/*")
    task_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator("#size")).to_have_text("64")
    db.session.expire_all()
    task = db.session.get(Task, task_id)
    assert (task.type, task.params) == (THIRD, {"size": 64, "style": "framed"})
