"""Without SECRET_KEY, separate processes of one checkout sign with one generated secret."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

from api import create_app
from shared.config import DEV_SECRET
from shared.storage import verify_signature
from tests import conftest
from tests.conftest import ROOT, ConfigForTests
from tests.photos import product_photo

SIGN_IN_ANOTHER_PROCESS = """
from shared.app import create_base_app, storage
from shared.config import Config

app = create_base_app(Config())
with app.app_context():
    store = storage()
    store.put("uploads/1/generated-secret.png", open(0, "rb").read(), "image/png")
    print(store.url("uploads/1/generated-secret.png", expires_in=600))
"""


def test_a_link_signed_by_another_process_is_served_with_the_generated_secret(database, redis, tmp_path):
    overrides = {"SECRET_KEY": "", "INSTANCE_PATH": str(tmp_path)}
    signed = subprocess.run(
        [sys.executable, "-c", SIGN_IN_ANOTHER_PROCESS],
        input=product_photo(fmt="PNG"),
        cwd=ROOT,
        env={**os.environ, **conftest.test_env(**overrides)},
        capture_output=True,
        check=True,
    )
    link = urlsplit(signed.stdout.decode().strip().splitlines()[-1])
    query = dict(item.split("=", 1) for item in link.query.split("&"))
    assert (tmp_path / "secret_key").is_file()
    assert not verify_signature(DEV_SECRET, "uploads/1/generated-secret.png", query["expires"], query["sig"])

    app = create_app(ConfigForTests(**overrides))
    response = app.test_client().get(f"{link.path}?{link.query}")

    assert response.status_code == 200
    assert response.data == product_photo(fmt="PNG")
