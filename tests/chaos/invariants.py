"""The invariants every chaos scenario ends with, written once.

1. every task reaches a terminal state (success or failed) within the timeout;
2. every task was charged exactly once; each failed task is refunded exactly once;
   no successful task is refunded;
3. `flask --app wsgi quota audit` exits 0 (run as a subprocess against the scenario's database);
4. no result file is lost: every storage key in a successful task's result_urls exists on disk;
5. no 500 was answered, every error answer is the envelope, and a 503 only where the scenario
   said a dependency was down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .cluster import Stack

TERMINAL = ("success", "failed")


@dataclass
class Outcome:
    statuses: dict[str, int]
    seconds_to_terminal: float
    answers: dict[int, int]
    tasks: int
    failures: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "statuses": self.statuses,
            "seconds_to_terminal": round(self.seconds_to_terminal, 1),
            "failure_reasons": self.failures,
            "http_answers": self.answers,
        }


def wait_terminal(stack: Stack, timeout: float) -> float:
    """Seconds until no task is active; fails listing the stuck tasks after `timeout`."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        try:
            active = stack.query(
                "SELECT id, type, status, progress, external_id, updated_at FROM tasks"
                " WHERE status NOT IN ('success', 'failed') ORDER BY created_at"
            )
        except Exception:  # the database may be coming back from a restart
            active = [("?", "?", "db unreachable", 0, None, None)]
        if not active:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            listing = "\n".join(map(str, active[:20]))
            raise AssertionError(
                f"{len(active)} task(s) not terminal after {timeout}s:\n{listing}\n--- worker log tail ---\n"
                + stack.worker_output(3000)
            )
        time.sleep(0.5)


def check_ledger(stack: Stack) -> None:
    rows = stack.query(
        """
        SELECT t.id, t.status,
               COUNT(*) FILTER (WHERE l.reason = 'deduct') AS deducts,
               COALESCE(SUM(-l.amount) FILTER (WHERE l.reason = 'deduct'), 0) AS charged,
               COUNT(*) FILTER (WHERE l.reason = 'refund') AS refunds
        FROM tasks t LEFT JOIN quota_ledger l ON l.task_id = t.id
        GROUP BY t.id, t.status
        """
    )
    problems = []
    for task_id, status, deducts, charged, refunds in rows:
        if deducts != 1 or charged != 1:
            problems.append(f"{task_id} ({status}): {deducts} charge(s) of total {charged}")
        if status == "failed" and refunds != 1:
            problems.append(f"{task_id} failed but refunded {refunds} time(s)")
        if status == "success" and refunds != 0:
            problems.append(f"{task_id} succeeded but refunded {refunds} time(s)")
    orphans = stack.query(
        "SELECT l.task_id, l.reason FROM quota_ledger l LEFT JOIN tasks t ON t.id = l.task_id"
        " WHERE l.task_id IS NOT NULL AND t.id IS NULL"
    )
    problems += [f"ledger {reason} for missing task {task_id}" for task_id, reason in orphans]
    assert not problems, "ledger invariant broken:\n" + "\n".join(problems[:50])


def check_audit(stack: Stack) -> None:
    result = stack.flask("quota", "audit", check=False)
    assert result.returncode == 0, (
        f"quota audit exited {result.returncode}:\n{result.stdout}\n{result.stderr[-2000:]}"
    )


def check_results(stack: Stack) -> int:
    rows = stack.query("SELECT id, result_urls FROM tasks WHERE status = 'success'")
    missing, files = [], 0
    for task_id, keys in rows:
        if not keys:
            missing.append(f"{task_id}: success without results")
        for key in keys or []:
            if key.startswith(("http://", "https://")):
                continue
            files += 1
            if not (stack.storage_root / key).is_file():
                missing.append(f"{task_id}: {key}")
    assert not missing, "result files lost:\n" + "\n".join(missing[:50])
    return files


def check_answers(stack: Stack, allow_503: frozenset[str] | set[str] = frozenset()) -> dict[int, int]:
    """`allow_503`: the recorder phases in which a dependency was down (503 expected there only)."""
    bad = []
    for answer in stack.recorder.answers:
        if answer.status >= 500 and not (answer.status == 503 and answer.phase in allow_503):
            bad.append(answer)
        elif answer.status >= 400:
            body = answer.body
            envelope = (
                isinstance(body, dict)
                and body.get("success") is False
                and isinstance(body.get("code"), int)
                and isinstance(body.get("message"), str)
            )
            if not envelope:
                bad.append(answer)
    listing = "\n".join(f"{a.method} {a.path} [{a.phase}] → {a.status} {str(a.body)[:300]}" for a in bad[:30])
    assert not bad, f"{len(bad)} answer(s) broke the envelope / no-5xx rule:\n{listing}"
    return stack.recorder.statuses()


def check_invariants(
    stack: Stack, *, timeout: float = 120, allow_503: frozenset[str] | set[str] = frozenset()
) -> Outcome:
    """Wait for every task to end, then check the ledger, the audit, the files and the answers."""
    seconds = wait_terminal(stack, timeout)
    check_ledger(stack)
    check_audit(stack)
    check_results(stack)
    answers = check_answers(stack, allow_503=allow_503)
    statuses = dict(stack.query("SELECT status, COUNT(*) FROM tasks GROUP BY status ORDER BY status"))
    failures = dict(
        stack.query(
            "SELECT left(error_message, 60), COUNT(*) FROM tasks WHERE status = 'failed'"
            " GROUP BY 1 ORDER BY 2 DESC"
        )
    )
    return Outcome(statuses, seconds, answers, sum(statuses.values()), failures)
