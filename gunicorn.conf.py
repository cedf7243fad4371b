"""gunicorn settings for the web dyno (`gunicorn wsgi:app --config gunicorn.conf.py`).

gthread workers: a slow client or a long-lived event stream holds a thread, not a process.
"""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# 4 threads: measured best on 2 cores with 2 processes (bench/api_load.py, docs/PERFORMANCE.md);
# more threads per process lose throughput to GIL contention.
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
accesslog = None
preload_app = False
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "0"))
max_requests_jitter = 100
control_socket_disable = True

# HTTP metrics are summed across this server's worker processes (prometheus_client multiprocess).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="shopimage-prom-")


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
