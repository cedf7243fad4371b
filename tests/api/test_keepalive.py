"""Keep-alive after a refused request: the connection serves the client's next request.

Regression test for RELIABILITY.md B7: a request refused before its body was read, whose body
arrived after its headers, made the HTTP server close the connection after the answer without
saying so; the client's next request on it failed in transport. Real server (`python -m
api.serve`), raw sockets so the body can be sent late on purpose.
"""

from __future__ import annotations

import socket
import time

import pytest

BODY = b'{"type": "basic_clean", "inputImageUrl": "https://example.com/a.jpg"}'


def read_answer(conn: socket.socket) -> bytes:
    """One HTTP answer's status line and headers (its body is read and dropped); b"" if closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Type: text/plain",  # 415 before the body is parsed
        b"Content-Type: application/json\r\nAuthorization: Bearer not-a-token",  # 401 before the body
    ],
    ids=["wrong content type", "bad token"],
)
def test_the_next_request_on_the_connection_is_answered(start_live_server, headers):
    server = start_live_server()
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(
                b"POST /api/task/create HTTP/1.1\r\nHost: test\r\n%s\r\nContent-Length: %d\r\n\r\n"
                % (headers, len(BODY))
            )
            time.sleep(0.1)  # the body arrives after the headers, as over a slow network
            conn.sendall(BODY)
            first = read_answer(conn)
            assert first.split(b"\r\n")[0] in (
                b"HTTP/1.1 415 Unsupported Media Type",
                b"HTTP/1.1 401 Unauthorized",
            )
            try:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
                second = read_answer(conn)
            except (BrokenPipeError, ConnectionResetError):
                second = b""
            assert second.startswith(b"HTTP/1.1 200"), "the server dropped the keep-alive connection"
