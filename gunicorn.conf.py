"""gunicorn settings; every value can be overridden with GLASSBOX_* variables."""

import multiprocessing
import os

bind = f"{os.environ.get('GLASSBOX_HOST', '127.0.0.1')}:{os.environ.get('GLASSBOX_PORT', '8050')}"
workers = int(os.environ.get("GLASSBOX_WORKERS", max(2, min(4, multiprocessing.cpu_count()))))
threads = int(os.environ.get("GLASSBOX_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GLASSBOX_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GLASSBOX_LOG_LEVEL", "info")
# Each worker builds its own app after the fork: no engine or thread is shared.
preload_app = False
max_requests = int(os.environ.get("GLASSBOX_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
forwarded_allow_ips = os.environ.get("GLASSBOX_FORWARDED_ALLOW_IPS", "127.0.0.1")
