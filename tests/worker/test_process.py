"""The worker process's own wiring (worker/process.py), without running jobs."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

from worker.process import AppWorker


def blocked_signals(thread_id: int) -> int:
    status = Path(f"/proc/self/task/{thread_id}/status").read_text()
    return int(re.search(r"^SigBlk:\s*([0-9a-f]+)$", status, re.M).group(1), 16)


def test_rq_command_listener_thread_cannot_take_stop_signals(redis):
    """SIGTERM/SIGINT must reach the main thread: only there do they interrupt the blocking dequeue.

    Had the listener thread taken the signal, an idle worker stayed in BLPOP and sat out the whole
    shutdown grace period (seen as 10-20 s stops of idle workers).
    """
    worker = AppWorker(["images"], connection=redis)
    worker.subscribe()
    try:
        listener = blocked_signals(worker.pubsub_thread.native_id)
        main = blocked_signals(threading.main_thread().native_id)
        for sig in (signal.SIGTERM, signal.SIGINT):
            bit = 1 << (sig - 1)
            assert listener & bit, f"{sig.name} not blocked in rq's listener thread"
            assert not main & bit, f"{sig.name} left blocked in the main thread"
    finally:
        worker.unsubscribe()


def test_pool_outlives_a_dead_worker_while_redis_is_down(caplog):
    """Workers die when Redis goes away mid-job; the pool parent must not die with them (it would
    stop respawning, and the dyno would process nothing after Redis came back)."""
    from redis import Redis
    from rq.worker_pool import WorkerData

    from tests.conftest import ConfigForTests
    from worker.process import Pool

    nothing_listens = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    pool = Pool(["images"], connection=nothing_listens, num_workers=1, config=ConfigForTests())
    pool.handle_dead_worker(WorkerData(name="gone", pid=123456, process=None))
    assert "could not release the job of dead worker gone" in caplog.text


def test_a_killed_workers_scheduler_is_stopped_and_its_locks_pass_to_the_respawned_worker(
    start_worker, redis
):
    """rq's scheduler process outlives a SIGKILLed worker, holding the scheduler locks; the
    respawned worker would try them again only after 10 minutes. The pool stops the orphan and
    frees its locks, so the new worker's scheduler moves due `enqueue_in` jobs at once."""
    from rq import Worker
    from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler

    from tests.conftest import wait_for
    from worker.process import _parent_pid

    lock = RQScheduler.get_locking_key("runninghub")
    start_worker(WORKER_PROCESSES="1", WORKER_RUN_CRON="0")
    wait_for(
        lambda: redis.get(lock) and redis.exists(SCHEDULER_KEY_TEMPLATE % redis.get(lock).decode()),
        timeout=30,
    )
    owner = redis.get(lock).decode()
    scheduler_pid = int(redis.hget(SCHEDULER_KEY_TEMPLATE % owner, "pid"))
    (worker,) = [w for w in Worker.all(connection=redis) if "runninghub" in w.queue_names()]
    assert _parent_pid(scheduler_pid) == worker.pid

    os.kill(worker.pid, signal.SIGKILL)

    wait_for(lambda: _parent_pid(scheduler_pid) is None, timeout=15, message="the orphaned scheduler stopped")
    wait_for(
        lambda: redis.get(lock) not in (None, owner.encode()),
        timeout=15,
        message="the respawned worker's scheduler took the lock",
    )
    new_pid = int(redis.hget(SCHEDULER_KEY_TEMPLATE % redis.get(lock).decode(), "pid"))
    assert _parent_pid(new_pid) in {w.pid for w in Worker.all(connection=redis)}


def scheduler_holding_the_lock(redis, pid: int) -> str:
    """Register a scheduler "ghost" on this host with `pid`, holding the runninghub queue's lock; the lock key."""
    import socket

    from rq.scheduler import RQScheduler

    ghost = RQScheduler(["runninghub"], connection=redis, name="ghost")
    ghost.register_birth()
    redis.hset(ghost.key, mapping={"pid": str(pid), "hostname": socket.gethostname()})
    lock = RQScheduler.get_locking_key("runninghub")
    redis.set(lock, "ghost", ex=61)
    return lock


def test_the_locks_of_a_scheduler_process_already_gone_are_freed(redis):
    """A scheduler that died with its worker leaves its locks for their TTL; a respawned worker
    would look again only after 10 minutes, so the pool frees them at once."""
    import subprocess

    from worker.process import stop_orphaned_scheduler

    finished = subprocess.Popen(["true"])
    finished.wait()
    lock = scheduler_holding_the_lock(redis, finished.pid)

    assert stop_orphaned_scheduler(redis, ["runninghub"]) == "ghost"
    assert redis.get(lock) is None


def test_a_scheduler_pid_now_used_by_another_program_is_not_killed(redis):
    """The scheduler is gone and its pid reused by an unrelated process: its locks are freed, and
    the process that now holds the pid lives on."""
    import subprocess

    from worker.process import stop_orphaned_scheduler

    # A `sleep` whose parent shell has exited: like an orphan, its parent is no rq worker.
    out = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
    stranger = int(out.stdout)
    try:
        lock = scheduler_holding_the_lock(redis, stranger)

        assert stop_orphaned_scheduler(redis, ["runninghub"]) == "ghost"
        assert redis.get(lock) is None
        time.sleep(0.3)  # a SIGKILL, had one been sent, has landed by now
        state = Path(f"/proc/{stranger}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state in ("S", "R")  # still running (killed: a zombie "Z" or gone)
    finally:
        os.kill(stranger, signal.SIGKILL)
