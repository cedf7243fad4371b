"""HD cut-outs end to end: the installed u2net model on a real worker serving the HD queue only."""

from __future__ import annotations

import numpy as np

from tests.conftest import wait_for
from tests.photos import product_photo
from tests.worker.test_basic_clean_e2e import REAL_PIPELINE, app, create, fetch_png, finished, upload  # noqa: F401

HD_WORKER = {**REAL_PIPELINE, "WORKER_QUEUES": "images_hd", "WORKER_RUN_CRON": "0"}
STANDARD_WORKER = {**REAL_PIPELINE, "WORKER_QUEUES": "images"}


def create_hd(client, headers, url: str, template: str = "matting"):
    return client.post(
        "/api/task/create",
        json={"type": "basic_clean", "inputImageUrl": url, "params": {"template": template, "hd": True}},
        headers=headers,
    )


def test_hd_task_runs_on_the_hd_worker_with_the_installed_model(client, auth, make_user, start_worker):
    user = make_user(quota=2)
    headers = auth.headers(user)
    url = upload(client, headers, product_photo(480, 360))
    hd_worker = start_worker(**HD_WORKER)
    task_id = create_hd(client, headers, url, "all").get_json()["data"]["taskId"]
    task = wait_for(lambda: finished(task_id), timeout=180, message="HD task")
    assert task.status == "success", (task.error_message, hd_worker.output()[-3000:])
    links = client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]["resultUrls"]
    assert [u.split("?")[0].rsplit("/", 1)[-1] for u in links] == [
        "matting.png",
        "white-bg.png",
        "enhanced.png",
    ]
    alpha = np.asarray(fetch_png(client, links[0]))[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255
    assert "HD matting model loaded" in hd_worker.output()


def test_hd_job_occupying_its_worker_does_not_delay_a_standard_task(client, auth, make_user, start_worker):
    user = make_user(quota=2)
    headers = auth.headers(user)
    big = upload(client, headers, product_photo(3000, 3000), "big.jpg")
    small = upload(client, headers, product_photo(400, 400), "small.jpg")
    standard_worker = start_worker(**STANDARD_WORKER)
    hd_worker = start_worker(**HD_WORKER)
    # Both workers ready (models loaded) before the race starts.
    wait_for(lambda: "HD matting model loaded" in hd_worker.output(), timeout=120, message="HD worker ready")
    wait_for(
        lambda: "matting model loaded" in standard_worker.output(), timeout=120, message="standard ready"
    )
    hd_id = create_hd(client, headers, big, "all").get_json()["data"]["taskId"]
    wait_for(lambda: client.get(f"/api/task/{hd_id}", headers=headers).get_json()["data"]["status"] == "processing",
             timeout=60, message="HD task started")  # fmt: skip
    standard_id = create(client, headers, small, "matting").get_json()["data"]["taskId"]
    standard = wait_for(lambda: finished(standard_id), timeout=120, message="standard task")
    assert standard.status == "success", (standard.error_message, standard_worker.output()[-3000:])
    hd = wait_for(lambda: finished(hd_id), timeout=240, message="HD task")
    assert hd.status == "success", (hd.error_message, hd_worker.output()[-3000:])
    # The standard task started and finished while the HD job still held the HD worker.
    assert standard.completed_at < hd.completed_at
    # Only the HD process loaded the HD model.
    assert "HD matting model loaded" not in standard_worker.output()
