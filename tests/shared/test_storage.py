from __future__ import annotations

import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from shared.storage import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    Storage,
    StorageError,
    check_key,
    sign,
    storage_from_settings,
    verify_signature,
)
from tests.s3_fixtures import make_s3_storage, moto_endpoint, s3_bucket  # noqa: F401

SECRET = "test-signing-secret"
BASE_URL = "https://shop.example.com"
COS_BUCKET = "examplebucket-1250000000"
COS_REGION = "ap-guangzhou"
COS_ENDPOINT = f"https://cos.{COS_REGION}.myqcloud.com"

BAD_KEYS = [
    "",
    "../etc/passwd",
    "tasks/../../secret",
    "tasks/./a.png",
    "/etc/passwd",
    "tasks//a.png",
    "tasks/a.png/",
    "tasks\\a.png",
    "tasks/a\x00.png",
    "tasks/a\n.png",
    "x" * 1025,
]


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def cos_storage(**overrides: object) -> S3Storage:
    """An S3Storage configured like production; building it and presigning make no request."""
    options: dict[str, object] = {
        "region": COS_REGION,
        "endpoint_url": COS_ENDPOINT,
        "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": "secret",
        **overrides,
    }
    return S3Storage(COS_BUCKET, **options)  # type: ignore[arg-type]


@pytest.fixture
def local_storage(tmp_path) -> LocalStorage:
    return LocalStorage(str(tmp_path / "storage"), BASE_URL, SECRET)


@pytest.fixture
def s3_storage(moto_endpoint, s3_bucket) -> S3Storage:  # noqa: F811
    return make_s3_storage(moto_endpoint, s3_bucket)


@pytest.fixture(params=["local", "s3"])
def storage(request) -> Storage:
    return request.getfixturevalue(f"{request.param}_storage")


# The contract both backends keep.


def test_storage_satisfies_the_protocol(storage):
    assert isinstance(storage, Storage)


def test_put_then_get_returns_the_bytes(storage):
    storage.put("tasks/t1/matting.png", b"\x89PNG data", "image/png")

    assert storage.get("tasks/t1/matting.png") == b"\x89PNG data"


def test_put_overwrites(storage):
    storage.put("uploads/u1/a.png", b"old", "image/png")
    storage.put("uploads/u1/a.png", b"new", "image/png")

    assert storage.get("uploads/u1/a.png") == b"new"


def test_exists_tracks_put_and_delete(storage):
    assert not storage.exists("tasks/t2/white-bg.png")
    storage.put("tasks/t2/white-bg.png", b"img", "image/png")
    assert storage.exists("tasks/t2/white-bg.png")

    storage.delete("tasks/t2/white-bg.png")

    assert not storage.exists("tasks/t2/white-bg.png")
    with pytest.raises(ObjectNotFound):
        storage.get("tasks/t2/white-bg.png")


def test_get_missing_raises_object_not_found(storage):
    with pytest.raises(ObjectNotFound) as excinfo:
        storage.get("tasks/none/enhanced.png")

    assert excinfo.value.key == "tasks/none/enhanced.png"
    assert isinstance(excinfo.value, StorageError)


def test_delete_missing_is_not_an_error(storage):
    storage.delete("tasks/none/enhanced.png")


def test_empty_object_round_trips(storage):
    storage.put("tasks/t3/empty.bin", b"", "application/octet-stream")

    assert storage.exists("tasks/t3/empty.bin")
    assert storage.get("tasks/t3/empty.bin") == b""


def test_url_round_trips_through_key_from_url(storage):
    key = "uploads/user 7/商品 #1?.png"
    storage.put(key, b"img", "image/png")

    url = storage.url(key, expires_in=300)

    assert url.startswith(("http://", "https://"))
    assert storage.key_from_url(url) == key


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/files/tasks/t1/a.png",
        "https://cdn.other.com/tasks/t1/a.png",
        "ftp://shop.example.com/files/a.png",
        "not a url at all",
        "",
        "http://[::1/broken",
    ],
)
def test_key_from_url_ignores_foreign_urls(storage, url):
    assert storage.key_from_url(url) is None


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused(storage, key):
    with pytest.raises(InvalidKey):
        storage.put(key, b"x", "image/png")
    with pytest.raises(InvalidKey):
        storage.get(key)
    with pytest.raises(InvalidKey):
        storage.url(key, expires_in=60)


