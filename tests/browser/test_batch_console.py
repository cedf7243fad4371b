"""Batches in the console, in Chromium against the live web server (`python -m api.serve`)."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path

import requests
from playwright.sync_api import expect

from tests.conftest import ROOT

from .conftest import product_jpeg, sign_in

# docs/console-batch.png is refreshed on request (UPDATE_SCREENSHOT=1); runs write to var/.
SCREENSHOT = ROOT / ("docs" if os.environ.get("UPDATE_SCREENSHOT") else "var") / "console-batch.png"
RESULT_NAMES = ["enhanced.png", "matting.png", "white-bg.png"]


def photo(name: str, width: int = 640, height: int = 480) -> dict:
    return {"name": name, "mimeType": "image/jpeg", "buffer": product_jpeg(width, height)}


def with_comments(jpeg: bytes, size: int) -> bytes:
    """The same JPEG made about `size` bytes larger with comment segments, so its upload takes a while."""
    chunk = 65_000
    segments = b"".join(
        b"\xff\xfe" + (chunk + 2).to_bytes(2, "big") + b" " * chunk for _ in range(size // chunk)
    )
    return jpeg[:2] + segments + jpeg[2:]


def api_get(live_server, page, path: str) -> dict:
    """GET an API path with the access token the browser holds."""
    token = json.loads(page.evaluate("localStorage.getItem('shopimage.auth')"))["accessToken"]
    response = requests.get(live_server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def batch_id_from(page) -> str:
    page.wait_for_url(re.compile(r".*#/batch/[0-9a-f]{32}$"))
    return page.url.rsplit("/", 1)[-1]


def test_three_photos_become_one_batch_with_a_grid_and_one_zip(page, live_server, real_worker, make_user):
    make_user("catalogue@example.com", quota=5)
    sign_in(page, "catalogue@example.com")
    assert page.get_attribute("#file-input", "multiple") is not None

    # Slow uploads down (and make one photo larger) so a file's own progress can be seen while it is sent.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 128 * 1024},
    )
    bag = {**photo("bag.jpg", 600, 600), "buffer": with_comments(product_jpeg(600, 600), 390_000)}
    page.set_input_files("#file-input", files=[photo("shoe-01.jpg"), photo("shoe-02.jpg", 480, 640), bag])
    page.wait_for_function(
        "() => [...document.querySelectorAll('#batch-files progress')].some(p => p.value > 0 && p.value < 100)"
    )
    expect(page.locator("#submit-task")).to_be_disabled()
    expect(page.locator("#batch-files-summary")).to_have_text("已上传 3/3 张", timeout=30_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    expect(page.locator("#batch-files .file-item")).to_have_count(3)
    expect(page.locator('#batch-files .file-item[data-state="uploaded"]')).to_have_count(3)

    # The task form's own choices go with the batch.
    page.click("label.type-card:has(input[value=basic_clean])")
    page.select_option("#template", "all")
    expect(page.locator("#submit-task")).to_have_text("提交批量任务（3 张，消耗 3 点额度）")
    page.click("#submit-task")
    batch_id = batch_id_from(page)

    # One batch of three tasks; three units charged at once.
    batch = api_get(live_server, page, f"/api/batches/{batch_id}")
    assert batch["total"] == 3 and len(batch["tasks"]) == 3
    assert [task["ref"] for task in batch["tasks"]] == ["shoe-01", "shoe-02", "bag"]
    assert batch["params"]["template"] == "all"
    assert api_get(live_server, page, "/api/auth/me")["user"]["quota"] == 2

    items = page.locator("#batch-grid .batch-item")
    expect(items).to_have_count(3)
    expect(page.locator("#batch-status .tag")).to_have_text("已完成", timeout=180_000)
    expect(page.locator('#batch-grid .batch-item[data-status="success"]')).to_have_count(3)
    expect(page.locator("#batch-progress-value")).to_have_text("100%")
    expect(page.locator("#batch-counts")).to_have_text("共 3 张 · 成功 3")
    expect(page.locator("#batch-summary")).to_contain_text("成功 3")
    # Every card shows its loaded result picture, named for its ref.
    expect(page.locator('#batch-grid .batch-img[data-kind="result"]')).to_have_count(3)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#batch-grid .batch-img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.locator("#batch-grid .batch-ref").all_text_contents() == ["shoe-01", "shoe-02", "bag"]
    expect(page.locator("#cancel-batch")).to_be_hidden()
    expect(page.locator("#quota")).to_have_text("剩余额度 2")

    expect(page.locator(".toast")).to_have_count(0, timeout=10_000)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    card = page.locator("#batch-card").bounding_box()
    page.screenshot(
        path=str(SCREENSHOT), clip={"x": 0, "y": 0, "width": 1280, "height": card["y"] + card["height"] + 20}
    )

    with page.expect_download() as download_info:
        page.click("#download-batch")
    download = download_info.value
    assert download.suggested_filename == f"batch-{batch_id}.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as archive:
        assert sorted(archive.namelist()) == sorted(
            f"{ref}/{name}" for ref in ("shoe-01", "shoe-02", "bag") for name in RESULT_NAMES
        )

    # A card opens its task, which links back to the batch.
    items.first.locator("a.batch-thumb").click()
    expect(page.locator("#task-status .tag")).to_have_text("处理成功")
    page.click("#task-batch")
    expect(page.locator("#batch-id")).to_have_text(f"#{batch_id}")

    # The list of batches shows it.
    page.click("#nav-batches")
    row = page.locator(f'a.task-item[data-batch-id="{batch_id}"]')
    expect(row.locator(".tag")).to_have_text("已完成")
    expect(row).to_contain_text("共 3 张 · 成功 3")


def test_cancelling_a_batch_refunds_what_had_not_run(phone_page, live_server, make_user):
    """No worker runs here: the items stay pending until the batch is cancelled."""
    page = phone_page
    make_user("cancel-batch@example.com", quota=4)
    sign_in(page, "cancel-batch@example.com")
    # One photo is a task's; two more picked at once make a batch of the three.
    page.set_input_files("#file-input", files=[photo("left.jpg", 320, 240)])
    expect(page.locator("#upload-status")).to_have_text("已上传：left.jpg")
    page.set_input_files("#file-input", files=[photo("right.jpg", 320, 240), photo("top.jpg", 240, 320)])
    expect(page.locator("#batch-files-summary")).to_have_text("已上传 3/3 张")
    expect(page.locator("#input-preview")).to_be_hidden()
    page.click("#submit-task")
    batch_id = batch_id_from(page)

    expect(page.locator("#batch-status .tag")).to_have_text("等待处理")
    expect(page.locator('#batch-grid .batch-item[data-status="pending"]')).to_have_count(3)
    assert page.locator("#batch-grid .batch-ref").all_text_contents() == ["left", "right", "top"]
    expect(page.locator('#batch-grid .batch-img[data-kind="input"]')).to_have_count(3)
    expect(page.locator("#download-batch")).to_be_disabled()
    expect(page.locator("#quota")).to_have_text("剩余额度 1")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    page.click("#cancel-batch")
    page.click("#cancel-batch-confirm")
    expect(page.locator('#batch-grid .batch-item[data-status="cancelled"]')).to_have_count(3)
    expect(page.locator("#batch-grid .batch-item .tag").first).to_have_text("已取消")
    expect(page.locator("#batch-status .tag")).to_have_text("已完成")
    expect(page.locator("#batch-counts")).to_have_text("共 3 张 · 已取消 3")
    expect(page.locator("#cancel-batch")).to_be_hidden()
    expect(page.locator("#quota")).to_have_text("剩余额度 4")

    batch = api_get(live_server, page, f"/api/batches/{batch_id}")
    assert batch["status"] == "completed" and batch["counts"]["failed"] == 3
    assert api_get(live_server, page, "/api/auth/me")["user"]["quota"] == 4

    page.screenshot(path=str(live_server.log_path.parent / "batch-cancelled-phone.png"), full_page=True)
    page.click("#lang-switch")
    expect(page.locator("#batch-grid .batch-item .tag").first).to_have_text("Cancelled")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_a_batch_beyond_the_quota_is_refused_whole(page, live_server, make_user):
    """Dropped files make a batch too; the server's all-or-nothing refusal is shown and nothing is charged."""
    make_user("short@example.com", quota=1)
    sign_in(page, "short@example.com")
    photos = [product_jpeg(320, 240), product_jpeg(300, 300)]
    data_transfer = page.evaluate_handle(
        """photos => {
            const dt = new DataTransfer();
            photos.forEach((bytes, i) => dt.items.add(new File([new Uint8Array(bytes)], `p${i}.jpg`, {type: "image/jpeg"})));
            dt.items.add(new File(["not a photo"], "notes.txt", {type: "text/plain"}));
            return dt;
        }""",
        [list(p) for p in photos],
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": data_transfer})
    expect(page.locator("#batch-files-summary")).to_have_text("已上传 2/3 张 · 1 张未上传，不会提交")
    expect(page.locator('#batch-files .file-item[data-state="failed"]')).to_contain_text("请选择图片文件")
    expect(page.locator("#batch-cost")).to_have_text("额度不足：这批需要 2 点，当前剩余 1 点。")

    page.click("#submit-task")
    expect(page.locator("#new-error")).to_have_text(
        "额度不足：这批需要 2 点，当前剩余 1 点。请减少照片或增加额度。"
    )
    assert api_get(live_server, page, "/api/batches")["total"] == 0
    assert api_get(live_server, page, "/api/auth/me")["user"]["quota"] == 1

    # Down to what the quota covers, it goes through.
    page.locator('#batch-files .file-item[data-ref="p1"] .file-remove').click()
    expect(page.locator("#batch-cost")).to_be_hidden()
    page.click("#submit-task")
    batch_id_from(page)
    expect(page.locator("#batch-grid .batch-item")).to_have_count(1)
