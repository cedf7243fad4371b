"""A real S3 endpoint for tests: moto's standalone server in a subprocess on 127.0.0.1.

Import the fixtures into a test module (``from tests.s3_fixtures import moto_endpoint, s3_bucket``)
or list this module in a conftest's ``pytest_plugins``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from shared.storage import S3Storage

MOTO_REGION = "us-east-1"
"""Region the test buckets are created in."""

MOTO_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
"""moto accepts any credentials; these are never valid anywhere else."""

STARTUP_TIMEOUT = 30.0
"""Seconds to wait for the moto server to answer."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(process: subprocess.Popen[bytes], endpoint: str) -> None:
    session = requests.Session()
    session.trust_env = False
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"moto server exited with {process.returncode}:\n{output}")
        try:
            session.get(f"{endpoint}/moto-api/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer on {endpoint} within {STARTUP_TIMEOUT:g} s")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start ``python -m moto.server`` on a free 127.0.0.1 port; yield its URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        _wait_until_up(process, endpoint)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> str:
    """A fresh, empty bucket on the moto server."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    client = boto3.session.Session().client(
        "s3",
        region_name=MOTO_REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id=MOTO_CREDENTIALS["access_key_id"],
        aws_secret_access_key=MOTO_CREDENTIALS["secret_access_key"],
    )
    client.create_bucket(Bucket=name)
    return name


def make_s3_storage(endpoint: str, bucket: str, **overrides: Any) -> S3Storage:
    """An ``S3Storage`` on the moto server; path-style, since virtual hosts need DNS."""
    options: dict[str, Any] = {
        "region": MOTO_REGION,
        "endpoint_url": endpoint,
        "addressing_style": "path",
        **MOTO_CREDENTIALS,
        **overrides,
    }
    return S3Storage(bucket, **options)
