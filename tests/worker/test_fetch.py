from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import worker.fetch as fetch_module
from shared import urlguard
from worker.fetch import FetchError, fetch

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
MB = 1024 * 1024
REAL_GETADDRINFO = socket.getaddrinfo


class Handler(BaseHTTPRequestHandler):
    """Routes for every case; ``server.hits`` counts requests per path."""

    server: ImageServer

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        parts = urlsplit(self.path)
        self.server.hits[parts.path] += 1
        query = parse_qs(parts.query)
        route = parts.path.strip("/").split("/")
        name = route[0]
        if name == "ok":
            self.reply(200, IMAGE, "image/png")
        elif name == "status":
            self.reply(int(route[1]), b"nope", "text/plain")
        elif name == "echo":
            text = f"{self.headers['Host']}|{self.headers['User-Agent']}|{self.headers['Accept-Encoding']}"
            self.reply(200, text.encode(), "text/plain")
        elif name == "redirect":
            hops = int(route[1])
            self.redirect("/ok" if hops <= 1 else f"/redirect/{hops - 1}")
        elif name == "redirect-to":
            self.redirect(query["url"][0])
        elif name == "relative":
            self.redirect("./ok?from=relative", status=301)
        elif name == "no-location":
            self.send_response(302)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif name == "slow-headers":
            time.sleep(float(query.get("delay", ["2"])[0]))
            self.reply(200, IMAGE, "image/png")
        elif name == "slow-body":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            time.sleep(2)
        elif name == "drip":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        elif name == "trickle-headers":
            # A status line, then one header byte at a time: every read returns something, so no
            # read timeout ever fires; only a deadline on the whole download ends it.
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(200):
                self.wfile.write(b"X")
                self.wfile.flush()
                time.sleep(0.05)
        elif name == "huge-length":
            self.send_response(200)
            self.send_header("Content-Length", str(int(route[1]) * MB))
            self.end_headers()
        elif name == "stream":
            size = int(route[1])
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()  # no Content-Length: the body ends when the connection closes
            sent = 0
            while sent < size:
                chunk = min(64 * 1024, size - sent)
                self.wfile.write(b"y" * chunk)
                sent += chunk
        elif name == "truncated":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
        else:
            self.reply(404, b"no route", "text/plain")

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class ImageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: Counter[str] = Counter()
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return self.server_address[1]