def test_url_needs_a_positive_lifetime(storage):
    with pytest.raises(ValueError):
        storage.url("tasks/t1/a.png", expires_in=0)


# Keys.


@pytest.mark.parametrize(
    "key",
    ["tasks/123/matting.png", "uploads/u-1/9f1c.png", "a", "dir/.hidden", "dir/..dots..", "名字/图.png"],
)
def test_check_key_accepts_relative_paths(key):
    assert check_key(key) == key


@pytest.mark.parametrize("key", [*BAD_KEYS, None, 5])
def test_check_key_refuses_unsafe_paths(key):
    with pytest.raises(InvalidKey):
        check_key(key)


# Local backend.


def test_local_files_live_under_the_root(local_storage):
    local_storage.put("tasks/t1/matting.png", b"data", "image/png")

    path = os.path.join(local_storage.root, "tasks", "t1", "matting.png")
    assert local_storage.path("tasks/t1/matting.png") == path
    with open(path, "rb") as fh:
        assert fh.read() == b"data"


def test_local_put_leaves_no_temporary_files(local_storage):
    local_storage.put("tasks/t1/a.png", b"one", "image/png")
    local_storage.put("tasks/t1/a.png", b"two", "image/png")

    assert os.listdir(os.path.join(local_storage.root, "tasks", "t1")) == ["a.png"]


def test_local_put_failure_keeps_the_old_file(local_storage, monkeypatch):
    local_storage.put("tasks/t1/a.png", b"old", "image/png")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StorageError, match="disk full"):
        local_storage.put("tasks/t1/a.png", b"new", "image/png")
    monkeypatch.undo()

    assert local_storage.get("tasks/t1/a.png") == b"old"
    assert os.listdir(os.path.join(local_storage.root, "tasks", "t1")) == ["a.png"]


