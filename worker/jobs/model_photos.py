"""model_pose12: twelve AI model photos rendered by RunningHub, without a worker waiting on it.

submit (short job) → RunningHub renders → webhook or delayed poll → collect (short job).

- A Redis gate caps how many of our tasks run on RunningHub at once
  (`RUNNINGHUB_MAX_CONCURRENCY`); a task that finds it full stays `pending` and is re-scheduled.
- The RunningHub task id is committed on our task right after RunningHub accepts it, so a
  restarted worker resumes polling instead of submitting twice.
- "Try again later" answers (421, 415, 1520, 1003, 5xx, transport errors, and an empty balance,
  which also alerts) re-schedule; they never fail a task. The timeout sweeper bounds the wait.
- A create that timed out may have started a billed task: the task waits for that task's
  callback (which names it) before submitting again.
"""

from __future__ import annotations

import io
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor

from PIL import Image
from rq import get_current_job
from sqlalchemy import or_, update

from shared import lifecycle, queues, results
from shared.app import redis_client, settings, storage
from shared.config import Config
from shared.db import db, utcnow
from shared.models import Task

from ..app import app_context
from ..content import ContentRejected
from ..fetch import FetchError
from ..inputs import fetch_configured, load_input_image
from ..runner import TaskRejected, TransientInputError
from ..runninghub import (
    WAITING_STATUSES,
    CreateUncertain,
    PromptRejected,
    RetryLater,
    RunningHubError,
    StillRunning,
    TaskFailed,
    create_uncertain,
    mark_create_uncertain,
    report,
    select_images,
    webhook_url,
)
from ..runninghub_access import acquire_slot, client, release_slot, workflows

log = logging.getLogger(__name__)

DOWNLOAD_THREADS = 6
"""Parallel downloads of a task's outputs from RunningHub's CDN."""

SUBMIT = "worker.jobs.model_photos.submit_model_pose12"
POLL = "worker.jobs.model_photos.poll_model_pose12"
COLLECT = "worker.jobs.model_photos.collect_model_pose12"


def _submitted(task_id: str, statuses: tuple[str, ...]) -> str | None:
    """The task's RunningHub id if the task is in one of `statuses` and was submitted, else None.

    The session is closed before returning: the caller's next step waits on RunningHub.
    """
    task = db.session.get(Task, task_id)
    external_id = task.external_id if task is not None and task.status in statuses else None
    db.session.close()
    return external_id or None


def _follow_up(func: str, task_id: str, delay: float = 0) -> None:
    queues.enqueue_follow_up(redis_client(), func, task_id, delay=delay)


