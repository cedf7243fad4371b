"""Download a user-supplied image without letting the URL reach into our own network.

Every hop (the URL and each redirect) is checked with ``check_url(resolve=True)`` and the
connection dials exactly the addresses that passed, while the Host header, TLS SNI and
certificate check still use the host name. A DNS answer that changes between check and
connect (rebinding) is never consulted. Size and time are capped while streaming, and the total
time limit runs from the connection's first byte: a server that trickles its status line or
headers is cut off by the same deadline as one that trickles its body.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from contextlib import ExitStack, suppress
from typing import Any
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util.connection import create_connection

from shared.urlguard import ParsedTarget, UnresolvableHost, UnsafeURL, check_url

MAX_BYTES = 20 * 1024 * 1024
"""Largest image we download (and hold in memory)."""

TOTAL_TIMEOUT = 60.0
"""Seconds the whole download may take, redirects included, however steadily bytes trickle in."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
"""Answers whose Location we follow (after checking it like the first URL)."""

CHUNK_SIZE = 64 * 1024
"""Bytes asked for per socket read while streaming."""


class FetchError(Exception):
    """The image could not be downloaded; the message is meant for the user.

    ``retryable`` is True for failures that may go away (timeouts, 5xx, dropped connections).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


def fetch(
    url: str,
    *,
    max_bytes: int = MAX_BYTES,
    connect_timeout: float = 5,
    read_timeout: float = 15,
    max_redirects: int = 3,
    allow_private: bool = False,
    session: requests.Session | None = None,
    total_timeout: float = TOTAL_TIMEOUT,
) -> bytes:
    """Return the body of ``url``; raise ``FetchError`` with a human message otherwise.

    ``session`` only contributes headers (User-Agent), ``verify`` and ``cert``: connections
    always go through a fresh pinned adapter, never through the session's own adapters or
    environment proxies, which would dial an unchecked address.
    """
    session = session or requests.Session()
    deadline = time.monotonic() + total_timeout
    with _Deadline(deadline) as watchdog:
        try:
            body = _fetch(
                url,
                session,
                watchdog,
                max_bytes,
                connect_timeout,
                read_timeout,
                max_redirects,
                allow_private,
                total_timeout,
            )
        except FetchError as exc:
            if watchdog.expired:
                raise _too_long(total_timeout) from exc
            raise
        if watchdog.expired:  # a connection cut mid-headers can parse as an empty answer
            raise _too_long(total_timeout)
        return body


def _fetch(
    url: str,
    session: requests.Session,
    watchdog: _Deadline,
    max_bytes: int,
    connect_timeout: float,
    read_timeout: float,
    max_redirects: int,
    allow_private: bool,
    total_timeout: float,
) -> bytes:
    deadline = watchdog.deadline
    current = url
    for hop in range(max_redirects + 1):
        target = _check(current, allow_private=allow_private, redirected=hop > 0)
        with ExitStack() as stack:
            adapter = stack.enter_context(_PinnedAdapter(target.addresses, watchdog))
            response = _send(adapter, session, target, connect_timeout, read_timeout, deadline, total_timeout)
            stack.callback(response.close)
            status = response.status_code
            if status in REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"image URL answered HTTP {status} without a Location header")
                current = urljoin(current, location)
                continue
            if status != 200:
                raise FetchError(
                    f"image URL answered HTTP {status}", retryable=status >= 500 or status == 429
                )
            return _read_body(response, max_bytes, read_timeout, deadline, total_timeout)
    raise FetchError(f"too many redirects (more than {max_redirects})")


def _check(url: str, *, allow_private: bool, redirected: bool) -> ParsedTarget:
    try:
        return check_url(url, allow_private=allow_private, resolve=True)
    except UnresolvableHost as exc:
        raise FetchError(f"image {exc.reason}", retryable=True) from exc
    except UnsafeURL as exc:
        prefix = "refused redirect" if redirected else "refused"
        raise FetchError(f"{prefix}: {exc.reason}") from exc


def _send(
    adapter: HTTPAdapter,
    session: requests.Session,
    target: ParsedTarget,
    connect_timeout: float,
    read_timeout: float,
    deadline: float,
    total_timeout: float,
) -> requests.Response:
    remaining = _remaining(deadline, total_timeout)
    headers = CaseInsensitiveDict(session.headers)
    headers["Accept"] = "image/*,*/*;q=0.8"
    headers["Accept-Encoding"] = "identity"  # no decompression bombs; images are compressed already
    request = requests.Request("GET", target.url, headers=headers).prepare()
    try:
        return adapter.send(
            request,
            stream=True,
            timeout=(min(connect_timeout, remaining), min(read_timeout, remaining)),
            verify=session.verify,
            cert=session.cert,
            proxies={},
        )
    except requests.exceptions.ConnectTimeout as exc:
        raise FetchError(
            f"image host {target.host} did not answer within {connect_timeout:g} s", retryable=True
        ) from exc
    except requests.exceptions.ReadTimeout as exc:
        raise _timeout(read_timeout, remaining, total_timeout) from exc
    except requests.exceptions.SSLError as exc:
        raise FetchError(
            f"secure connection to image host {target.host} failed ({_tls_reason(exc)})"
        ) from exc
    except requests.exceptions.ConnectionError as exc:
        raise FetchError(f"could not connect to image host {target.host}", retryable=True) from exc
    except requests.exceptions.RequestException as exc:
        raise FetchError(f"image download failed ({type(exc).__name__})") from exc


def _read_body(
    response: requests.Response, max_bytes: int, read_timeout: float, deadline: float, total_timeout: float
) -> bytes:
    too_large = FetchError(f"image is larger than the {_size(max_bytes)} limit")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    raw = response.raw
    read = getattr(raw, "read1", raw.read)
    body = bytearray()
    try:
        while chunk := read(CHUNK_SIZE, decode_content=True):
            body += chunk
            if len(body) > max_bytes:
                raise too_large
            _remaining(deadline, total_timeout)
    except ReadTimeoutError as exc:
        raise _timeout(read_timeout, deadline - time.monotonic(), total_timeout) from exc
    except (HTTPError, OSError) as exc:
        raise FetchError("image download was interrupted", retryable=True) from exc
    return bytes(body)


def _remaining(deadline: float, total_timeout: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _too_long(total_timeout)
    return remaining


def _too_long(total_timeout: float) -> FetchError:
    return FetchError(f"image download took longer than {total_timeout:g} s", retryable=True)


def _timeout(read_timeout: float, remaining: float, total_timeout: float) -> FetchError:
    if remaining < read_timeout:
        return _too_long(total_timeout)
    return FetchError(f"image download timed out after {read_timeout:g} s", retryable=True)


def _tls_reason(exc: BaseException) -> str:
    """Dig the certificate complaint out of requests' and urllib3's wrappers."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            break
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or "certificate verification failed"
        nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = getattr(current, "reason", None) or nested or current.__cause__ or current.__context__
    return "TLS handshake failed"


