"""Scenario 1: worker processes SIGKILLed at random (seeded) points, during basic_clean and
during a model task's collect step. The pool parent respawns the killed worker; a task whose job
died with its worker is ended (failed, refunded once) by the timeout sweeper, so
TASK_TIMEOUT_SECONDS is short here (20 s).

`make test` runs a few kills of each kind; `make chaos` runs 10 + 10 = 20.
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from rq import Worker
from rq.job import Job

from tests.conftest import wait_for
from tests.photos import product_photo

from .cluster import Stack
from .invariants import check_invariants

SEED = 8
TIMEOUT = "20"


def busy_workers(stack: Stack, predicate) -> list[tuple[int, str]]:
    """(pid, job id) of live rq workers of our pools whose current job matches `predicate(job)`."""
    ours = {pid for pool in stack.workers for pid in pool.pids()}
    found = []
    for worker in Worker.all(connection=stack.redis):
        job_id = worker.get_current_job_id()
        if not job_id or worker.pid not in ours or not alive(worker.pid):
            continue
        try:
            job = Job.fetch(job_id, connection=stack.redis)
        except Exception:
            continue
        if predicate(job):
            found.append((worker.pid, job_id))
    return found


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for the pool parent to reap it)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except OSError:
        return False


def kill(pid: int) -> bool:
    if not alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def task_status(stack: Stack, task_id: str) -> str:
    return stack.query("SELECT status FROM tasks WHERE id = %s", (task_id,))[0][0]


def run_basic_clean_kills(stack: Stack, kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    stack.start_web()
    stack.start_workers(TASK_TIMEOUT_SECONDS=TIMEOUT)
    token = stack.create_users({"kill-bc@example.com": 200})["kill-bc@example.com"]
    api = stack.api(token)
    url = api.upload(product_photo())
    stack.wait_workers_ready(2, timeout=120)
    started = time.monotonic()
    created: list[str] = []
    log: list[dict] = []
    while sum(entry["killed"] for entry in log) < kills:
        # Keep a couple of jobs queued so a worker is busy, then kill it at a random point of its job.
        created += [api.create_id("basic_clean", url) for _ in range(2)]
        ours = set(created)
        victims = wait_for(
            lambda ours=ours: busy_workers(stack, lambda job: job.id in ours),
            timeout=90,
            interval=0.05,
            message="a worker running basic_clean",
        )
        delay = rng.uniform(0, 0.6)
        time.sleep(delay)
        # Kill a worker that is running one of our basic_clean jobs *now* (the one seen before the
        # pause may have finished it): a random point inside some job.
        victims = busy_workers(stack, lambda job, ours=ours: job.id in ours) or victims
        pid, job_id = rng.choice(victims)
        state = task_status(stack, job_id)
        log.append(
            {
                "pid": pid,
                "task": job_id,
                "delay": round(delay, 2),
                "task_status_at_kill": state,
                "killed": kill(pid),
            }
        )
    # A few tasks after the last kill: the respawned workers must still serve.
    created += [api.create_id("basic_clean", url) for _ in range(3)]
    outcome = check_invariants(stack, timeout=180)
    stack.wait_workers_ready(2, timeout=120)
    return {
        "kills": sum(e["killed"] for e in log),
        "missed_kills": sum(not e["killed"] for e in log),
        "killed_while_processing": sum(e["killed"] and e["task_status_at_kill"] == "processing" for e in log),
        **outcome.as_dict(),
        "seconds": round(time.monotonic() - started, 1),
        "load_avg_end": os.getloadavg()[0],
    }


def run_collect_kills(stack: Stack, kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    # Each output download takes 0.25 s: a collect of 12 images is a ~3 s window to hit.
    stack.standin.set_faults({"slow": {"seconds": 0.25, "on": ["files"]}})
    stack.start_web()
    stack.start_workers(TASK_TIMEOUT_SECONDS=TIMEOUT, WORKER_PRELOAD="0", RUNNINGHUB_MAX_CONCURRENCY="10")
    token = stack.create_users({"kill-rh@example.com": 200})["kill-rh@example.com"]
    api = stack.api(token)
    url = api.upload(product_photo(400, 500))
    stack.wait_workers_ready(2, timeout=60)
    started = time.monotonic()
    created: list[str] = []
    log: list[dict] = []
    while sum(entry["killed"] for entry in log) < kills:
        created.append(api.create_id("model_pose12", url, {"scene": "studio", "category": "dress"}))
        ours = set(created)
        victims = wait_for(
            lambda ours=ours: busy_workers(
                stack, lambda job: job.func_name.endswith("collect_model_pose12") and job.args[0] in ours
            ),
            timeout=90,
            interval=0.05,
            message="a worker in the collect step",
        )
        delay = rng.uniform(0, 2.5)
        time.sleep(delay)
        pid, job_id = rng.choice(victims)
        task_id = job_id.split("-")[0]
        entry = {
            "pid": pid,
            "task": task_id,
            "delay": round(delay, 2),
            "task_status_at_kill": task_status(stack, task_id),
            "killed": kill(pid),
        }
        # The collect job holds `shopimage:collecting:<task>` (300 s); a killed job leaves it behind.
        time.sleep(0.5)
        entry["collect_lock_ttl_after_kill"] = stack.redis.ttl(f"shopimage:collecting:{task_id}")
        log.append(entry)
    created += [api.create_id("model_pose12", url) for _ in range(2)]
    outcome = check_invariants(stack, timeout=180)
    return {
        "kills": sum(e["killed"] for e in log),
        "missed_kills": sum(not e["killed"] for e in log),
        "killed_while_processing": sum(e["killed"] and e["task_status_at_kill"] == "processing" for e in log),
        "runninghub_creates": stack.standin.state()["creates"],
        "collect_locks_left_by_killed_jobs": sum(
            e.get("collect_lock_ttl_after_kill", -2) > 0 for e in log if e["killed"]
        ),
        "killed_tasks_final_status": dict(
            stack.query(
                "SELECT id, status FROM tasks WHERE id = ANY(%s)", ([e["task"] for e in log if e["killed"]],)
            )
        ),
        **outcome.as_dict(),
        "seconds": round(time.monotonic() - started, 1),
        "load_avg_end": os.getloadavg()[0],
    }


def test_sigkill_during_basic_clean_quick(make_stack, figures):
    figures("1a_sigkill_basic_clean_quick", run_basic_clean_kills(make_stack(), kills=3, seed=SEED))


def test_sigkill_during_model_collect_quick(make_stack, figures):
    figures("1b_sigkill_collect_quick", run_collect_kills(make_stack(standin={}), kills=3, seed=SEED))


@pytest.mark.chaos_full
def test_sigkill_during_basic_clean_10(make_stack, figures):
    figures("1a_sigkill_basic_clean", run_basic_clean_kills(make_stack(), kills=10, seed=SEED))


@pytest.mark.chaos_full
def test_sigkill_during_model_collect_10(make_stack, figures):
    figures("1b_sigkill_collect", run_collect_kills(make_stack(standin={}), kills=10, seed=SEED))
