"""Where uploaded inputs and result images live: local disk by default, S3-compatible storage
(Tencent COS) in production. Both backends speak the small ``Storage`` protocol.

Keys are relative, slash-separated paths such as ``tasks/<id>/matting.png`` or
``uploads/<user>/<uuid>.png``. ``url()`` turns a key into a link a browser can open and
``key_from_url()`` recognises those links again, so the worker reads our own objects directly.
``key_from_url`` does not check who may read a key: callers that accept URLs from users must
check that the key belongs to that user (for example that it starts with ``uploads/<user>/``).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import tempfile
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, Protocol, runtime_checkable
from urllib.parse import SplitResult, quote, unquote, urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

MAX_KEY_LENGTH = 1024
"""Longest key in UTF-8 bytes (the S3 limit), prefix included."""

MULTIPART_THRESHOLD = 8 * 1024 * 1024
"""Uploads from this size on go up in parts of this size."""

ADDRESSING_STYLES = ("virtual", "path", "auto")
"""botocore's S3 addressing styles; COS needs ``virtual`` for buckets made after 2024-01-01."""

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class StorageError(Exception):
    """The storage backend failed (I/O error, refused credentials, unreachable endpoint)."""


class ObjectNotFound(StorageError):
    """No object under this key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no stored object at {key!r}")
        self.key = key


class InvalidKey(StorageError, ValueError):
    """The key could escape the storage root or would not survive a round trip through a URL."""


@runtime_checkable
class Storage(Protocol):
    """What the API and the worker need from object storage."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def url(self, key: str, *, expires_in: int) -> str: ...

    def key_from_url(self, url: str) -> str | None: ...


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative path, else raise ``InvalidKey``."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("storage key must be a non-empty string")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidKey("storage key is not valid text") from exc
    if size > MAX_KEY_LENGTH:
        raise InvalidKey(f"storage key is longer than {MAX_KEY_LENGTH} bytes")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise InvalidKey("storage key contains a NUL or control character")
    if "\\" in key:
        raise InvalidKey("storage key contains a backslash")
    if key.startswith("/"):
        raise InvalidKey("storage key must be relative, not start with '/'")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKey("storage key has an empty, '.' or '..' path segment")
    return key


def sign(secret: str, key: str, expires: int) -> str:
    """HMAC-SHA256 (hex) of ``key + "\\n" + expires``: the ``sig`` of a local file URL."""
    message = f"{key}\n{int(expires)}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_signature(secret: str, key: str, expires: int | str, sig: str, now: float | None = None) -> bool:
    """True if ``sig`` was made by ``LocalStorage.url`` for ``key`` and has not expired yet.

    Called by the API's file route with the ``expires`` and ``sig`` query values as given.
    """
    if not secret or not isinstance(sig, str) or not sig.isascii():
        return False
    try:
        expires_at = int(expires)
        check_key(key)
    except (TypeError, ValueError):
        return False
    if (time.time() if now is None else now) > expires_at:
        return False
    return hmac.compare_digest(sign(secret, key, expires_at), sig.lower())


