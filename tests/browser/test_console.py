"""The seller's console in headless Chromium against the live app (`python -m api.serve`) and a real worker."""

from __future__ import annotations

import io
import itertools
import os
import re
import time
import zipfile
from pathlib import Path

import requests
from playwright.sync_api import expect

from tests.conftest import PASSWORD, ROOT

from .conftest import product_jpeg, record_requests, sign_in, spoil_access_token_and_reload, task_requests

# The README's screenshot is refreshed only on request (UPDATE_SCREENSHOT=1); runs write to var/.
SCREENSHOT = ROOT / ("docs" if os.environ.get("UPDATE_SCREENSHOT") else "var") / "console-task-page.png"
XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def task_id_from(page) -> str:
    page.wait_for_url(re.compile(r".*#/task/[^/]+$"))
    return page.url.rsplit("/", 1)[-1]


def test_basic_clean_from_registration_to_zip(page, live_server, real_worker):
    requests_seen = record_requests(page)
    page.goto("/")
    expect(page.locator("#auth-submit")).to_have_text("登录")

    page.click("#tab-register")
    page.fill("#auth-email", "seller@example.com")
    page.fill("#auth-password", PASSWORD)
    page.click("#auth-submit")

    # A new account is not a member: the form explains why instead of offering a dead button.
    expect(page.locator("#membership")).to_have_text("非会员")
    expect(page.locator("#quota")).to_have_text("剩余额度 0")
    expect(page.locator("#gate")).to_contain_text("您还不是会员")
    expect(page.locator("#submit-task")).to_have_count(0)

    live_server.cli("users", "grant", "seller@example.com", "--member", "--quota", "5")
    page.reload()
    expect(page.locator("#membership")).to_have_text("会员")
    expect(page.locator("#quota")).to_have_text("剩余额度 5")

    # Pick a photo: it is uploaded and previewed before anything is submitted.
    page.set_input_files(
        "#file-input", files=[{"name": "red-bottle.jpg", "mimeType": "image/jpeg", "buffer": product_jpeg()}]
    )
    expect(page.locator("#upload-status")).to_have_text("已上传：red-bottle.jpg")
    preview = page.locator("#input-preview")
    expect(preview).to_be_visible()
    assert page.evaluate("document.getElementById('input-preview').naturalWidth") == 640

    page.click("label.type-card:has(input[value=basic_clean])")
    page.select_option("#template", "all")
    page.click("#submit-task")
    task_id = task_id_from(page)

    status = page.locator("#task-status .tag")
    expect(status).to_have_text(re.compile("等待处理|处理中|处理成功"))
    expect(status).to_have_text("处理成功", timeout=90_000)
    done_at = time.monotonic()

    # Three results, each loaded, labelled, downloadable; a before/after slider for basic_clean.
    images = page.locator("#gallery .result-img")
    expect(images).to_have_count(3)
    for i in range(3):
        expect(images.nth(i)).to_be_visible()
    page.wait_for_function(
        "[...document.querySelectorAll('#gallery .result-img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    labels = page.locator("#gallery figcaption > span").all_text_contents()
    assert sorted(labels) == sorted(["抠图（透明背景）", "白底图", "增强图"]), labels
    expect(page.locator("#gallery figcaption a")).to_have_count(3)
    expect(page.locator("#compare")).to_be_visible()
    page.locator("#compare-range").fill("30")
    expect(page.locator("#compare")).not_to_have_class(re.compile("side-by-side"))
    expect(page.locator("#quota")).to_have_text("剩余额度 4")

    expect(page.locator(".toast")).to_have_count(0, timeout=10_000)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    with page.expect_download() as download_info:
        page.click("#download-all")
    download = download_info.value
    assert download.suggested_filename == f"task-{task_id}.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as archive:
        names = archive.namelist()
        assert len(names) == 3, names
        assert all(name.endswith(".png") for name in names), names
        assert all(archive.read(name).startswith(b"\x89PNG\r\n\x1a\n") for name in names)

    # Full-size preview.
    page.locator("#gallery .result-open").first.click()
    expect(page.locator("#lightbox img")).to_be_visible()
    page.keyboard.press("ArrowRight")
    expect(page.locator(".lightbox-caption")).to_contain_text("2/3")
    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).to_have_count(0)

    # Polling: every 3 s while running, and nothing once the task has ended.
    polls = task_requests(requests_seen, task_id)
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    assert all(gap > 2.5 for gap in gaps), gaps
    page.wait_for_timeout(7_000)
    assert [at for at in task_requests(requests_seen, task_id) if at > done_at] == []

    # The list shows it, newest first, with the seed's label.
    page.click("text=← 返回任务列表")
    item = page.locator(f'a.task-item[data-task-id="{task_id}"]')
    expect(item.locator(".tag")).to_have_text("处理成功")
    expect(item.locator(".tag")).to_have_class(re.compile("tag-success"))


def test_failed_task_shows_its_error_and_retry_makes_a_new_task(page, live_server, real_worker, make_user):
    make_user("failing@example.com", quota=3)
    sign_in(page, "failing@example.com")
    missing = f"{live_server.url}/nope.png"
    page.fill("#url-input", missing)
    page.click("text=使用链接")
    expect(page.locator("text=无法加载这张图片")).to_be_visible()
    page.click("#submit-task")
    first_id = task_id_from(page)

    expect(page.locator("#task-status .tag")).to_have_text("处理失败", timeout=60_000)
    expect(page.locator("#task-status .tag")).to_have_class(re.compile("tag-failed"))
    message = page.locator("#error-message")
    expect(message).to_contain_text("404")
    expect(page.locator("#task-failure")).to_contain_text("额度已退还")
    expect(page.locator("#quota")).to_have_text("剩余额度 3")

    page.click("#retry-task")
    page.wait_for_url(re.compile(r".*#/task/(?!" + re.escape(first_id) + r"$)[^/]+$"))
    second_id = page.url.rsplit("/", 1)[-1]
    assert second_id != first_id
    expect(page.locator("#task-status .tag")).to_have_text(re.compile("等待处理|处理中|处理失败"))
    expect(page.locator("#task-input-img")).to_have_attribute("src", missing)


