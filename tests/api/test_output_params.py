"""basic_clean's output params at create: each bad value is a 4001 naming the field and its range,
before any charge; good values are stored as sent; presets resolve to their data."""

from __future__ import annotations

import pytest

from shared.output_params import PRESETS, OutputSpec, resolve
from tests.api.test_tasks import balance, create, error

REFUSALS = [
    ({"preset": "etsy"}, "preset", "amazon, taobao, jd, shopify, ebay"),
    ({"outputSize": 255}, "outputSize", "from 256 to 4096"),
    ({"outputSize": 4097}, "outputSize", "from 256 to 4096"),
    ({"outputSize": "1000x100"}, "outputSize", "from 256 to 4096"),
    ({"outputSize": "big"}, "outputSize", "WIDTHxHEIGHT"),
    ({"outputSize": True}, "outputSize", "from 256 to 4096"),
    ({"outputSize": 1000.5}, "outputSize", "from 256 to 4096"),
    ({"fill": 0.49}, "fill", "from 0.5 to 0.98"),
    ({"fill": 0.99}, "fill", "from 0.5 to 0.98"),
    ({"fill": "most"}, "fill", "from 0.5 to 0.98"),
    ({"format": "gif"}, "format", "png, jpeg, webp"),
    ({"outputQuality": 0}, "outputQuality", "from 1 to 100"),
    ({"outputQuality": 101}, "outputQuality", "from 1 to 100"),
    ({"outputQuality": "92"}, "outputQuality", "from 1 to 100"),
    ({"backgroundColor": "white"}, "backgroundColor", "#RRGGBB"),
    ({"backgroundColor": "#FFF"}, "backgroundColor", "#RRGGBB"),
    ({"shadow": "hard"}, "shadow", "none, soft"),
    ({"maxBytes": 9_999}, "maxBytes", "from 10000 to 50000000"),
    ({"maxBytes": 50_000_001}, "maxBytes", "from 10000 to 50000000"),
]


@pytest.mark.parametrize(("params", "field", "rule"), REFUSALS)
def test_bad_output_params_are_refused_with_the_field_and_range_before_any_charge(
    client, auth, make_user, params, field, rule
):
    user = make_user(quota=1)
    body = error(create(client, auth.headers(user), params=params), 400, 4001)
    messages = body["details"]["fields"]["params"][field]
    assert any(field in message and rule in message for message in messages), messages
    assert balance(user.id) == 1


def test_good_output_params_are_stored_as_sent(client, auth, make_user):
    user = make_user(quota=1)
    headers = auth.headers(user)
    params = {"template": "white_bg", "preset": "amazon", "outputSize": "1000x1250", "fill": 0.9}
    task_id = create(client, headers, params=params).get_json()["data"]["taskId"]
    data = client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]
    assert data["params"] == params and data["results"] == []
    assert balance(user.id) == 0


def test_without_output_params_nothing_is_resolved():
    assert resolve({"template": "all"}) is None


@pytest.mark.parametrize(
    ("preset", "side", "fill", "max_bytes"),
    [
        ("amazon", 2000, 0.88, None),
        ("taobao", 800, 0.85, 3 * 1024 * 1024),
        ("jd", 800, 0.85, None),
        ("shopify", 2048, 0.85, None),
        ("ebay", 1600, 0.85, None),
    ],
)
def test_presets_resolve_to_their_marketplace_rule(preset, side, fill, max_bytes):
    spec = resolve({"preset": preset})
    assert spec == OutputSpec((side, side), fill, "jpeg", 92, (255, 255, 255), "none", max_bytes, preset)
    assert PRESETS[preset].rule


def test_explicit_params_override_the_preset():
    spec = resolve(
        {"preset": "amazon", "outputSize": "1000x1250", "format": "webp", "backgroundColor": "#fa8000"}
    )
    assert (spec.size, spec.format, spec.background, spec.fill) == ((1000, 1250), "webp", (250, 128, 0), 0.88)