def test_local_symlink_out_of_the_root_is_refused(local_storage, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    os.symlink(outside, os.path.join(local_storage.root, "link"))

    with pytest.raises(InvalidKey):
        local_storage.get("link/secret.txt")


def test_local_directory_is_not_an_object(local_storage):
    local_storage.put("tasks/t1/a.png", b"x", "image/png")

    assert not local_storage.exists("tasks/t1")
    with pytest.raises(ObjectNotFound):
        local_storage.get("tasks/t1")


def test_local_needs_a_secret(tmp_path):
    with pytest.raises(ValueError):
        LocalStorage(str(tmp_path), BASE_URL, "")


def signed_parts(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return parts.path, query["expires"][0], query["sig"][0]


def test_local_url_is_signed_and_verifies(local_storage):
    before = int(time.time())
    url = local_storage.url("tasks/t1/a.png", expires_in=600)

    path, expires, sig = signed_parts(url)
    assert url.startswith(f"{BASE_URL}/files/tasks/t1/a.png?")
    assert path == "/files/tasks/t1/a.png"
    assert before + 600 <= int(expires) <= int(time.time()) + 600
    assert sig == sign(SECRET, "tasks/t1/a.png", int(expires))
    assert verify_signature(SECRET, "tasks/t1/a.png", expires, sig)


def test_local_signature_expires(local_storage):
    _, expires, sig = signed_parts(local_storage.url("tasks/t1/a.png", expires_in=60))

    assert verify_signature(SECRET, "tasks/t1/a.png", expires, sig, now=int(expires))
    assert not verify_signature(SECRET, "tasks/t1/a.png", expires, sig, now=int(expires) + 1)


def test_local_signature_refuses_tampering(local_storage):
    _, expires, sig = signed_parts(local_storage.url("tasks/t1/a.png", expires_in=60))
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]

    assert not verify_signature(SECRET, "tasks/t1/a.png", expires, flipped)
    assert not verify_signature(SECRET, "tasks/t1/a.png", str(int(expires) + 3600), sig)
    assert not verify_signature(SECRET, "tasks/t2/a.png", expires, sig)
    assert not verify_signature("other-secret", "tasks/t1/a.png", expires, sig)
    assert not verify_signature("", "tasks/t1/a.png", expires, sig)


@pytest.mark.parametrize(
    ("key", "expires", "sig"),
    [
        ("tasks/t1/a.png", "soon", "ab"),
        ("tasks/t1/a.png", None, "ab"),
        ("tasks/t1/a.png", "9999999999", ""),
        ("tasks/t1/a.png", "9999999999", "é" * 64),
        ("../a.png", "9999999999", "ab"),
    ],
)
def test_local_signature_refuses_garbage(key, expires, sig):
    assert not verify_signature(SECRET, key, expires, sig)


def test_local_key_from_url_accepts_path_only_urls(local_storage):
    assert local_storage.key_from_url("/files/tasks/t1/a.png?expires=1&sig=x") == "tasks/t1/a.png"
    assert local_storage.key_from_url("/files/uploads/u%201/a.png") == "uploads/u 1/a.png"
    assert local_storage.key_from_url("/other/tasks/t1/a.png") is None
    assert local_storage.key_from_url("/files/../secret") is None
    assert local_storage.key_from_url("/files/a%2F..%2F..%2Fsecret") is None
    assert local_storage.key_from_url("/files/") is None


def test_local_key_from_url_matches_the_origin_exactly(local_storage):
    assert local_storage.key_from_url("https://SHOP.example.com:443/files/a.png") == "a.png"
    assert local_storage.key_from_url("http://shop.example.com/files/a.png") is None
    assert local_storage.key_from_url("https://shop.example.com:8443/files/a.png") is None
    assert local_storage.key_from_url("https://shop.example.com.evil.com/files/a.png") is None


def test_local_public_base_url_with_a_path(tmp_path):
    storage = LocalStorage(str(tmp_path), "http://localhost:5000/api/", SECRET)

    url = storage.url("tasks/t1/a.png", expires_in=60)

    assert url.startswith("http://localhost:5000/api/files/tasks/t1/a.png?expires=")
    assert storage.key_from_url(url) == "tasks/t1/a.png"
    assert storage.key_from_url("/api/files/tasks/t1/a.png") == "tasks/t1/a.png"
    assert storage.key_from_url("http://localhost:5000/files/tasks/t1/a.png") is None


# S3 backend against the moto server.


def test_s3_client_defaults_suit_cos():
    config = cos_storage().client.meta.config

    assert config.s3["addressing_style"] == "virtual"
    assert config.signature_version == "s3v4"
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    # botocore reads retries={"max_attempts": 3} as three retries after the first try.
    assert config.retries == {"total_max_attempts": 4, "mode": "standard"}
    assert config.connect_timeout == 5
    assert config.read_timeout == 60


def test_s3_signature_version_is_configurable():
    assert cos_storage(signature_version="s3").client.meta.config.signature_version == "s3"


def test_s3_refuses_unknown_addressing_style():
    with pytest.raises(ValueError):
        cos_storage(addressing_style="sideways")


def test_s3_presigned_url_on_cos_is_virtual_hosted():
    storage = cos_storage()

    url = storage.url("tasks/t1/matting.png", expires_in=600)

    assert url.startswith(f"https://{COS_BUCKET}.cos.{COS_REGION}.myqcloud.com/tasks/t1/matting.png?")
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=600" in url
    assert storage.key_from_url(url) == "tasks/t1/matting.png"


@pytest.mark.parametrize(
    "url",
    [
        f"https://{COS_BUCKET}.cos.{COS_REGION}.myqcloud.com/tasks/t1/a.png",
        f"https://cos.{COS_REGION}.myqcloud.com/{COS_BUCKET}/tasks/t1/a.png",
        f"https://{COS_BUCKET}.cos.{COS_REGION}.myqcloud.com/tasks/t1/a.png?sign=whatever",
        "https://img.example.com/tasks/t1/a.png",
    ],
)
def test_s3_key_from_url_recognises_cos_forms(url):
    assert cos_storage(public_base_url="https://img.example.com/").key_from_url(url) == "tasks/t1/a.png"


@pytest.mark.parametrize(
    "url",
    [
        f"https://otherbucket-1250000000.cos.{COS_REGION}.myqcloud.com/tasks/t1/a.png",
        f"https://{COS_BUCKET}.cos.ap-shanghai.myqcloud.com/tasks/t1/a.png",
        f"https://cos.{COS_REGION}.myqcloud.com/otherbucket-1250000000/tasks/t1/a.png",
        f"https://{COS_BUCKET}.cos.{COS_REGION}.myqcloud.com/",
        f"https://{COS_BUCKET}.cos.{COS_REGION}.myqcloud.com/tasks/../a.png",
        "https://img.example.com.evil.com/tasks/t1/a.png",
    ],
)
def test_s3_key_from_url_refuses_other_buckets_and_hosts(url):
    assert cos_storage(public_base_url="https://img.example.com").key_from_url(url) is None


def test_s3_public_base_url_wins_over_presigning():
    storage = cos_storage(public_base_url="https://img.example.com/", key_prefix="prod")

    url = storage.url("tasks/t1/a b.png", expires_in=60)

    assert url == "https://img.example.com/prod/tasks/t1/a%20b.png"
    assert storage.key_from_url(url) == "tasks/t1/a b.png"


def test_s3_unsigned_object_url_when_presign_is_off():
    assert (
        cos_storage(presign=False).url("tasks/t1/a.png", expires_in=60)
        == f"https://{COS_BUCKET}.cos.{COS_REGION}.myqcloud.com/tasks/t1/a.png"
    )
    assert (
        cos_storage(presign=False, addressing_style="path").url("tasks/t1/a.png", expires_in=60)
        == f"{COS_ENDPOINT}/{COS_BUCKET}/tasks/t1/a.png"
    )


def test_s3_presigned_url_downloads_the_bytes(s3_storage):
    s3_storage.put("tasks/t1/result.png", b"\x89PNG result", "image/png")

    url = s3_storage.url("tasks/t1/result.png", expires_in=60)
    response = http().get(url, timeout=10)

    assert response.status_code == 200
    assert response.content == b"\x89PNG result"
    assert response.headers["Content-Type"] == "image/png"


def test_s3_unsigned_path_style_url_is_recognised(s3_storage, moto_endpoint, s3_bucket):  # noqa: F811
    assert s3_storage.key_from_url(f"{moto_endpoint}/{s3_bucket}/tasks/t1/a.png") == "tasks/t1/a.png"
    assert s3_storage.key_from_url(f"{moto_endpoint}/other-bucket/tasks/t1/a.png") is None


def test_s3_key_prefix_places_objects_in_a_folder(moto_endpoint, s3_bucket):  # noqa: F811
    storage = make_s3_storage(moto_endpoint, s3_bucket, key_prefix="/shopimage/")

    storage.put("tasks/t1/a.png", b"x", "image/png")

    listed = storage.client.list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["shopimage/tasks/t1/a.png"]
    url = storage.url("tasks/t1/a.png", expires_in=60)
    assert storage.key_from_url(url) == "tasks/t1/a.png"
    assert storage.key_from_url(f"{moto_endpoint}/{s3_bucket}/tasks/t1/a.png") is None


def record_requests(storage: S3Storage) -> list[tuple[str, str, dict[str, str]]]:
    sent: list[tuple[str, str, dict[str, str]]] = []

    def remember(request, **_kwargs):
        sent.append((request.method, request.url, {k.lower(): v for k, v in request.headers.items()}))

    storage.client.meta.events.register("before-send.s3", remember)
    return sent


def test_s3_multipart_upload_without_checksum_headers(s3_storage, s3_bucket):  # noqa: F811
    sent = record_requests(s3_storage)
    data = os.urandom(9 * 1024 * 1024)

    s3_storage.put("uploads/u1/large.png", data, "image/png")

    assert s3_storage.get("uploads/u1/large.png") == data
    etag = s3_storage.client.head_object(Bucket=s3_bucket, Key="uploads/u1/large.png")["ETag"]
    assert etag.strip('"').endswith("-2")
    part_uploads = [headers for method, url, headers in sent if method == "PUT" and "uploadId=" in url]
    assert len(part_uploads) == 2
    for _method, _url, headers in sent:
        assert not [name for name in headers if "checksum" in name]
    for headers in part_uploads:
        assert "content-length" in headers
        assert "transfer-encoding" not in headers


def test_s3_single_put_sends_no_checksum_headers(s3_storage):
    sent = record_requests(s3_storage)

    s3_storage.put("tasks/t1/a.png", b"small", "image/png")

    assert [(method, headers.get("content-length")) for method, _url, headers in sent] == [("PUT", "5")]
    assert not [name for name in sent[0][2] if "checksum" in name]


def test_s3_deletes_one_key_at_a_time(s3_storage):
    s3_storage.put("tasks/t1/a.png", b"x", "image/png")
    operations: list[str] = []
    s3_storage.client.meta.events.register(
        "before-call.s3", lambda model, **_kw: operations.append(model.name)
    )

    s3_storage.delete("tasks/t1/a.png")

    assert operations == ["DeleteObject"]


def test_s3_missing_bucket_is_a_storage_error_not_a_missing_object(moto_endpoint):  # noqa: F811
    storage = make_s3_storage(moto_endpoint, "no-such-bucket-here")

    with pytest.raises(StorageError) as excinfo:
        storage.get("tasks/t1/a.png")

    assert not isinstance(excinfo.value, ObjectNotFound)


# Factory.


def test_factory_defaults_to_local(tmp_path):
    storage = storage_from_settings(
        {"STORAGE_LOCAL_ROOT": str(tmp_path), "STORAGE_SIGNING_SECRET": SECRET, "PUBLIC_BASE_URL": BASE_URL}
    )

    assert isinstance(storage, LocalStorage)
    assert storage.root == os.path.realpath(tmp_path)
    assert storage.url("a.png", expires_in=60).startswith(f"{BASE_URL}/files/a.png?")


def test_factory_local_needs_a_secret(tmp_path):
    with pytest.raises(ValueError, match="STORAGE_SIGNING_SECRET"):
        storage_from_settings({"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(tmp_path)})


def test_factory_builds_s3_for_cos():
    storage = storage_from_settings(
        {
            "STORAGE_BACKEND": "S3",
            "S3_BUCKET": COS_BUCKET,
            "S3_REGION": COS_REGION,
            "S3_ENDPOINT_URL": COS_ENDPOINT,
            "S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "S3_SECRET_ACCESS_KEY": "secret",
            "S3_ADDRESSING_STYLE": "",
            "S3_SIGNATURE_VERSION": "",
            "S3_PUBLIC_BASE_URL": "https://img.example.com",
            "S3_PRESIGN": "false",
        }
    )

    assert isinstance(storage, S3Storage)
    assert storage.bucket == COS_BUCKET
    assert storage.client.meta.endpoint_url == COS_ENDPOINT
    assert storage.client.meta.config.s3["addressing_style"] == "virtual"
    assert storage.client.meta.config.signature_version == "s3v4"
    assert storage.presign is False
    assert storage.url("a.png", expires_in=60) == "https://img.example.com/a.png"


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("1", True), ("yes", True), ("0", False), (False, False)]
)
def test_factory_reads_the_presign_flag(value, expected):
    settings = {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": COS_BUCKET,
        "S3_REGION": COS_REGION,
        "S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "S3_SECRET_ACCESS_KEY": "secret",
        "S3_PRESIGN": value,
    }

    assert storage_from_settings(settings).presign is expected


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"STORAGE_BACKEND": "s3"}, "S3_BUCKET"),
        ({"STORAGE_BACKEND": "s3", "S3_BUCKET": "b", "S3_REGION": "r", "S3_ACCESS_KEY_ID": "k"}, "S3_SECRET"),
        (
            {
                "STORAGE_BACKEND": "s3",
                "S3_BUCKET": "b",
                "S3_REGION": "r",
                "S3_ACCESS_KEY_ID": "k",
                "S3_SECRET_ACCESS_KEY": "s",
                "S3_PRESIGN": "maybe",
            },
            "S3_PRESIGN",
        ),
        ({"STORAGE_BACKEND": "gcs"}, "STORAGE_BACKEND"),
    ],
)
def test_factory_fails_fast_on_bad_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        storage_from_settings(settings)


def test_list_keys_lists_one_folder_and_discard_empties_it(storage):
    from shared import results

    storage.put("tasks/t1/a1/matting.png", b"one", "image/png")
    storage.put("tasks/t1/b2/enhanced.png", b"two", "image/png")
    storage.put("tasks/t10/c3/matting.png", b"other task", "image/png")

    assert storage.list_keys("tasks/t1/") == ["tasks/t1/a1/matting.png", "tasks/t1/b2/enhanced.png"]
    assert storage.list_keys("tasks/none/") == []
    assert results.discard(storage, "t1") == 2
    assert storage.list_keys("tasks/t1/") == []
    assert storage.list_keys("tasks/t10/") == ["tasks/t10/c3/matting.png"]


def test_result_keys_are_not_predictable():
    from shared import results

    first, second = results.result_key("t1", "matting.png"), results.result_key("t1", "matting.png")
    assert first != second
    assert first.startswith("tasks/t1/") and first.endswith("/matting.png")
    assert len(first.split("/")[2]) == 16