def test_description_is_text_polling_is_bounded_and_phone_width_fits(phone_page, live_server, make_user):
    """No worker runs here: the task stays pending, which is what the polling checks need."""
    page = phone_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    requests_seen = record_requests(page)
    make_user("phone@example.com", quota=2)
    sign_in(page, "phone@example.com")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    # Drag and drop a photo onto the drop zone.
    photo = product_jpeg(320, 240)
    data_transfer = page.evaluate_handle(
        """bytes => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], "drop <b>me</b>.jpg", {type: "image/jpeg"}));
            return dt;
        }""",
        list(photo),
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": data_transfer})
    expect(page.locator("#upload-status")).to_have_text("已上传：drop <b>me</b>.jpg")

    page.click("label.type-card:has(input[value=model_pose12])")
    page.select_option("#scene", "street")
    page.select_option("#category", "hoodie")
    page.fill("#description", XSS)
    expect(page.locator("#description-count")).to_have_text(f"{len(XSS)}/500")
    page.evaluate("sessionStorage.setItem('shopimage.pollMaxAttempts', '3')")
    page.click("#submit-task")
    task_id = task_id_from(page)

    expect(page.locator("#product-description")).to_have_text(XSS)
    expect(page.locator("#task-status .tag")).to_have_text("等待处理")
    expect(page.locator(".progress-section")).to_contain_text("处理程序正在启动")  # no worker registered
    assert page.evaluate("document.querySelectorAll('img[src=x], #product-description *').length") == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    # Unchanged answers do not touch the DOM; after the attempt limit it says so and offers a refresh.
    page.evaluate(
        """() => {
            window.__mutations = 0;
            new MutationObserver(list => { window.__mutations += list.length; })
                .observe(document.getElementById('task-content'), {subtree: true, childList: true, attributes: true, characterData: true});
        }"""
    )
    expect(page.locator("#manual-refresh")).to_be_visible(timeout=15_000)
    expect(page.locator("#poll-notice")).to_contain_text("停止自动刷新")
    assert len(task_requests(requests_seen, task_id)) == 3
    assert page.evaluate("window.__mutations") == 0
    page.click("#manual-refresh")
    expect(page.locator("#poll-notice")).to_be_hidden()
    page.wait_for_timeout(500)
    assert len(task_requests(requests_seen, task_id)) == 4

    # Leaving the page stops polling.
    page.click("text=← 返回任务列表")
    left_at = time.monotonic()
    page.wait_for_timeout(4_000)
    assert [at for at in task_requests(requests_seen, task_id) if at > left_at] == []

    # English, remembered across reloads.
    page.click("#lang-switch")
    expect(page.locator(f'a.task-item[data-task-id="{task_id}"] .tag')).to_have_text("Pending")
    page.reload()
    expect(page.locator("#quota")).to_have_text("Quota left: 1")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert dialogs == []


def test_empty_quota_is_explained_and_tokens_refresh(page, live_server, make_user):
    response = requests.get(live_server.url + "/", timeout=5)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]

    make_user("empty@example.com", quota=0)
    sign_in(page, "empty@example.com")
    expect(page.locator("#quota")).to_have_text("剩余额度 0")
    expect(page.locator("#gate")).to_contain_text("额度已用完")
    expect(page.locator("#submit-task")).to_have_count(0)

    # A rejected access token is refreshed once and the call repeated.
    refreshes = []
    page.on("request", lambda r: refreshes.append(r.url) if r.url.endswith("/api/auth/refresh") else None)
    spoil_access_token_and_reload(page)
    expect(page.locator("#user-email")).to_have_text("empty@example.com")
    assert len(refreshes) == 1

    # When the refresh token is refused too, the sign-in screen comes back with a reason.
    page.evaluate(
        """() => {
            localStorage.setItem('shopimage.auth', JSON.stringify({accessToken: 'x', refreshToken: 'y'}));
        }"""
    )
    page.reload()
    expect(page.locator("#auth-submit")).to_be_visible()
    expect(page.locator(".notice")).to_have_text("登录已过期，请重新登录。")

    sign_in(page, "empty@example.com")
    page.click("#sign-out")
    expect(page.locator("#auth-submit")).to_be_visible()
    assert page.evaluate("localStorage.getItem('shopimage.auth')") is None


def test_hd_choice_is_sent_and_shown(page, live_server, make_user):
    """No worker runs here: only what the console sends and shows is checked."""
    from shared.db import db
    from shared.models import Task

    make_user("hd@example.com", quota=2)
    sign_in(page, "hd@example.com")
    page.fill("#url-input", f"{live_server.url}/hd.png")
    page.click("text=使用链接")
    page.click("label.type-card:has(input[value=basic_clean])")
    expect(page.locator("label[for=hd]")).to_contain_text("较慢")
    page.check("#hd")
    page.click("#submit-task")
    task_id = task_id_from(page)
    expect(page.locator("text=高清边缘")).to_be_visible()
    db.session.expire_all()
    assert db.session.get(Task, task_id).params == {"template": "all", "hd": True}
