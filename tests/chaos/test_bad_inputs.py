"""Scenario 5: a corpus of bad input (well over 100 requests) against the real web server.

Every refused request must be answered 4xx in the error envelope (never 2xx, never 5xx): malformed
JSON, wrong types, huge bodies, unicode edge cases (NUL, lone surrogates, RTL marks, astral
characters), injection strings in every field and query parameter, forged and expired tokens,
other users' ids, SSRF URLs, non-images. Inputs that can only be judged by the worker (a
truncated JPEG, a decompression bomb, a tiny image, a name resolving to a private address, an
unreachable host) are accepted (201) and must end `failed` with exactly one refund.

The stack runs with ALLOW_PRIVATE_URLS=0, as production does.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from PIL import Image

from tests.photos import png_bomb, product_photo

from .cluster import SECRET_KEY, Api, Stack
from .invariants import check_invariants

INJECTIONS = [
    "' OR '1'='1' --",
    '"; DROP TABLE tasks; --',
    "1; SELECT pg_sleep(5)",
    "{{7*7}}${7*7}<%= 7*7 %>",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "${jndi:ldap://127.0.0.1/a}",
    "%00%0d%0aSet-Cookie:x=1",
    "$(reboot)`id`",
    '{"$gt": ""}',
]
UNICODE = [
    "\u202egnp.exe",
    "𝕳𝖊𝖑𝖑𝖔🙂" * 10,
    "e\u0301\u0301\u0301\u0301",
    "\ufeff",
    "\uffff",
]
SSRF = [
    "http://127.0.0.1/a.jpg",
    "http://127.1/a.jpg",
    "http://0.0.0.0/a.jpg",
    "http://localhost:5432/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/a.jpg",
    "http://[::ffff:127.0.0.1]/a.jpg",
    "http://2130706433/a.jpg",
    "http://0x7f.1/a.jpg",
    "http://10.0.0.5/a.jpg",
    "http://192.168.1.1/a.jpg",
    "http://user:pass@127.0.0.1/a.jpg",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://example.com/a.jpg",
    "javascript:alert(1)",
    "http:///a.jpg",
    "//example.com/a.jpg",
]


def token(
    secret: str,
    sub: Any,
    *,
    kind: str = "access",
    expires: timedelta = timedelta(minutes=5),
    alg: str = "HS256",
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": sub,
        "type": kind,
        "fresh": False,
        "jti": uuid.uuid4().hex,
        "iat": now - timedelta(hours=1),
        "nbf": now - timedelta(hours=1),
        "exp": now + expires,
    }
    if alg == "none":
        return jwt.encode(claims, None, algorithm="none")
    return jwt.encode(claims, secret, algorithm=alg)


def raw(api: Api, method: str, path: str, data: bytes | str, content_type: str = "application/json", **kw):
    headers = {"Content-Type": content_type, **kw.pop("headers", {})}
    return api.request(
        method,
        path,
        data=data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data,
        headers=headers,
        **kw,
    )


def build_corpus(stack: Stack, a: Api, b: Api, a_task: str, a_id: int, refresh: str) -> list[tuple[str, Any]]:
    """(label, thunk) pairs: each thunk sends one request that must be refused with a 4xx."""
    corpus: list[tuple[str, Any]] = []
    good = {"type": "basic_clean", "inputImageUrl": "https://example.com/a.jpg", "params": {}}

    def add(label: str, thunk) -> None:
        corpus.append((label, thunk))

    # Malformed JSON and wrong content types, on every JSON endpoint.
    bodies = [
        "{",
        '{"type": ',
        "[1, 2]",
        "null",
        '"str"',
        "123",
        '{"type": "basic_clean",}',
        '{"a": NaN}',
        "\xff\xfe\x00",
        '{"type": "basic_clean"} trailing',
        "[" * 500,
        "",
        '{"a":' * 100 + "1" + "}" * 100,
    ]
    for path in ("/api/task/create", "/api/auth/login", "/api/auth/register", f"/api/task/{a_task}/status"):
        for number, body in enumerate(bodies):
            add(
                f"malformed json #{number} on {path}",
                lambda p=path, body=body: raw(a, "POST" if "status" not in p else "PUT", p, body),
            )
    add("text/plain create", lambda: raw(a, "POST", "/api/task/create", json.dumps(good), "text/plain"))
    add(
        "form create",
        lambda: raw(a, "POST", "/api/task/create", "type=basic_clean", "application/x-www-form-urlencoded"),
    )
    add("no content type", lambda: a.post("/api/task/create", data=json.dumps(good).encode()))
    add(
        "invalid utf-8 in json",
        lambda: raw(a, "POST", "/api/task/create", b'{"type": "basic_\xc3\x28clean"}'),
    )

    # Wrong types and values in every field.
    wrong = [
        {"type": 1},
        {"type": None},
        {"type": ["basic_clean"]},
        {"type": "model_pose13"},
        {"type": ""},
        {"inputImageUrl": 123},
        {"inputImageUrl": None},
        {"inputImageUrl": {}},
        {"inputImageUrl": ""},
        {"inputImageUrl": "https://example.com/" + "a" * 2100},
        {"params": "all"},
        {"params": []},
        {"params": {"template": 5}},
        {"params": {"template": "bogus"}},
        {"params": {"template": None}},
        {"params": {"unknown": 1}},
        {"extra": "field"},
        {"type": "model_pose12", "params": {"scene": "moon"}},
        {"type": "model_pose12", "params": {"category": ["dress"]}},
        {"type": "model_pose12", "params": {"productDescription": "x" * 501}},
        {"type": "model_pose12", "params": {"productDescription": {"a": 1}}},
    ]
    for change in wrong:
        add(f"wrong {change!r:.60}", lambda c=change: a.post("/api/task/create", json={**good, **c}))
    for value in INJECTIONS + UNICODE:
        add(
            f"type={value!r}",
            lambda v=value: raw(a, "POST", "/api/task/create", json.dumps({**good, "type": v})),
        )
        add(
            f"url={value!r}",
            lambda v=value: raw(a, "POST", "/api/task/create", json.dumps({**good, "inputImageUrl": v})),
        )
        add(
            f"template={value!r}",
            lambda v=value: raw(
                a, "POST", "/api/task/create", json.dumps({**good, "params": {"template": v}})
            ),
        )
        add(
            f"scene={value!r}",
            lambda v=value: raw(
                a,
                "POST",
                "/api/task/create",
                json.dumps({**good, "type": "model_pose12", "params": {"scene": v}}),
            ),
        )
        add(f"list status={value!r}", lambda v=value: a.get("/api/task/list?status=" + _quote(v)))
        add(f"list type={value!r}", lambda v=value: a.get("/api/task/list?type=" + _quote(v)))
        add(f"list limit={value!r}", lambda v=value: a.get("/api/task/list?limit=" + _quote(v)))
        add(f"task id={value!r}", lambda v=value: a.get("/api/task/" + _quote(v)))
        add(f"cancel id={value!r}", lambda v=value: a.post("/api/task/" + _quote(v) + "/cancel"))
        add(
            f"login email={value!r}",
            lambda v=value: raw(
                a, "POST", "/api/auth/login", json.dumps({"email": v, "password": v}), auth=False
            ),
        )
        add(
            f"register email={value!r}",
            lambda v=value: raw(
                a,
                "POST",
                "/api/auth/register",
                json.dumps({"email": v + "@example.com", "password": "abc12345" + v}),
                auth=False,
            ),
        )
        add(
            f"idempotency key={value!r}",
            lambda v=value: a.post(
                "/api/task/create",
                json={**good, "type": 5},
                headers={"Idempotency-Key": v.encode("utf-8", "surrogatepass").decode("latin-1")},
            ),
        )
    for limit in ("-1", "0", "101", "1e9", "abc", "99999999999999999999999", "1.5", ""):
        add(f"list limit={limit}", lambda v=limit: a.get("/api/task/list", params={"limit": v}))
    for offset in ("-5", "x", "10000001", "1e3"):
        add(f"list offset={offset}", lambda v=offset: a.get("/api/task/list", params={"offset": v}))
    add("task id too long", lambda: a.get("/api/task/" + "a" * 5000))

    # Huge bodies.
    add(
        "json body 200 KB",
        lambda: a.post("/api/task/create", json={**good, "params": {"template": "x" * 200_000}}),
    )
    add(
        "json body 30 MB",
        lambda: raw(a, "POST", "/api/task/create", b'{"a": "' + b"x" * (30 * 1024 * 1024) + b'"}'),
    )
    add(
        "upload 30 MB",
        lambda: a.post(
            "/api/uploads", files={"file": ("big.jpg", b"\xff\xd8\xff" + b"0" * (30 * 1024 * 1024))}
        ),
    )
    add(
        "idempotency key 300 chars",
        lambda: a.post("/api/task/create", json=good, headers={"Idempotency-Key": "k" * 300}),
    )
    add(
        "register password 10 KB",
        lambda: a.post(
            "/api/auth/register", json={"email": "long@example.com", "password": "a1" * 5000}, auth=False
        ),
    )

    # Tokens: forged, expired, wrong type, alg none, unknown user, malformed headers.
    forged = {
        "wrong key": token("not-the-secret-" * 4, str(a_id)),
        "expired": token(SECRET_KEY, str(a_id), expires=timedelta(seconds=-30)),
        "refresh as access": refresh,
        "alg none": token(SECRET_KEY, str(a_id), alg="none"),
        "HS512 right key": token(SECRET_KEY, str(a_id), alg="HS512"),
        "unknown user": token(SECRET_KEY, "999999"),
        "non-numeric sub": token(SECRET_KEY, "abc"),
        "negative sub": token(SECRET_KEY, "-1"),
        "sub injection": token(SECRET_KEY, "1 OR 1=1"),
        "sub NUL": token(SECRET_KEY, "1\u0000"),
        "garbage": "x.y.z",
        "empty": "",
    }
    for label, value in forged.items():
        for method, path in (
            ("GET", "/api/auth/me"),
            ("POST", "/api/task/create"),
            ("GET", f"/api/task/{a_task}"),
        ):
            add(
                f"token {label} {method} {path}",
                lambda m=method, p=path, v=value: a.request(
                    m, p, json=good, headers={"Authorization": f"Bearer {v}"}, auth=False
                ),
            )
    add(
        "Basic auth",
        lambda: a.request("GET", "/api/auth/me", headers={"Authorization": "Basic YTpi"}, auth=False),
    )
    add("no auth create", lambda: a.request("POST", "/api/task/create", json=good, auth=False))

    # Another user's ids.
    for method, suffix in (("GET", ""), ("POST", "/cancel"), ("POST", "/retry"), ("GET", "/download")):
        add(
            f"other user's task {method} {suffix}",
            lambda m=method, s=suffix: b.request(m, f"/api/task/{a_task}{s}"),
        )
    add(
        "status update without service token",
        lambda: b.request("PUT", f"/api/task/{a_task}/status", json={"status": "failed"}),
    )
    add(
        "status update forged service token",
        lambda: b.request(
            "PUT",
            f"/api/task/{a_task}/status",
            json={"status": "failed"},
            headers={"X-Service-Token": "guess"},
        ),
    )
    add(
        "other user's upload as input",
        lambda: b.post("/api/task/create", json={**good, "inputImageUrl": stack.a_upload}),
    )
    add("tampered file signature", lambda: a.get(_path(stack.a_upload).replace("sig=", "sig=0"), auth=False))
    add(
        "file traversal", lambda: a.get("/files/..%2F..%2Fetc%2Fpasswd?expires=9999999999&sig=00", auth=False)
    )

    # SSRF URLs at create.
    for url in SSRF:
        add(f"ssrf {url}", lambda u=url: a.post("/api/task/create", json={**good, "inputImageUrl": u}))

    # Non-images at upload.
    for name, data in {
        "text": b"hello, not an image" * 10,
        "html": b"<html><body>x</body></html>",
        "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
        "empty": b"",
        "svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        "zip": b"PK\x03\x04" + b"\x00" * 100,
        "ico": b"\x00\x00\x01\x00" + b"\x00" * 60,
        "heic": b"\x00\x00\x00\x18ftypheic" + b"\x00" * 60,
    }.items():
        add(
            f"upload non-image {name}",
            lambda n=name, d=data: a.post("/api/uploads", files={"file": (f"{n}.jpg", d)}),
        )
    add("upload without file", lambda: a.post("/api/uploads", data={"x": "1"}))

    # Wrong methods, unknown endpoints, state conflicts.
    add("GET create", lambda: a.get("/api/task/create"))
    add("DELETE task", lambda: a.request("DELETE", f"/api/task/{a_task}"))
    add("unknown endpoint", lambda: a.get("/api/nope"))
    add(
        "register duplicate",
        lambda: a.post(
            "/api/auth/register", json={"email": "bad-a@example.com", "password": "abc12345"}, auth=False
        ),
    )
    add(
        "register bad password",
        lambda: a.post(
            "/api/auth/register", json={"email": "new@example.com", "password": "short"}, auth=False
        ),
    )
    add(
        "login wrong password",
        lambda: a.post(
            "/api/auth/login", json={"email": "bad-a@example.com", "password": "wrong123"}, auth=False
        ),
    )
    add("retry a task that did not fail", lambda: a.post(f"/api/task/{stack.a_pending}/retry"))
    add(
        "idempotency key reused with another body",
        lambda: a.post(
            "/api/task/create",
            json={**good, "inputImageUrl": stack.a_upload, "params": {"template": "matting"}},
            headers={"Idempotency-Key": "fixed-key"},
        ),
    )
    return corpus


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 80), "red").save(out, "GIF")
    return out.getvalue()


def _tiny() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(out, "PNG")
    return out.getvalue()


def test_bad_input_corpus(make_stack, figures):
    stack = make_stack(
        standin={"render_seconds": 0.5},
        ALLOW_PRIVATE_URLS="0",
        TASK_TIMEOUT_SECONDS="180",
        FETCH_CONNECT_TIMEOUT="2",
        FETCH_READ_TIMEOUT="2",
        FETCH_TOTAL_TIMEOUT="5",
    )
    stack.start_web()
    stack.start_workers(WORKER_PRELOAD="0", WORKER_PROCESSES="1")
    tokens = stack.create_users({"bad-a@example.com": 60, "bad-b@example.com": 5})
    a, b = stack.api(tokens["bad-a@example.com"]), stack.api(tokens["bad-b@example.com"])
    login = a.post(
        "/api/auth/login", json={"email": "bad-a@example.com", "password": "chaos-pass-123"}, auth=False
    )
    refresh = login.json()["data"]["refreshToken"]
    photo = product_photo(300, 300)
    stack.a_upload = a.upload(photo)

    # A decompression bomb is refused at upload: its header is read, its pixels never decoded.
    bomb = a.post("/api/uploads", files={"file": ("bomb.png", png_bomb())})
    assert bomb.status_code == 400 and bomb.json()["code"] == 4001, bomb.text
    assert "pixels" in bomb.json()["message"]
    # Accepted inputs that only the worker can judge: each must end failed, refunded once.
    accepted_urls = {
        "truncated jpeg": a.upload(photo[: len(photo) // 3]),
        "tiny png": a.upload(_tiny(), "tiny.png"),
        "private by DNS": f"http://{socket.gethostname()}:9/a.jpg",
        "unreachable host": "http://nonexistent.invalid/a.jpg",
        "idn host": "http://例子.测试/a.jpg",
    }
    accepted = {}
    for label, url in accepted_urls.items():
        response = a.post(
            "/api/task/create",
            json={"type": "basic_clean", "inputImageUrl": url},
            headers={"Idempotency-Key": "fixed-key"} if label == "truncated jpeg" else None,
        )
        assert response.status_code == 201, (label, response.text)
        accepted[label] = response.json()["data"]["taskId"]
    for value in [*INJECTIONS, "🙂" * 100, "\u202e\u0301"]:
        response = a.post(
            "/api/task/create",
            json={
                "type": "model_pose12",
                "inputImageUrl": accepted_urls["truncated jpeg"],
                "params": {"productDescription": value},
            },
        )
        assert response.status_code == 201, (value, response.text)
        accepted[f"model desc {value!r}"] = response.json()["data"]["taskId"]
    a_task = accepted["tiny png"]
    # A task that does not fail, to retry (409): a good photo, created outside the corpus.
    stack.a_pending = a.create_id("basic_clean", stack.a_upload, {"template": "matting"})
    a_id = stack.users["bad-a@example.com"]

    corpus = build_corpus(stack, a, b, a_task, a_id, refresh)
    assert len(corpus) >= 100
    wrong: list[str] = []
    started = time.monotonic()
    for label, thunk in corpus:
        # The HTTP server itself refuses a header with control characters (400, before the app, so
        # not in our envelope); an over-long task id reaches the app (404 in the envelope).
        protocol = label.startswith(("idempotency key=", "task id too long"))
        stack.recorder.phase = "http-protocol" if protocol else "corpus"
        response = thunk()
        body = None
        with contextlib.suppress(ValueError):
            body = response.json()
        envelope = (
            isinstance(body, dict) and body.get("success") is False and isinstance(body.get("code"), int)
        )
        if not (400 <= response.status_code < 500 and (envelope or protocol)):
            wrong.append(f"{label}: {response.status_code} {response.text[:200]!r}")
    corpus_seconds = time.monotonic() - started
    stack.recorder.phase = "normal"
    protocol_answers = [x for x in stack.recorder.answers if x.phase == "http-protocol"]
    stack.recorder.answers = [x for x in stack.recorder.answers if x.phase != "http-protocol"]

    figures(
        "5_bad_inputs",
        {"corpus_requests": len(corpus), "refused_wrongly": len(wrong), "wrong_answers": wrong[:80]},
    )
    assert not wrong, (
        f"{len(wrong)} of {len(corpus)} bad requests not answered 4xx in the envelope:\n" + "\n".join(wrong)
    )
    outcome = check_invariants(stack, timeout=240)
    ended = dict(stack.query("SELECT id, status FROM tasks"))
    not_failed = {label: ended[t] for label, t in accepted.items() if ended[t] != "failed"}
    quota_a = a.get("/api/quota").json()["data"]["quota"]
    figures(
        "5_bad_inputs",
        {
            "corpus_requests": len(corpus),
            "corpus_seconds": round(corpus_seconds, 1),
            "refused_wrongly": len(wrong),
            "accepted_bad_inputs": len(accepted),
            "accepted_not_failed": not_failed,
            "protocol_refusals": sorted({x.status for x in protocol_answers}),
            "quota_a_end": quota_a,
            **outcome.as_dict(),
        },
    )
    assert set(not_failed) <= set(), not_failed
    assert quota_a == 60 - 1, (
        "every created bad task refunded: the balance is the grant minus the one good task"
    )


# Inputs that once crashed the API with a 500 (docs/RELIABILITY.md, B1 and B2): now 400/404.
ONCE_500 = [
    ("deeply nested JSON array on create", "POST", "/api/task/create", "[" * 50_000),
    ("deeply nested JSON object on login", "POST", "/api/auth/login", '{"a":' * 20_000 + "1" + "}" * 20_000),
    ("deeply nested JSON on register", "POST", "/api/auth/register", "[" * 50_000),
    # Valid JSON, 500 levels: parses, then api/body.py::_has_nul recurses 2 frames per level.
    ("JSON object nested 500 deep on create", "POST", "/api/task/create", '{"a":' * 500 + "1" + "}" * 500),
    ("JSON object nested 500 deep on login", "POST", "/api/auth/login", '{"a":' * 500 + "1" + "}" * 500),
    ("NUL in login email", "POST", "/api/auth/login", json.dumps({"email": "a\u0000b", "password": "x"})),
    (
        "lone surrogate in login email",
        "POST",
        "/api/auth/login",
        json.dumps({"email": "\ud800", "password": "x"}),
    ),
    (
        "NUL in register email",
        "POST",
        "/api/auth/register",
        json.dumps({"email": "a\u0000b@example.com", "password": "abc12345"}),
    ),
    ("NUL in task id (detail)", "GET", "/api/task/a%00b", None),
    ("NUL in task id (cancel)", "POST", "/api/task/%00/cancel", None),
]


def test_inputs_that_once_caused_500s_are_client_errors(make_stack, figures):
    stack = make_stack()
    stack.start_web()
    token = stack.create_users({"k@example.com": 1})["k@example.com"]
    api = stack.api(token)
    answers = {}
    for label, method, path, body in ONCE_500:
        response = raw(api, method, path, body) if body is not None else api.request(method, path)
        answers[label] = response.status_code
    figures("5_once_500s", {"answers": answers})
    assert all(400 <= status < 500 for status in answers.values()), answers
