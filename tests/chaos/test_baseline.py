"""Baseline: the stack with no fault at all passes the invariants (proves the harness itself)."""

from __future__ import annotations

import time

import pytest

from tests.photos import product_photo

from .invariants import check_invariants


@pytest.mark.chaos_full
def test_baseline_basic_clean_without_faults(make_stack, figures):
    stack = make_stack()
    stack.start_web()
    stack.start_workers()
    tokens = stack.create_users({"base@example.com": 20})
    api = stack.api(tokens["base@example.com"])
    url = api.upload(product_photo())
    stack.wait_workers_ready(2)
    started = time.monotonic()
    ids = [api.create_id("basic_clean", url) for _ in range(10)]
    outcome = check_invariants(stack, timeout=90)
    assert outcome.statuses == {"success": 10}, stack.worker_output()
    detail = api.get(f"/api/task/{ids[0]}").json()["data"]
    assert len(detail["resultUrls"]) == 3
    figures("baseline", {**outcome.as_dict(), "seconds": round(time.monotonic() - started, 1)})