def serve(context: ssl.SSLContext | None = None) -> Iterator[ImageServer]:
    server = ImageServer(context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server() -> Iterator[ImageServer]:
    yield from serve()


@pytest.fixture
def base(server) -> str:
    return f"http://127.0.0.1:{server.port}"


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Answer names from ``answers`` (a list is consumed one answer per lookup); IP literals resolve as usual."""
    asked: list[str] = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            asked.append(host)
            if host not in answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            queue = answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return REAL_GETADDRINFO(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


# Positive cases (127.0.0.1 needs allow_private=True).


def test_fetch_returns_the_bytes(base):
    assert fetch(f"{base}/ok", allow_private=True) == IMAGE


def test_fetch_follows_relative_redirects(base):
    assert fetch(f"{base}/relative", allow_private=True) == IMAGE


def test_fetch_follows_up_to_max_redirects(base, server):
    assert fetch(f"{base}/redirect/3", allow_private=True, max_redirects=3) == IMAGE
    assert server.hits["/ok"] == 1


def test_fetch_sends_session_headers_and_asks_for_no_compression(base):
    session = requests.Session()
    session.headers["User-Agent"] = "shopimage-test/1.0"

    body = fetch(f"{base}/echo", allow_private=True, session=session)

    assert body == f"127.0.0.1:{base.rsplit(':', 1)[1]}|shopimage-test/1.0|identity".encode()


def test_fetch_ignores_proxies_from_the_environment(base, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")

    assert fetch(f"{base}/ok", allow_private=True) == IMAGE


def test_body_exactly_at_the_cap_is_accepted(base):
    assert fetch(f"{base}/ok", allow_private=True, max_bytes=len(IMAGE)) == IMAGE


# HTTP errors.


@pytest.mark.parametrize(
    ("status", "retryable"), [(404, False), (403, False), (500, True), (503, True), (429, True)]
)
def test_http_errors_name_the_status(base, status, retryable):
    with pytest.raises(FetchError) as excinfo:
        fetch(f"{base}/status/{status}", allow_private=True)

    assert excinfo.value.message == f"image URL answered HTTP {status}"
    assert str(excinfo.value) == excinfo.value.message
    assert excinfo.value.retryable is retryable


def test_redirect_without_location(base):
    with pytest.raises(FetchError, match="HTTP 302 without a Location header"):
        fetch(f"{base}/no-location", allow_private=True)


def test_connection_refused(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(FetchError) as excinfo:
        fetch(f"http://127.0.0.1:{port}/ok", allow_private=True)

    assert excinfo.value.message == "could not connect to image host 127.0.0.1"
    assert excinfo.value.retryable


def test_unresolvable_host(monkeypatch):
    fake_dns(monkeypatch, {})

    with pytest.raises(FetchError, match=r"^image host nowhere\.test could not be resolved$"):
        fetch("http://nowhere.test/a.png")


# Time limits.


def test_slow_headers_time_out(base):
    started = time.monotonic()
    with pytest.raises(FetchError) as excinfo:
        fetch(f"{base}/slow-headers", allow_private=True, read_timeout=0.3)

    assert excinfo.value.message == "image download timed out after 0.3 s"
    assert excinfo.value.retryable
    assert time.monotonic() - started < 1.5


def test_slow_body_times_out(base):
    with pytest.raises(FetchError, match=r"^image download timed out after 0.3 s$"):
        fetch(f"{base}/slow-body", allow_private=True, read_timeout=0.3)


def test_default_read_timeout_message(base, monkeypatch):
    """The message with the default limit, without waiting 15 s: the adapter times out at once."""

    def timed_out(self, request, **kwargs):
        raise requests.exceptions.ReadTimeout("read timed out")

    monkeypatch.setattr(fetch_module._PinnedAdapter, "send", timed_out)

    with pytest.raises(FetchError, match=r"^image download timed out after 15 s$"):
        fetch(f"{base}/ok", allow_private=True)


def test_trickling_body_hits_the_total_deadline(base):
    started = time.monotonic()
    with pytest.raises(FetchError) as excinfo:
        fetch(f"{base}/drip", allow_private=True, read_timeout=2, total_timeout=0.5)

    assert excinfo.value.message == "image download took longer than 0.5 s"
    assert time.monotonic() - started < 1.5


def test_trickling_headers_hit_the_total_deadline(base):
    """The total limit runs from the first byte, not from the end of the headers."""
    started = time.monotonic()
    with pytest.raises(FetchError) as excinfo:
        fetch(f"{base}/trickle-headers", allow_private=True, read_timeout=2, total_timeout=0.5)

    assert excinfo.value.message == "image download took longer than 0.5 s"
    assert excinfo.value.retryable
    assert time.monotonic() - started < 2


def test_connect_timeout(base, monkeypatch):
    def never_connects(*args, **kwargs):
        raise TimeoutError("timed out")

    monkeypatch.setattr(fetch_module, "create_connection", never_connects)

    with pytest.raises(FetchError) as excinfo:
        fetch(f"{base}/ok", allow_private=True, connect_timeout=2)

    assert excinfo.value.message == "image host 127.0.0.1 did not answer within 2 s"
    assert excinfo.value.retryable


def test_truncated_body_is_an_error(base):
    with pytest.raises(FetchError, match="interrupted"):
        fetch(f"{base}/truncated", allow_private=True)


# Size cap.


def test_huge_content_length_is_refused_before_reading(base):
    with pytest.raises(FetchError) as excinfo:
        fetch(f"{base}/huge-length/100", allow_private=True, max_bytes=1 * MB)

    assert excinfo.value.message == "image is larger than the 1 MB limit"
    assert not excinfo.value.retryable


def test_default_cap_is_20_mb(base):
    with pytest.raises(FetchError, match=r"^image is larger than the 20 MB limit$"):
        fetch(f"{base}/huge-length/21", allow_private=True)


def test_huge_streamed_body_is_cut_off(base):
    with pytest.raises(FetchError, match=r"^image is larger than the 1 MB limit$"):
        fetch(f"{base}/stream/{3 * MB}", allow_private=True, max_bytes=1 * MB)


def test_streamed_body_under_the_cap(base):
    assert fetch(f"{base}/stream/{MB}", allow_private=True, max_bytes=2 * MB) == b"y" * MB


# Redirects.


def test_too_many_redirects(base, server):
    with pytest.raises(FetchError) as excinfo:
        fetch(f"{base}/redirect/4", allow_private=True, max_redirects=3)

    assert excinfo.value.message == "too many redirects (more than 3)"
    assert server.hits["/ok"] == 0


def test_zero_redirects_allowed(base):
    with pytest.raises(FetchError, match=r"too many redirects \(more than 0\)"):
        fetch(f"{base}/redirect/1", allow_private=True, max_redirects=0)


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("file:///etc/passwd", "only http and https URLs are allowed, not file:"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "only http and https URLs are allowed, not gopher:"),
        ("ftp://example.com/a.png", "only http and https URLs are allowed, not ftp:"),
    ],
)
def test_redirect_to_another_scheme_is_refused(base, location, reason):
    with pytest.raises(FetchError) as excinfo:
        fetch(f"{base}/redirect-to?url={location}", allow_private=True)

    assert excinfo.value.message == f"refused redirect: {reason}"


@pytest.fixture
def trust_first_hop(monkeypatch) -> list[str]:
    """Let the first hop reach the 127.0.0.1 test server; every later hop gets the real guard."""
    checked: list[str] = []
    real_check = urlguard.check_url

    def check(url, *, allow_private=False, resolve=False):
        checked.append(url)
        return real_check(url, allow_private=allow_private or len(checked) == 1, resolve=resolve)

    monkeypatch.setattr(fetch_module, "check_url", check)
    return checked


def test_redirect_to_loopback_is_refused(base, server, trust_first_hop):
    with pytest.raises(FetchError) as excinfo:
        fetch(f"{base}/redirect-to?url={base}/ok")

    assert excinfo.value.message == "refused redirect: address 127.0.0.1 is loopback"
    assert trust_first_hop == [f"{base}/redirect-to?url={base}/ok", f"{base}/ok"]
    assert server.hits["/ok"] == 0


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is link-local"),
        ("http://10.0.0.5/a.png", "address 10.0.0.5 is private"),
        ("http://2130706433/a.png", "address 127.0.0.1 is loopback"),
        ("http://[::ffff:127.0.0.1]/a.png", "address ::ffff:7f00:1 (127.0.0.1) is loopback"),
        ("http://localhost/a.png", "host localhost points to this machine"),
        ("http://internal.test/a.png", "host internal.test is not allowed"),
    ],
)
def test_redirect_into_our_network_is_refused(base, server, trust_first_hop, monkeypatch, location, reason):
    fake_dns(monkeypatch, {"internal.test": ["10.1.2.3"]})

    with pytest.raises(FetchError) as excinfo:
        fetch(f"{base}/redirect-to?url={location}")

    assert excinfo.value.message == f"refused redirect: {reason}"
    assert not excinfo.value.retryable


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/a.png", "refused: address 127.0.0.1 is loopback"),
        ("http://10.0.0.5/a.png", "refused: address 10.0.0.5 is private"),
        ("http://0x7f.1/a.png", "refused: address 127.0.0.1 is loopback"),
        ("file:///etc/passwd", "refused: only http and https URLs are allowed, not file:"),
    ],
)
def test_first_hop_is_checked(url, message):
    with pytest.raises(FetchError) as excinfo:
        fetch(url)

    assert excinfo.value.message == message


# Pinning: the connection goes to the checked address, whatever DNS says later.


def test_dns_rebinding_after_the_check_cannot_redirect_the_connection(server, monkeypatch):
    # First lookup (the check) says loopback; any later lookup would say an unroutable address.
    asked = fake_dns(monkeypatch, {"rebind.test": ["127.0.0.1", "10.255.255.1"]})

    body = fetch(f"http://rebind.test:{server.port}/echo", allow_private=True, connect_timeout=1)

    assert body.startswith(f"rebind.test:{server.port}|".encode())
    assert asked == ["rebind.test"]


def test_public_name_resolving_to_private_is_refused_before_connecting(server, monkeypatch):
    fake_dns(monkeypatch, {"images.test": ["127.0.0.1"]})

    with pytest.raises(FetchError, match=r"^refused: host images.test is not allowed$"):
        fetch(f"http://images.test:{server.port}/ok")

    assert server.hits["/ok"] == 0


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for images.test (not for 127.0.0.1)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("images.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_server(tls_files) -> Iterator[ImageServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    yield from serve(context)


def test_https_dials_the_checked_ip_but_verifies_the_host_name(tls_server, tls_files, monkeypatch):
    asked = fake_dns(monkeypatch, {"images.test": ["127.0.0.1", "10.255.255.1"]})
    session = requests.Session()
    session.verify = tls_files[0]

    body = fetch(f"https://images.test:{tls_server.port}/echo", allow_private=True, session=session)

    assert body.startswith(f"images.test:{tls_server.port}|".encode())
    assert asked == ["images.test"]


def test_https_certificate_for_another_name_is_refused(tls_server, tls_files, monkeypatch):
    fake_dns(monkeypatch, {"other.test": ["127.0.0.1"]})
    session = requests.Session()
    session.verify = tls_files[0]

    with pytest.raises(FetchError) as excinfo:
        fetch(f"https://other.test:{tls_server.port}/ok", allow_private=True, session=session)

    assert excinfo.value.message.startswith("secure connection to image host other.test failed (")
    assert "other.test" in excinfo.value.message.split("(", 1)[1]
    assert tls_server.hits["/ok"] == 0


def test_https_untrusted_certificate_is_refused(tls_server, monkeypatch):
    fake_dns(monkeypatch, {"images.test": ["127.0.0.1"]})

    with pytest.raises(FetchError, match=r"^secure connection to image host images\.test failed"):
        fetch(f"https://images.test:{tls_server.port}/ok", allow_private=True)
