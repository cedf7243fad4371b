"""The console's output options in headless Chromium: preset picker with its rule, the advanced
fold, the live placement preview, and a task run with them whose results carry their real names."""

from __future__ import annotations

import json
import os
import re

from playwright.sync_api import expect

from shared.output_params import OUTPUT_KEYS, PRESETS
from tests.conftest import ROOT

from .conftest import product_jpeg, sign_in

SCREENSHOT = ROOT / ("docs" if os.environ.get("UPDATE_SCREENSHOT") else "var") / "console-output-options.png"


def test_console_presets_and_output_keys_are_the_servers():
    source = (ROOT / "api/static/console/outputs.js").read_text()
    literal = re.search(r"export const PRESETS = (\{.*?\n\});", source, re.S).group(1)
    assert json.loads(literal) == {name: {"params": dict(p.params)} for name, p in PRESETS.items()}
    labels = (ROOT / "api/static/console/i18n.js").read_text()
    for name, preset in PRESETS.items():
        chinese, english = re.findall(rf'"out\.rule\.{name}": "([^"]*)"', labels)
        assert english == preset.rule and chinese and chinese != english
    keys = re.search(r"export const OUTPUT_KEYS = (\[.*?\]);", source).group(1)
    assert tuple(json.loads(keys)) == OUTPUT_KEYS


def preview_pixels(page) -> dict:
    return page.evaluate(
        """() => {
          const c = document.getElementById('placement-preview');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let off = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200) off++;
          return {w: c.width, h: c.height, off, corner: [d[0], d[1], d[2]]};
        }"""
    )


def test_preset_advanced_fold_live_preview_and_a_task_with_them(page, live_server, real_worker, make_user):
    make_user("market@example.com", quota=2)
    sign_in(page, "market@example.com")
    page.set_input_files(
        "#file-input", files=[{"name": "bottle.jpg", "mimeType": "image/jpeg", "buffer": product_jpeg()}]
    )
    expect(page.locator("#upload-status")).to_have_text("已上传：bottle.jpg")
    page.click("label.type-card:has(input[value=basic_clean])")
    page.select_option("#template", "all")

    page.select_option("#out-preset", "amazon")
    expect(page.locator("#preset-rule")).to_have_text(
        re.compile(r"^亚马逊主图：纯白背景")
    )  # the rule in Chinese
    expect(page.locator("#placement-caption")).to_contain_text("2000×2000 · JPEG")
    expect(page.locator("#placement-caption")).to_contain_text("88 %")
    square = preview_pixels(page)
    assert square["w"] == square["h"] and square["off"] > 100 and square["corner"] == [255, 255, 255]

    page.click("#out-advanced summary")
    page.fill("#out-size", "1000x1250")
    page.locator("#out-fill").fill("0.6")
    page.locator("#out-background").fill("#e8f0ff")
    page.select_option("#out-shadow", "soft")
    expect(page.locator("#placement-caption")).to_contain_text("1000×1250 · JPEG")
    expect(page.locator("#placement-caption")).to_contain_text("60 %")
    tall = preview_pixels(page)
    assert tall["h"] > tall["w"] and tall["corner"] == [232, 240, 255]
    assert tall["off"] < square["off"]  # a smaller fill draws a smaller product

    SCREENSHOT.parent.mkdir(exist_ok=True)
    # The whole page from its top, cut to the form: an element shot scrolls, and the sticky top bar
    # then lands across the form.
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOT), full_page=True, clip=page.locator("#new-task").bounding_box())

    page.click("#submit-task")
    page.wait_for_url(re.compile(r".*#/task/[^/]+$"))
    expect(page.locator("#task-status .tag")).to_have_text("处理成功", timeout=120_000)
    links = page.locator("#gallery figcaption a")
    expect(links).to_have_count(3)
    assert [links.nth(i).get_attribute("download") for i in range(3)] == [
        "matting.png",
        "white-bg.jpg",
        "enhanced.jpg",
    ]
    expect(page.locator("#gallery .result-info").nth(1)).to_have_text("1000×1250 · JPEG")
