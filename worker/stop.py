"""Stopping a running job on request (a cancelled task), in a worker that runs jobs in-process.

rq's `send_stop_job_command` reaches the worker's command listener thread, which marks the job
as stopped and calls `kill_horse`. A `SimpleWorker` has no horse to kill (jobs run in the worker
process itself, onnxruntime not being fork-safe), so rq's own version does nothing and the job
runs on. Here `kill_horse` sends `STOP_SIGNAL` to the main thread, and while a job runs, the
job's death penalty (the context rq already wraps every job in for its timeout) turns that signal
into `JobStopped` raised inside the job. The signal also interrupts a blocking read, so a job
waiting on a slow server stops at once. Outside a job the signal is ignored.

rq then records the job as STOPPED (never retried); the failure callback sees `JobStopped`.
"""

from __future__ import annotations

import signal
import threading

from rq.timeouts import UnixSignalDeathPenalty

STOP_SIGNAL = signal.SIGUSR1
"""Sent by the command listener thread to the main thread to stop the running job."""

_stop_requested: str | None = None
"""Id of the job a stop was asked for; the job's death penalty raises only for that job."""


class JobStopped(BaseException):
    """The job was stopped on request (its task was cancelled).

    A BaseException, like KeyboardInterrupt, so that a job's `except Exception` does not swallow it.
    """


class StoppableDeathPenalty(UnixSignalDeathPenalty):
    """rq's timeout alarm, plus `JobStopped` when a stop is requested for this job."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._job_id = kwargs.get("job_id")

    def setup_death_penalty(self) -> None:
        super().setup_death_penalty()
        if self._job_id is not None:
            signal.signal(STOP_SIGNAL, self._stop)

    def cancel_death_penalty(self) -> None:
        super().cancel_death_penalty()
        if self._job_id is not None:
            signal.signal(STOP_SIGNAL, signal.SIG_IGN)

    def _stop(self, signum, frame) -> None:
        global _stop_requested
        if _stop_requested is not None and _stop_requested == self._job_id:
            _stop_requested = None
            raise JobStopped(f"job {self._job_id} stopped on request")


class StoppableJobs:
    """Worker mixin: `kill_horse` stops the job running in this process (see the module docstring)."""

    death_penalty_class = StoppableDeathPenalty

    def work(self, *args, **kwargs) -> bool:
        signal.signal(STOP_SIGNAL, signal.SIG_IGN)
        return super().work(*args, **kwargs)

    def kill_horse(self, sig=None) -> None:
        global _stop_requested
        job_id = getattr(self, "_stopped_job_id", None)
        if job_id is None:
            return
        _stop_requested = job_id
        signal.pthread_kill(threading.main_thread().ident, STOP_SIGNAL)
