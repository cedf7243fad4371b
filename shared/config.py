"""Configuration, read from the environment once, in one place.

Every setting has a typed default that suits the embedded `make run` setup. Production
(`APP_ENV=production`) refuses to start with a missing or placeholder secret; elsewhere a missing
`SECRET_KEY` is generated once and kept in the instance folder, so no secret published with the
code ever signs tokens or file links. Tests subclass `Config` (see `tests/conftest.py`) instead of
patching the environment.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger(__name__)

DEV_SECRET = "dev-secret-change-me-0123456789abcdef"
"""The placeholder earlier versions signed with when `SECRET_KEY` was unset; production refuses it."""

SECRET_FILE = "secret_key"
"""Name of the generated development secret inside the instance folder."""


class ConfigError(RuntimeError):
    """A setting is missing or invalid."""


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    return default if value is None or value == "" else value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def instance_secret(instance_path: Path) -> str:
    """The secret kept in `instance_path`, generated on first use.

    Every process of one checkout (the web server, the workers, `flask` commands) reads the same
    file, so a token or file link signed by one is accepted by the others. Written to a temporary
    file and linked into place, so two processes starting together end up with the same secret.
    """
    path = instance_path / SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    tmp = instance_path / f".{SECRET_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)
        log.warning("SECRET_KEY is not set: generated a random secret and saved it in %s", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def normalize_database_url(url: str) -> str:
    """Accept Heroku's `postgres://` and plain `postgresql://`; use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Config:
    """Settings for one process. Instantiate with an environment mapping (default `os.environ`)."""

    TESTING = False

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.APP_ENV = _str(env, "APP_ENV", "development")
        self.INSTANCE_PATH = Path(_str(env, "INSTANCE_PATH", str(ROOT / "instance")))
        self.SECRET_KEY = _str(env, "SECRET_KEY", "")
        if not self.SECRET_KEY and not self.is_production:
            self.SECRET_KEY = instance_secret(self.INSTANCE_PATH)
        self.JWT_SECRET_KEY = _str(env, "JWT_SECRET_KEY", self.SECRET_KEY)
        self.JWT_ACCESS_TOKEN_EXPIRES = timedelta(seconds=_int(env, "JWT_ACCESS_TOKEN_SECONDS", 900))
        self.JWT_REFRESH_TOKEN_EXPIRES = timedelta(seconds=_int(env, "JWT_REFRESH_TOKEN_SECONDS", 30 * 86400))
        self.JWT_ALGORITHM = "HS256"
        self.JWT_DECODE_ALGORITHMS = ["HS256"]
        self.JWT_TOKEN_LOCATION = ["headers"]
        self.SERVICE_TOKEN = _str(env, "SERVICE_TOKEN", "")
        self.PASSWORD_HASH_ROUNDS = _int(env, "PASSWORD_HASH_ROUNDS", 600_000)

        default_db = "sqlite:///" + str(self.INSTANCE_PATH / "app.db")
        self.SQLALCHEMY_DATABASE_URI = normalize_database_url(_str(env, "DATABASE_URL", default_db))
        # hide_parameters: a failed statement's log line and error text leave out its values
        # (emails, password hashes, webhook URLs).
        self.SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
        # The web process pings a pooled connection only after it sat idle this long (the worker
        # pings on every checkout); see shared.app.ping_when_idle.
        self.DB_PING_IDLE_SECONDS = float(_str(env, "DB_PING_IDLE_SECONDS", "1"))
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            self.SQLALCHEMY_ENGINE_OPTIONS.update(
                # One connection per web server thread (WEB_THREADS, default 4): no churn under load.
                pool_size=_int(env, "DB_POOL_SIZE", _int(env, "WEB_THREADS", 4)),
                max_overflow=_int(env, "DB_MAX_OVERFLOW", 5),
                pool_timeout=_int(env, "DB_POOL_TIMEOUT", 5),
                connect_args={"connect_timeout": _int(env, "DB_CONNECT_TIMEOUT", 5)},
            )
        redis_url = _str(env, "REDIS_URL", "redis://127.0.0.1:6379/0")
        # Heroku Redis hands out rediss:// with a self-signed certificate: REDIS_SSL_CERT_REQS=none.
        cert_reqs = _str(env, "REDIS_SSL_CERT_REQS", "")
        if redis_url.startswith("rediss://") and cert_reqs and "ssl_cert_reqs=" not in redis_url:
            redis_url += ("&" if "?" in redis_url else "?") + f"ssl_cert_reqs={cert_reqs}"
        self.REDIS_URL = redis_url

        self.MAX_CONTENT_LENGTH = _int(env, "MAX_CONTENT_LENGTH", 25 * 1024 * 1024)
        self.MAX_JSON_BYTES = _int(env, "MAX_JSON_BYTES", 64 * 1024)
        # A batch create lists up to MAX_BATCH_ITEMS URLs (signed links run to ~1.5 KB each).
        self.MAX_BATCH_JSON_BYTES = _int(env, "MAX_BATCH_JSON_BYTES", 512 * 1024)
        self.UPLOAD_STORAGE_CAP_BYTES = _int(env, "UPLOAD_STORAGE_CAP_BYTES", 200 * 1024 * 1024)
        self.UPLOAD_UNUSED_SECONDS = _int(env, "UPLOAD_UNUSED_SECONDS", 24 * 3600)
        self.UPLOAD_CLEANUP_INTERVAL_SECONDS = _int(env, "UPLOAD_CLEANUP_INTERVAL_SECONDS", 600)

        self.TASK_TIMEOUT_SECONDS = _int(env, "TASK_TIMEOUT_SECONDS", 600)
        self.SWEEP_INTERVAL_SECONDS = _int(env, "SWEEP_INTERVAL_SECONDS", 30)
        self.RECONCILE_INTERVAL_SECONDS = _int(env, "RECONCILE_INTERVAL_SECONDS", 60)
        self.RECONCILE_GRACE_SECONDS = _int(env, "RECONCILE_GRACE_SECONDS", 30)
        self.IDEMPOTENCY_TTL_SECONDS = _int(env, "IDEMPOTENCY_TTL_SECONDS", 48 * 3600)
        # Tasks one user may have pending or processing at once (0: no limit); a create beyond is 429/1005.
        self.MAX_ACTIVE_TASKS_PER_USER = _int(env, "MAX_ACTIVE_TASKS_PER_USER", 10)
        # Batches: items per batch, batches one user may have in progress (0: no limit; beyond is
        # 429/1005), and the timeout of a batch's task (it waits behind the batch's earlier items).
        self.MAX_BATCH_ITEMS = _int(env, "MAX_BATCH_ITEMS", 100)
        self.MAX_ACTIVE_BATCHES_PER_USER = _int(env, "MAX_ACTIVE_BATCHES_PER_USER", 3)
        self.BATCH_TASK_TIMEOUT_SECONDS = _int(env, "BATCH_TASK_TIMEOUT_SECONDS", 3600)

        self.WORKER_QUEUES = [q for q in _str(env, "WORKER_QUEUES", "").split(",") if q]
        self.WORKER_PROCESSES = _int(env, "WORKER_PROCESSES", 0)
        self.WORKER_RUN_CRON = _bool(env, "WORKER_RUN_CRON", True)
        # Webhook deliveries in a worker process of their own, never ahead of image jobs.
        self.WORKER_WEBHOOK_LANE = _bool(env, "WORKER_WEBHOOK_LANE", True)
        self.WORKER_SHUTDOWN_GRACE_SECONDS = _int(env, "WORKER_SHUTDOWN_GRACE_SECONDS", 20)
        self.RETRY_DELAY_FACTOR = float(_str(env, "RETRY_DELAY_FACTOR", "1"))
        self.WORKER_PRELOAD = _bool(env, "WORKER_PRELOAD", True)
        # "type=dotted.path,..." points task types at other jobs (tests use stubs); empty in production.
        self.JOB_OVERRIDES: dict[str, str] = dict(
            item.split("=", 1) for item in _str(env, "JOB_OVERRIDES", "").split(",") if "=" in item
        )
        # Modules whose TASK_TYPES join the built-in task types (shared.task_types); empty in production.
        self.TASK_TYPE_MODULES = [m for m in _str(env, "TASK_TYPE_MODULES", "").split(",") if m]

        self.PUBLIC_BASE_URL = _str(env, "PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        self.STORAGE_BACKEND = _str(env, "STORAGE_BACKEND", "local")
        self.STORAGE_LOCAL_ROOT = _str(env, "STORAGE_LOCAL_ROOT", str(ROOT / "var" / "storage"))
        self.STORAGE_SIGNING_SECRET = _str(env, "STORAGE_SIGNING_SECRET", self.SECRET_KEY)
        self.STORAGE_URL_SECONDS = _int(env, "STORAGE_URL_SECONDS", 7 * 86400)
        self.S3_BUCKET = _str(env, "S3_BUCKET", "")
        self.S3_REGION = _str(env, "S3_REGION", "ap-guangzhou")
        self.S3_ENDPOINT_URL = _str(env, "S3_ENDPOINT_URL", "")
        self.S3_ACCESS_KEY_ID = _str(env, "S3_ACCESS_KEY_ID", "")
        self.S3_SECRET_ACCESS_KEY = _str(env, "S3_SECRET_ACCESS_KEY", "")
        self.S3_ADDRESSING_STYLE = _str(env, "S3_ADDRESSING_STYLE", "virtual")
        self.S3_SIGNATURE_VERSION = _str(env, "S3_SIGNATURE_VERSION", "s3v4")
        self.S3_PUBLIC_BASE_URL = _str(env, "S3_PUBLIC_BASE_URL", "")
        self.S3_PRESIGN = _bool(env, "S3_PRESIGN", True)

        self.ALLOW_PRIVATE_URLS = _bool(env, "ALLOW_PRIVATE_URLS", False)
        self.FETCH_MAX_BYTES = _int(env, "FETCH_MAX_BYTES", 20 * 1024 * 1024)
        self.FETCH_CONNECT_TIMEOUT = float(_str(env, "FETCH_CONNECT_TIMEOUT", "5"))
        self.FETCH_READ_TIMEOUT = float(_str(env, "FETCH_READ_TIMEOUT", "15"))
        self.FETCH_TOTAL_TIMEOUT = float(_str(env, "FETCH_TOTAL_TIMEOUT", "60"))
        self.FETCH_MAX_REDIRECTS = _int(env, "FETCH_MAX_REDIRECTS", 3)
        self.IMAGE_MAX_PIXELS = _int(env, "IMAGE_MAX_PIXELS", 40_000_000)
        self.IMAGE_MIN_SIDE = _int(env, "IMAGE_MIN_SIDE", 64)
        self.MODEL_DIR = _str(env, "MODEL_DIR", str(ROOT / "models"))
        self.INFERENCE_THREADS = _int(env, "INFERENCE_THREADS", 0)
        self.INFERENCE_ARENA = _bool(env, "INFERENCE_ARENA", False)
        self.WHITE_BG_FILL_RATIO = float(_str(env, "WHITE_BG_FILL_RATIO", "0.85"))

        self.RUNNINGHUB_BASE_URL = _str(env, "RUNNINGHUB_BASE_URL", "").rstrip("/")
        self.RUNNINGHUB_API_KEY = _str(env, "RUNNINGHUB_API_KEY", "")
        self.RUNNINGHUB_WORKFLOWS_FILE = _str(env, "RUNNINGHUB_WORKFLOWS_FILE", "")
        self.RUNNINGHUB_WEBHOOK_SECRET = _str(env, "RUNNINGHUB_WEBHOOK_SECRET", "")
        # Where RunningHub can reach our webhook (defaults to PUBLIC_BASE_URL).
        self.RUNNINGHUB_WEBHOOK_BASE_URL = _str(
            env, "RUNNINGHUB_WEBHOOK_BASE_URL", self.PUBLIC_BASE_URL
        ).rstrip("/")
        self.RUNNINGHUB_MAX_CONCURRENCY = _int(env, "RUNNINGHUB_MAX_CONCURRENCY", 3)
        self.RUNNINGHUB_POLL_SECONDS = _int(env, "RUNNINGHUB_POLL_SECONDS", 10)
        self.RUNNINGHUB_RETRY_SECONDS = _int(env, "RUNNINGHUB_RETRY_SECONDS", 15)
        self.RUNNINGHUB_OUTPUT_COUNT = _int(env, "RUNNINGHUB_OUTPUT_COUNT", 12)
        self.RUNNINGHUB_OUTPUT_NODE = _str(env, "RUNNINGHUB_OUTPUT_NODE", "")
        self.RUNNINGHUB_READ_TIMEOUT_SECONDS = _int(env, "RUNNINGHUB_READ_TIMEOUT_SECONDS", 30)
        self.RUNNINGHUB_CREATE_WAIT_SECONDS = _int(env, "RUNNINGHUB_CREATE_WAIT_SECONDS", 300)
        self.RUNNINGHUB_MIN_OUTPUT_SIDE = _int(env, "RUNNINGHUB_MIN_OUTPUT_SIDE", 256)
        self.CONTENT_CHECK = _str(env, "CONTENT_CHECK", "worker.content.default_check")

        self.LOG_LEVEL = _str(env, "LOG_LEVEL", "INFO")
        self.LOG_FORMAT = _str(env, "LOG_FORMAT", "json")

        self.SSE_HEARTBEAT_SECONDS = _int(env, "SSE_HEARTBEAT_SECONDS", 15)
        self.SSE_MAX_SECONDS = _int(env, "SSE_MAX_SECONDS", 600)
        # Open event streams per user (all processes) and per web process (0: half of WEB_THREADS).
        self.SSE_MAX_STREAMS_PER_USER = _int(env, "SSE_MAX_STREAMS_PER_USER", 2)
        self.SSE_MAX_STREAMS_PER_PROCESS = _int(env, "SSE_MAX_STREAMS_PER_PROCESS", 0)
        self.WEB_THREADS = _int(env, "WEB_THREADS", 4)
        # Longest a request body may take to arrive once the app starts reading it (408 after).
        self.REQUEST_BODY_SECONDS = float(_str(env, "REQUEST_BODY_SECONDS", "15"))

        self.RATELIMIT_ENABLED = _bool(env, "RATELIMIT_ENABLED", True)
        self.RATELIMIT_CREATE = _str(env, "RATELIMIT_CREATE", "600/minute")
        self.RATELIMIT_AUTHENTICATED = _str(env, "RATELIMIT_AUTHENTICATED", "3000/minute")
        self.RATELIMIT_LOGIN = _str(env, "RATELIMIT_LOGIN", "20/minute")
        self.LOGIN_LOCK_FAILURES = _int(env, "LOGIN_LOCK_FAILURES", 10)
        self.LOGIN_LOCK_SECONDS = _int(env, "LOGIN_LOCK_SECONDS", 900)
        self.RATELIMIT_ANONYMOUS = _str(env, "RATELIMIT_ANONYMOUS", "300/minute")
        self.RATELIMIT_ADMIN = _str(env, "RATELIMIT_ADMIN", "120/minute")  # /rq and /metrics, per address

        self.TRUST_PROXY_HOPS = _int(env, "TRUST_PROXY_HOPS", 0)
        self.METRICS_TOKEN = _str(env, "METRICS_TOKEN", "")
        self.RQ_DASHBOARD_USERNAME = _str(env, "RQ_DASHBOARD_USERNAME", "")
        self.RQ_DASHBOARD_PASSWORD = _str(env, "RQ_DASHBOARD_PASSWORD", "")

    @property
    def runninghub_configured(self) -> bool:
        return bool(self.RUNNINGHUB_BASE_URL and self.RUNNINGHUB_API_KEY and self.RUNNINGHUB_WORKFLOWS_FILE)

    @property
    def is_production(self) -> bool:
        return self.APP_ENV == "production"

    def validate(self) -> None:
        """Fail fast on settings that would make a production process unsafe."""
        if self.is_production:
            for name in ("SECRET_KEY", "JWT_SECRET_KEY", "STORAGE_SIGNING_SECRET"):
                value = getattr(self, name)
                if value == DEV_SECRET or len(value) < 32:
                    raise ConfigError(
                        f"{name} must be set to a random string of 32+ characters in production"
                    )
            if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
                raise ConfigError("DATABASE_URL must point at PostgreSQL in production")
            if self.ALLOW_PRIVATE_URLS:
                raise ConfigError("ALLOW_PRIVATE_URLS is for development and tests only")
        if self.TASK_TIMEOUT_SECONDS < 1 or self.BATCH_TASK_TIMEOUT_SECONDS < 1:
            raise ConfigError("TASK_TIMEOUT_SECONDS and BATCH_TASK_TIMEOUT_SECONDS must be positive")
        if self.MAX_BATCH_ITEMS < 1:
            raise ConfigError("MAX_BATCH_ITEMS must be at least 1")
        if self.runninghub_configured and not self.RUNNINGHUB_WEBHOOK_SECRET:
            raise ConfigError("RUNNINGHUB_WEBHOOK_SECRET must be set when RunningHub is configured")
        if self.STORAGE_BACKEND not in {"local", "s3"}:
            raise ConfigError(f"STORAGE_BACKEND must be 'local' or 's3', got {self.STORAGE_BACKEND!r}")

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain mapping (what Flask's `config.from_mapping` takes)."""
        return {k: v for k, v in vars(self).items() if k.isupper()} | {"TESTING": self.TESTING}
