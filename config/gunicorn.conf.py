"""gunicorn's settings for Anju: `gunicorn -c config/gunicorn.conf.py` (make serve, deploys).

Every value can be changed from the environment (GUNICORN_*), listed in .env.example and
README.md. docs/deploy.md puts a proxy (nginx) in front: it terminates TLS, serves nothing
itself, and buffers each upload whole before passing it on, so a 25 MB photo sent over a
slow phone connection occupies nginx for minutes, not a gunicorn thread.
"""

import multiprocessing
import os
from pathlib import Path

import environ

# The same .env file Django's settings read, so GUNICORN_* kept there count too; the process
# environment wins over the file, as in config/settings.py.
environ.Env.read_env(Path(__file__).resolve().parent.parent / ".env", overwrite=False)


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


wsgi_app = "config.wsgi:application"

# Where to listen: host:port, or unix:/run/anju/gunicorn.sock next to the proxy.
bind = [os.environ.get("GUNICORN_BIND", "").strip() or "127.0.0.1:8000"]

# Worker processes: gunicorn's rule of thumb, 2 x cores + 1.
workers = _int("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count() + 1)
# Threads per worker: a request waiting on the database, storage or a tile fetch does not
# hold a whole process. gthread also keeps the worker's heartbeat going while a thread reads
# a slow upload, so a long upload without a buffering proxy is not killed as a hung worker.
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)

# A worker silent for this long is killed and replaced (seconds). Uploads reach us already
# buffered by the proxy, and exports run as background jobs, so no request should come near it.
timeout = _int("GUNICORN_TIMEOUT", 120)
# On restart or SIGTERM, requests in progress get this long to finish (seconds).
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Keep-alive with the proxy (seconds): nginx reuses connections to us.
keepalive = 5

# Restart each worker after about this many requests (0: never): whatever a worker leaks
# (GDAL, image libraries) is returned. The jitter keeps workers from restarting together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# The heartbeat file is written on every request: keep it in memory, not on a slow disk
# (Docker's overlay file systems make a worker look hung).
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# The proxies whose X-Forwarded-Proto/-For gunicorn believes (comma-separated IPs, "*" for
# any: only when nothing but the proxy can reach gunicorn). Behind them a request that came
# in over HTTPS is https to Django, so SSL redirects and secure cookies work.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "").strip() or "127.0.0.1,::1"

# Access log on stdout, error log on stderr (the service manager keeps them). Path without
# its query string and no referrer: searches carry people's names and archive numbers.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "").strip() or "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "").strip() or "info"
access_log_format = (
    '%(h)s forwarded-for=%({x-forwarded-for}i)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s '
    '%(M)sms "%(a)s"'
)

# gunicorn's runtime-control socket lives at one fixed path per user: two servers on one
# machine (make serve, the tests) would fight over it. Nothing here uses it.
control_socket_disable = True
proc_name = "anju"