def submit_model_pose12(task_id: str) -> str:
    """Upload the input and start the RunningHub workflow (or resume a task already submitted)."""
    with app_context():
        task = db.session.get(Task, task_id)
        if task is None or task.status not in ("pending", "processing"):
            return "skipped"
        if task.external_id:
            _follow_up(POLL, task_id)
            return "resumed"
        if create_uncertain(redis_client(), task_id):
            # Resubmitting now could start a second billed task; the webhook route adopts the
            # first one's id if its callback names this task (see `webhook_url`).
            _follow_up(SUBMIT, task_id, delay=settings().RUNNINGHUB_POLL_SECONDS)
            return "waiting for a timed-out create to report"
        if not acquire_slot(task_id):
            _follow_up(SUBMIT, task_id, delay=settings().RUNNINGHUB_RETRY_SECONDS)
            return "waiting for a RunningHub slot"
        task = lifecycle.start(task_id)
        db.session.commit()
        if task is None:
            release_slot(task_id)
            return "skipped"
        url, params = task.input_image_url, dict(task.params or {})
        db.session.close()
        try:
            external_id = _submit(task_id, url, params)
        except TaskRejected as exc:
            _finish_failed(task_id, exc.message)
            return "failed"
        except PromptRejected as exc:
            # RunningHub started (and bills) the task although its inputs were rejected: keep its
            # id on our task, stop it there, then fail ours with ComfyUI's node errors.
            db.session.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(external_id=exc.task_id, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
            log.error("RunningHub rejected the inputs of task %s (%s): %s", task_id, exc.task_id, exc.msg)
            _cancel_remote(exc.task_id)
            _finish_failed(task_id, exc.user_message)
            return "failed"
        except CreateUncertain as exc:
            report(exc, redis_client())
            log.warning(
                "RunningHub create for task %s timed out (%s); waiting for its callback", task_id, exc
            )
            mark_create_uncertain(redis_client(), task_id, settings().RUNNINGHUB_CREATE_WAIT_SECONDS)
            _follow_up(SUBMIT, task_id, delay=settings().RUNNINGHUB_POLL_SECONDS)
            return "create timed out; waiting"
        except RetryLater as exc:
            report(exc, redis_client())
            release_slot(task_id)
            log.warning("RunningHub busy for task %s (%s); retrying later", task_id, exc)
            _follow_up(SUBMIT, task_id, delay=settings().RUNNINGHUB_RETRY_SECONDS)
            return "retry later"
        stored = db.session.execute(
            update(Task)
            .where(Task.id == task_id, or_(Task.external_id.is_(None), Task.external_id == external_id))
            .values(external_id=external_id, progress=20, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if not stored:  # an earlier, timed-out create's task was adopted meanwhile: keep that one
            log.warning("task %s already has a RunningHub task; cancelling %s", task_id, external_id)
            _cancel_remote(external_id)
        _follow_up(POLL, task_id, delay=settings().RUNNINGHUB_POLL_SECONDS)
        return "submitted"


def _submit(task_id: str, url: str, params: dict) -> str:
    image = load_input_image(url)
    upload = io.BytesIO()
    image.convert("RGB").save(upload, "JPEG", quality=92)
    rh = client()
    try:
        file_name = rh.upload(upload.getvalue(), f"{task_id}.jpg")
        workflow_id, node_info = workflows().node_info_list(
            params.get("scene", "studio"),
            params.get("category", "dress"),
            image_file_name=file_name,
            description=params.get("productDescription", ""),
            seed=secrets.randbelow(2**31),
        )
        config = settings()
        webhook = webhook_url(config.RUNNINGHUB_WEBHOOK_BASE_URL, config.RUNNINGHUB_WEBHOOK_SECRET, task_id)
        return rh.create(workflow_id, node_info, webhook_url=webhook)
    except (RetryLater, PromptRejected):
        raise
    except TaskFailed as exc:
        raise TaskRejected(exc.user_message) from exc
    except RunningHubError as exc:
        log.error(
            "RunningHub refused task %s: code=%s msg=%s (check configuration)", task_id, exc.code, exc.msg
        )
        raise TaskRejected(f"AI 渲染服务拒绝了任务（RunningHub {exc.code}: {exc.msg}）") from exc


def poll_model_pose12(task_id: str) -> str:
    """Fallback when no webhook arrives: ask RunningHub for the status, collect or poll again."""
    with app_context():
        external_id = _submitted(task_id, ("pending", "processing"))
        if external_id is None:
            return "skipped"
        try:
            status = client().status(external_id)
        except (RetryLater, StillRunning) as exc:
            report(exc, redis_client())
            status = "RETRY"
        except RunningHubError as exc:
            _finish_failed(task_id, f"AI 渲染状态查询失败（RunningHub {exc.code}: {exc.msg}）")
            return "failed"
        if status not in (*WAITING_STATUSES, "RETRY"):
            # Ended, or a status we do not know (empty included): the outputs answer decides.
            _follow_up(COLLECT, task_id)  # its own job: the collect step shows as such in rq
            return f"collecting ({status or 'no status'})"
        if status == "RUNNING":
            lifecycle.set_progress(task_id, 50)
            db.session.commit()
        _follow_up(POLL, task_id, delay=settings().RUNNINGHUB_POLL_SECONDS)
        return f"waiting ({status})"


def collect_model_pose12(task_id: str) -> str:
    """Read the outputs (confirming any webhook), copy the twelve images into our storage, finish."""
    with app_context():
        redis = redis_client()
        lock = f"shopimage:collecting:{task_id}"
        if not _take_collect_lock(redis, lock):
            # Someone is collecting; poll again later rather than end the chain here.
            _follow_up(POLL, task_id, delay=settings().RUNNINGHUB_POLL_SECONDS)
            return "already collecting; polling again later"
        try:
            return _collect(task_id)
        finally:
            redis.delete(lock)


def _take_collect_lock(redis, lock: str) -> bool:
    """At most one collect per task. The lock names its holder's job, so a lock left by a killed
    worker (whose job the pool marked failed) is taken over at once instead of waiting out its TTL."""
    job = get_current_job()
    me = job.id if job else f"inline-{secrets.token_hex(4)}"
    if redis.set(lock, me, nx=True, ex=queues.FOLLOW_UP_TIMEOUT):
        return True
    holder = redis.get(lock)
    if holder and not queues.job_running(redis, holder.decode()):
        redis.delete(lock)
        return bool(redis.set(lock, me, nx=True, ex=queues.FOLLOW_UP_TIMEOUT))
    return False


def _collect(task_id: str) -> str:
    external_id = _submitted(task_id, ("processing",))
    if external_id is None:
        return "skipped"
    try:
        outputs = client().outputs(external_id)
    except StillRunning:
        _follow_up(POLL, task_id, delay=settings().RUNNINGHUB_POLL_SECONDS)
        return "still running"
    except RetryLater as exc:
        report(exc, redis_client())
        _follow_up(POLL, task_id, delay=settings().RUNNINGHUB_RETRY_SECONDS)
        return "retry later"
    except TaskFailed as exc:
        log.warning("RunningHub task %s failed: %s", external_id, exc.failed_reason)
        _finish_failed(task_id, exc.user_message)
        return "failed"
    except RunningHubError as exc:
        _finish_failed(task_id, f"AI 渲染结果读取失败（RunningHub {exc.code}: {exc.msg}）")
        return "failed"
    config = settings()
    outputs = select_images(outputs, config.RUNNINGHUB_OUTPUT_NODE)
    if not outputs:
        _finish_failed(task_id, "AI 渲染结束但没有产出图片")
        return "failed"
    lifecycle.set_progress(task_id, 80)
    db.session.commit()
    try:
        # Downloads wait on the network, not the CPU: fetch the twelve side by side.
        with ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool:
            images = list(pool.map(lambda url: _download(url, config), [o.file_url for o in outputs]))
        queues.resolve(settings().CONTENT_CHECK)(images)
    except (TaskRejected, ContentRejected) as exc:
        _finish_failed(task_id, exc.message)
        return "failed"
    keys = _store(task_id, images)
    if lifecycle.succeed(task_id, keys):
        db.session.commit()
        release_slot(task_id)
        return "success"
    db.session.rollback()
    for key in keys:
        storage().delete(key)
    log.info("task %s ended before its results arrived (timeout or cancel); results discarded", task_id)
    return "discarded"


def cancel_model_pose12(task_id: str) -> str:
    """After our cancel or timeout: cancel the RunningHub task and free its slot."""
    with app_context():
        task = db.session.get(Task, task_id)
        external_id = task.external_id if task else None
        db.session.close()
        release_slot(task_id)
        if external_id:
            _cancel_remote(external_id)
        return "cancelled"


def _download(url: str, config: Config) -> bytes:
    try:
        return fetch_configured(url, config)
    except FetchError as exc:
        if exc.retryable:
            raise TransientInputError(f"AI 渲染结果下载失败：{exc.message}") from exc
        raise TaskRejected(f"AI 渲染结果无法下载（链接可能已过期）：{exc.message}") from exc


def _store(task_id: str, images: list[bytes]) -> list[str]:
    store = storage()
    keys = []
    for number, data in enumerate(images, start=1):
        with Image.open(io.BytesIO(data)) as image:
            extension = {"JPEG": "jpg", "WEBP": "webp"}.get(image.format or "", "png")
        key = results.result_key(task_id, f"pose-{number:02d}.{extension}")
        store.put(key, data, f"image/{'jpeg' if extension == 'jpg' else extension}")
        keys.append(key)
    return keys


def _finish_failed(task_id: str, message: str) -> None:
    db.session.rollback()
    if lifecycle.fail(task_id, message):
        db.session.commit()
    release_slot(task_id)


def _cancel_remote(external_id: str) -> None:
    """Cancel a render on RunningHub, best effort: a failure is logged, never raised."""
    try:
        client().cancel(external_id)
    except RunningHubError as exc:
        log.error("could not cancel RunningHub task %s: %s", external_id, exc)
