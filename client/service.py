"""The shopimage service over HTTP, as the `shopimage` command uses it: the JSON envelope, retries.

Only HTTP: this runs on a seller's laptop, far from the service's code. Once a run is under way,
transport failures and 502/503/504 are retried by urllib3's `Retry` (every method: uploads cost
nothing twice, batches carry an `Idempotency-Key`); 429 "too many requests" (4029) waits for its `Retry-After`. Any other
refusal becomes a `ServiceError` with the envelope's code, message and details.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RATE_LIMITED = 4029
"""Too many requests for the account: wait `Retry-After` seconds and send again."""
TOO_MANY_ACTIVE = 1005
"""Too many batches in progress for the account: wait until one ends, then submit again."""
QUOTA_EXHAUSTED = 1003
"""The account's balance is below what the batch costs (details: needed, balance)."""

TIMEOUT = (10, 120)
"""Seconds to connect, and to wait for each piece of an answer."""
RATE_LIMIT_TRIES = 10
PATIENT = Retry(
    total=5,
    connect=5,
    read=2,
    status=5,
    backoff_factor=1,
    status_forcelist=(502, 503, 504),
    allowed_methods=None,
    # Not on Retry-After: the service puts it on every 429, and "too many batches in progress"
    # (1005) is for the caller to wait out while it follows its batches.
    respect_retry_after_header=False,
    raise_on_status=False,
)
"""Retries once a run is under way: about 30 s of backoff before a request gives up."""
USER_AGENT = "shopimage-cli/0.1"


class ServiceError(Exception):
    """The service refused a request (`status` and `code` from the envelope), or could not be reached
    (`status` None)."""

    def __init__(
        self, message: str, *, status: int | None = None, code: int | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or {}


class Service:
    """One account on one shopimage server, reached with an API key."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"X-API-Key": api_key, "User-Agent": USER_AGENT})

    def patient(self) -> None:
        """From now on ride out dropped connections and 502/503/504 (a long run on a laptop's wifi);
        before, a wrong address fails at once."""
        adapter = HTTPAdapter(max_retries=PATIENT)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def balance(self) -> int:
        return int(self.call("GET", "/api/quota")["quota"])

    def task_types(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/task/types")["types"]

    def upload(self, path: Path) -> str:
        """Store a photo on the service; its URL is a valid `inputImageUrl` for this account."""
        data = path.read_bytes()
        return self.call("POST", "/api/uploads", files={"file": (path.name, data)})["url"]

    def create_batch(self, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        return self.call("POST", "/api/batches", json=body, headers={"Idempotency-Key": idempotency_key})

    def batch(self, batch_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/batches/{batch_id}")

    def download(self, batch_id: str, dest: Path) -> None:
        """Write the batch's zip of results to `dest`, streamed (it can hold hundreds of images)."""
        with self._send("GET", f"/api/batches/{batch_id}/download", stream=True) as response:
            if response.status_code != 200:
                raise self._refusal(response)
            with dest.open("wb") as out:
                for chunk in response.iter_content(1024 * 1024):
                    out.write(chunk)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the envelope's `data`, or raise ServiceError."""
        response = self._send(method, path, **kwargs)
        if not 200 <= response.status_code < 300:
            raise self._refusal(response)
        body = self._envelope(response)
        return body.get("data")

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.base_url + path
        for _ in range(RATE_LIMIT_TRIES):
            try:
                response = self.session.request(method, url, timeout=TIMEOUT, **kwargs)
            except requests.RequestException as exc:
                raise ServiceError(f"cannot reach {self.base_url} ({_reason(exc)})") from None
            if response.status_code != 429 or self._code(response) != RATE_LIMITED:
                return response
            response.close()
            time.sleep(_retry_after(response))
        return response

    def _refusal(self, response: requests.Response) -> ServiceError:
        body = self._envelope(response)
        return ServiceError(
            body.get("message") or f"HTTP {response.status_code}",
            status=response.status_code,
            code=body.get("code"),
            details=body.get("details"),
        )

    def _envelope(self, response: requests.Response) -> dict[str, Any]:
        """The JSON envelope; anything else means the URL is not a shopimage service."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "success" not in body:
            raise ServiceError(
                f"{self.base_url} answered {response.status_code} {response.reason} without the service's "
                "JSON envelope: is this the shopimage service's address?",
                status=response.status_code,
            )
        return body

    def _code(self, response: requests.Response) -> int | None:
        try:
            return response.json().get("code")
        except (ValueError, AttributeError):
            return None


def _retry_after(response: requests.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "5")))
    except ValueError:
        return 5.0


def _reason(exc: requests.RequestException) -> str:
    """The innermost reason of a transport error, without urllib3's object reprs."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    text = str(reason or exc)
    return re.sub(r"<[^>]+>:\s*", "", text).strip() or exc.__class__.__name__
