"""The console's API keys page and sign-out, in Chromium against the real web server."""

from __future__ import annotations

import json

import requests
from playwright.sync_api import expect

from .conftest import sign_in, spoil_access_token_and_reload


def test_keys_page_creates_shows_once_and_revokes(page, live_server, make_user):
    make_user("keys-ui@example.com")
    sign_in(page, "keys-ui@example.com")
    page.click("#nav-keys")
    expect(page.locator("#keys-empty")).to_be_visible()
    page.fill("#key-name", "my shop")
    page.click("#create-key")
    secret = page.locator("#key-secret").input_value(timeout=10_000)
    assert secret.startswith("sk_")
    row = page.locator("tr[data-key-id]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("my shop")
    assert secret not in page.locator("#key-list").inner_text()
    page.screenshot(path=str(live_server.log_path.parent / "keys-page.png"))

    me = requests.get(live_server.url + "/api/auth/me", headers={"X-API-Key": secret}, timeout=5)
    assert me.status_code == 200 and me.json()["data"]["user"]["email"] == "keys-ui@example.com"

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.revoke").click()
    expect(page.locator("#keys-empty")).to_be_visible()
    refused = requests.get(live_server.url + "/api/auth/me", headers={"X-API-Key": secret}, timeout=5)
    assert refused.status_code == 401 and refused.json()["code"] == 4003


def test_sign_out_ends_the_session_on_the_server(page, live_server, make_user):
    make_user("bye@example.com")
    sign_in(page, "bye@example.com")
    expect(page.locator("#user-email")).to_have_text("bye@example.com")
    saved = json.loads(page.evaluate("localStorage.getItem('shopimage.auth')"))

    with page.expect_response(lambda r: r.url.endswith("/api/auth/logout")):  # answered, not only sent
        page.click("#sign-out")
    expect(page.locator("#auth-submit")).to_be_visible()

    def refused(path: str, token: str) -> bool:
        response = requests.request(
            "POST" if path.endswith("refresh") else "GET",
            live_server.url + path,
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        return response.status_code == 401

    # Both tokens the browser held are dead, though the access token had not expired.
    assert refused("/api/auth/refresh", saved["refreshToken"])
    assert refused("/api/auth/me", saved["accessToken"])


def test_console_keeps_the_rotated_refresh_token(page, live_server, make_user):
    make_user("rotate-ui@example.com")
    sign_in(page, "rotate-ui@example.com")
    before = json.loads(page.evaluate("localStorage.getItem('shopimage.auth')"))
    spoil_access_token_and_reload(page)
    expect(page.locator("#user-email")).to_have_text("rotate-ui@example.com")
    after = json.loads(page.evaluate("localStorage.getItem('shopimage.auth')"))
    assert after["refreshToken"] != before["refreshToken"]
    # The stored successor still works after another reload (the old one would end the session).
    spoil_access_token_and_reload(page)
    expect(page.locator("#user-email")).to_have_text("rotate-ui@example.com")