def _size(n: int) -> str:
    mib = 1024 * 1024
    if n >= mib:
        return f"{n // mib} MB" if n % mib == 0 else f"{n / mib:.1f} MB"
    if n >= 1024:
        return f"{n // 1024} KB" if n % 1024 == 0 else f"{n / 1024:.1f} KB"
    return f"{n} bytes"


class _Deadline:
    """Shuts down every connection of one download when its total time runs out.

    Socket timeouts bound each read, not the sum of reads: a server sending one header byte every
    few seconds never trips them, and requests parses the status line and headers before our own
    code sees a byte. A timer that shuts the socket down ends any read in progress, TLS included
    (it watches a duplicate of the raw socket, which outlives TLS wrapping).
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                self._shut(self._sockets[-1])

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _PinnedConnectionMixin:
    """Dial the checked addresses instead of resolving the host name again."""

    def __init__(
        self,
        *args: Any,
        pinned_addresses: tuple[str, ...] = (),
        deadline: _Deadline | None = None,
        **kwargs: Any,
    ) -> None:
        self._pinned_addresses = pinned_addresses
        self._deadline = deadline
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        if not self._pinned_addresses:
            raise NewConnectionError(conn, "refusing to connect: no checked address for this host")
        error: OSError | None = None
        for address in self._pinned_addresses:
            try:
                sock = create_connection(
                    (address, conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except OSError as exc:  # TimeoutError included: try the next checked address
                error = exc
                continue
            if self._deadline is not None:
                self._deadline.watch(sock)
            return sock
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from error
        raise NewConnectionError(conn, f"Failed to establish a new connection: {error}") from error


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedPoolManager(PoolManager):
    def __init__(
        self, *args: Any, pinned_addresses: tuple[str, ...], deadline: _Deadline | None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._pinned_addresses = pinned_addresses
        self._deadline = deadline

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.ConnectionCls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        pool.conn_kw = {
            **pool.conn_kw,
            "pinned_addresses": self._pinned_addresses,
            "deadline": self._deadline,
        }
        return pool


class _PinnedAdapter(HTTPAdapter):
    """A one-request adapter whose connections go to ``pinned_addresses`` only."""

    def __init__(self, pinned_addresses: tuple[str, ...], deadline: _Deadline | None = None) -> None:
        self._pinned_addresses = pinned_addresses
        self._deadline = deadline
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _PinnedPoolManager(
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            pinned_addresses=self._pinned_addresses,
            deadline=self._deadline,
            **pool_kwargs,
        )

    def __enter__(self) -> _PinnedAdapter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def post_json(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float = 5,
    read_timeout: float = 10,
    allow_private: bool = False,
) -> int:
    """POST `body` to `url` through the same SSRF guard and address pinning as `fetch`.

    Redirects are not followed (a webhook receiver answers directly). Returns the HTTP status;
    raises `FetchError` when the address is refused or the receiver cannot be reached in time.
    """
    target = _check(url, allow_private=allow_private, redirected=False)
    request = requests.Request("POST", target.url, headers=headers, data=body).prepare()
    with _PinnedAdapter(target.addresses) as adapter:
        try:
            response = adapter.send(request, timeout=(connect_timeout, read_timeout), proxies={})
        except requests.exceptions.Timeout as exc:
            raise FetchError(
                f"webhook receiver did not answer within {read_timeout:g} s", retryable=True
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise FetchError(
                f"could not reach the webhook receiver ({type(exc).__name__})", retryable=True
            ) from exc
        response.close()
        return response.status_code