class LocalStorage:
    """Files under ``root``, served by the API at ``<public_base_url>/files/<key>?expires=..&sig=..``."""

    def __init__(self, root: str, public_base_url: str, secret: str) -> None:
        if not secret:
            raise ValueError("LocalStorage needs a signing secret")
        self.root = os.path.realpath(root)
        self.public_base_url = public_base_url.rstrip("/")
        self._secret = secret
        os.makedirs(self.root, exist_ok=True)

    def path(self, key: str) -> str:
        """Filesystem path of ``key`` (for the API's file route to stream it)."""
        path = os.path.join(self.root, *check_key(key).split("/"))
        real = os.path.realpath(path)
        if not real.startswith(self.root + os.sep):
            raise InvalidKey("storage key leads outside the storage root")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write atomically: readers see the old file or the new one, never half of one.

        ``content_type`` is not stored; the file route derives it from the extension.
        """
        path = self.path(key)
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
        except OSError as exc:
            raise StorageError(f"could not store {key!r}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException as exc:
            with suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise StorageError(f"could not store {key!r}: {exc}") from exc
            raise

    def get(self, key: str) -> bytes:
        path = self.path(key)
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"could not read {key!r}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return os.path.isfile(self.path(key))

    def delete(self, key: str) -> None:
        """Remove the file; deleting a missing key is not an error (as on S3)."""
        try:
            os.unlink(self.path(key))
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:
            raise StorageError(f"could not delete {key!r}: {exc}") from exc

    def list_keys(self, prefix: str) -> list[str]:
        """Keys of the files in the folder ``prefix`` (such as ``tasks/<id>/``), sorted."""
        folder = self.path(prefix.rstrip("/"))
        keys = []
        for directory, _dirs, files in os.walk(folder):
            relative = os.path.relpath(directory, self.root).replace(os.sep, "/")
            keys += [f"{relative}/{name}" for name in files if not name.startswith(".tmp-")]
        return sorted(keys)

    def url(self, key: str, *, expires_in: int) -> str:
        check_key(key)
        if expires_in <= 0:
            raise ValueError("expires_in must be a positive number of seconds")
        expires = int(time.time()) + int(expires_in)
        signature = sign(self._secret, key, expires)
        return f"{self.public_base_url}/files/{quote(key)}?expires={expires}&sig={signature}"

    def key_from_url(self, url: str) -> str | None:
        """The key of a ``/files/<key>`` URL on our public base URL (or path-only); None otherwise.

        The query (expiry and signature) is ignored: see the module docstring.
        """
        parts = _split(url)
        if parts is None:
            return None
        base = urlsplit(self.public_base_url)
        prefixes = [base.path.rstrip("/") + "/files/"]
        if parts.scheme or parts.netloc:
            if _origin(parts) != _origin(base):
                return None
        else:
            prefixes.append("/files/")
        return _key_after(parts.path, prefixes)


class S3Storage:
    """An S3-compatible bucket (Tencent COS in production), reached with boto3."""

    def __init__(
        self,
        bucket: str,
        *,
        region: str,
        endpoint_url: str | None = None,
        access_key_id: str,
        secret_access_key: str,
        addressing_style: str = "virtual",
        signature_version: str = "s3v4",
        public_base_url: str | None = None,
        presign: bool = True,
        key_prefix: str = "",
        connect_timeout: float = 5,
        read_timeout: float = 60,
    ) -> None:
        if not bucket:
            raise ValueError("S3Storage needs a bucket name")
        if addressing_style not in ADDRESSING_STYLES:
            raise ValueError(f"addressing_style must be one of {', '.join(ADDRESSING_STYLES)}")
        self.bucket = bucket
        self.region = region
        self.addressing_style = addressing_style
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.presign = presign
        self.key_prefix = key_prefix.strip("/") + "/" if key_prefix.strip("/") else ""
        config = Config(
            region_name=region,
            signature_version=signature_version,
            s3={"addressing_style": addressing_style},
            # botocore >= 1.36 adds CRC32 checksums by default; COS then fails multipart
            # uploads with MissingContentLength.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self.client = boto3.session.Session().client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )
        self._transfer_config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD
        )

    def object_key(self, key: str) -> str:
        """The key inside the bucket: ``key_prefix`` + ``key``."""
        object_key = self.key_prefix + check_key(key)
        if len(object_key.encode("utf-8")) > MAX_KEY_LENGTH:
            raise InvalidKey(f"storage key is longer than {MAX_KEY_LENGTH} bytes with its prefix")
        return object_key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Upload in one request, or in parts from ``MULTIPART_THRESHOLD`` on."""
        object_key = self.object_key(key)
        try:
            self.client.upload_fileobj(
                io.BytesIO(data),
                self.bucket,
                object_key,
                ExtraArgs={"ContentType": content_type},
                Config=self._transfer_config,
            )
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise StorageError(f"could not store {key!r} in bucket {self.bucket}: {exc}") from exc

    def get(self, key: str) -> bytes:
        object_key = self.object_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
            body = response["Body"]
            try:
                return body.read()
            finally:
                body.close()
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from exc
            raise StorageError(f"could not read {key!r} from bucket {self.bucket}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read {key!r} from bucket {self.bucket}: {exc}") from exc

    def exists(self, key: str) -> bool:
        object_key = self.object_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                return False
            raise StorageError(f"could not look up {key!r} in bucket {self.bucket}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not look up {key!r} in bucket {self.bucket}: {exc}") from exc
        return True

    def delete(self, key: str) -> None:
        """One DeleteObject per key: COS may want a Content-MD5 on DeleteObjects."""
        object_key = self.object_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=object_key)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not delete {key!r} from bucket {self.bucket}: {exc}") from exc

    def list_keys(self, prefix: str) -> list[str]:
        """Keys of the objects in the folder ``prefix`` (``key_prefix`` stripped), sorted."""
        object_prefix = self.object_key(prefix.rstrip("/")) + "/"
        keys = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=object_prefix
            )
            for page in pages:
                keys += [item["Key"][len(self.key_prefix) :] for item in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not list {prefix!r} in bucket {self.bucket}: {exc}") from exc
        return sorted(keys)

    def url(self, key: str, *, expires_in: int) -> str:
        """The public base URL link if one is set, else a presigned GET, else the plain object URL."""
        object_key = self.object_key(key)
        if expires_in <= 0:
            raise ValueError("expires_in must be a positive number of seconds")
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(object_key)}"
        if self.presign:
            return self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": object_key},
                ExpiresIn=int(expires_in),
            )
        endpoint = urlsplit(self.client.meta.endpoint_url)
        if self.addressing_style == "path":
            return f"{endpoint.scheme}://{endpoint.netloc}{endpoint.path.rstrip('/')}/{self.bucket}/{quote(object_key)}"
        return f"{endpoint.scheme}://{self.bucket}.{endpoint.netloc}{endpoint.path.rstrip('/')}/{quote(object_key)}"

    def key_from_url(self, url: str) -> str | None:
        """The key of a link to this bucket (public base URL, COS or endpoint URL, either style); None otherwise."""
        parts = _split(url)
        if parts is None or not parts.netloc:
            return None
        origin = _origin(parts)
        endpoint = urlsplit(self.client.meta.endpoint_url)
        endpoint_path = endpoint.path.rstrip("/")
        virtual_host = f"{self.bucket}.{endpoint.hostname}"
        cos_host = f"{self.bucket}.cos.{self.region}.myqcloud.com"
        candidates: list[tuple[tuple[str, str, int | None], str]] = [
            (_origin(endpoint), f"{endpoint_path}/{self.bucket}/"),
            (_origin(endpoint._replace(netloc=_with_port(virtual_host, endpoint.port))), f"{endpoint_path}/"),
            (("https", cos_host, 443), "/"),
        ]
        if self.public_base_url:
            base = urlsplit(self.public_base_url)
            candidates.insert(0, (_origin(base), base.path.rstrip("/") + "/"))
        prefixes = [prefix for candidate, prefix in candidates if candidate == origin]
        object_key = _key_after(parts.path, prefixes, validate=False)
        if object_key is None or not object_key.startswith(self.key_prefix):
            return None
        key = object_key[len(self.key_prefix) :]
        try:
            return check_key(key)
        except InvalidKey:
            return None


def storage_from_settings(settings: Mapping[str, Any]) -> Storage:
    """Build the backend named by ``STORAGE_BACKEND`` (``local`` or ``s3``); see docs/STORAGE.md."""
    backend = (_setting(settings, "STORAGE_BACKEND") or "local").lower()
    if backend == "local":
        return LocalStorage(
            root=_setting(settings, "STORAGE_LOCAL_ROOT") or "var/storage",
            public_base_url=_setting(settings, "PUBLIC_BASE_URL") or "http://localhost:5000",
            secret=_require(settings, "STORAGE_SIGNING_SECRET", backend),
        )
    if backend == "s3":
        return S3Storage(
            _require(settings, "S3_BUCKET", backend),
            region=_require(settings, "S3_REGION", backend),
            endpoint_url=_setting(settings, "S3_ENDPOINT_URL"),
            access_key_id=_require(settings, "S3_ACCESS_KEY_ID", backend),
            secret_access_key=_require(settings, "S3_SECRET_ACCESS_KEY", backend),
            addressing_style=(_setting(settings, "S3_ADDRESSING_STYLE") or "virtual").lower(),
            signature_version=_setting(settings, "S3_SIGNATURE_VERSION") or "s3v4",
            public_base_url=_setting(settings, "S3_PUBLIC_BASE_URL"),
            presign=_flag(settings.get("S3_PRESIGN", True), "S3_PRESIGN"),
            key_prefix=_setting(settings, "S3_KEY_PREFIX") or "",
        )
    raise ValueError(f"STORAGE_BACKEND must be 'local' or 's3', not {backend!r}")


def _setting(settings: Mapping[str, Any], name: str) -> str | None:
    """The setting as stripped text; unset and empty (a blank env var) both mean None."""
    value = settings.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _require(settings: Mapping[str, Any], name: str, backend: str) -> str:
    value = _setting(settings, name)
    if value is None:
        raise ValueError(f"{name} must be set for the {backend} storage backend")
    return value


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _split(url: str) -> SplitResult | None:
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None
    return parts


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _with_port(host: str, port: int | None) -> str:
    return f"{host}:{port}" if port else host


def _key_after(path: str, prefixes: list[str], *, validate: bool = True) -> str | None:
    """Unquote what follows the first matching prefix in ``path``."""
    for prefix in prefixes:
        if path.startswith(prefix) and len(path) > len(prefix):
            try:
                key = unquote(path[len(prefix) :], errors="strict")
            except UnicodeDecodeError:
                return None
            if not validate:
                return key
            try:
                return check_key(key)
            except InvalidKey:
                return None
    return None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
