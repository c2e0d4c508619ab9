#!/usr/bin/env python
"""Benchmark: N inspectors uploading 12 MP phone photos at once to gunicorn on loopback.

    DATABASE_URL=$(bash scripts/ensure_postgis.sh) .venv/bin/python bench/bench_uploads.py \
        [--uploaders 4,16,50] [--photos-each 1] [--celery-concurrency 2] [--keep-media]

Needs a PostGIS server (DATABASE_URL; the database it names is never touched) and Redis on
127.0.0.1:6379 (database 9 is used as the broker and emptied). The bench creates
`anju_bench_uploads`, migrates it, and makes one household and one inspector (with a token
and a visit to that household) per uploader. It then starts the production setup as
`make serve` does: gunicorn with config/gunicorn.conf.py (DEBUG off) and a Celery worker
(`--concurrency`, run under SCHED_IDLE (`chrt --idle`) so that acknowledging uploads comes
first, as it would with workers on machines of their own), media in a temporary folder.

For each N in --uploaders, N threads each POST --photos-each different 4000x3000 JPEGs
(~3.4 MB, EXIF time and GPS, as a phone writes them) to /api/inspections/<uuid>/photos/,
all released at the same instant, and the bench waits until the worker has processed
every photo. It prints per N:

  acknowledgements (201) and errors (anything else, or a connection failure),
  p50 / p95 / max acknowledgement time (request sent to answer read),
  photos processed (ready or failed, none left pending) and the time to drain the queue,
  CPU-seconds per photo in gunicorn (the request) and in the worker (the processing),
  read from /proc for each process tree,
  and the ratio p95 / the 1-uploader p95 measured first in the same run (the baseline:
  one photo alone on an idle server), and p95 against the goal (<= 1 s at 50).
"""

import argparse
import contextlib
import http.client
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.throwaway_db import ThrowawayDatabase  # noqa: E402

BROKER = "redis://127.0.0.1:6379/9"
GOAL_P95_S = 1.0
TICKS = os.sysconf("SC_CLK_TCK")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploaders", default="4,16,50", help="Comma-separated N values.")
    parser.add_argument("--photos-each", type=int, default=1, help="Photos per uploader.")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--gunicorn-workers", type=int, default=0, help="0: the config's.")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--keep-media", action="store_true")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_photos(count: int) -> list[bytes]:
    """`count` different phone-like 12 MP JPEGs (distinct pictures: no reuse flags)."""
    import datetime

    from PIL import Image, ImageFilter

    from tests.inspections import images

    base = images.house_picture(2026, size=(4000, 3000))
    noise = Image.effect_noise((4000, 3000), 24).convert("RGB")
    textured = Image.blend(base, noise, 0.12).filter(ImageFilter.SMOOTH)
    photos = []
    for i in range(count):
        picture = textured.rotate(i * 7 % 360, fillcolor=(90 + i * 13 % 120, 120, 140))
        exif = images.make_exif(
            taken_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5),
            lat=27.2051,
            lon=107.9051,
            accuracy=4.0,
            orientation=1,
        )
        photos.append(images.jpeg(picture, exif=exif, quality=92))
    return photos


def proc_tree_cpu(root_pid: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants, living or reaped."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(entry)
        stats[pid] = fields
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        fields = stats.get(pid)
        if fields is None:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after pid and comm.
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
        todo.extend(children.get(pid, []))
    return total / TICKS


def multipart(fields: dict, file_bytes: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(f"{value}\r\n".encode())
    out.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="IMG.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
    )
    out.write(file_bytes)
    out.write(f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


ANGLES = ["front", "left", "right", "back", "roof", "interior", "structure", "other"]


def upload_round(port, uploaders, photos, photos_each):
    """Every uploader posts its photos at the same instant; returns (latencies, errors, ids)."""
    bodies = []
    for i, (token, inspection_uuid) in enumerate(uploaders):
        mine = []
        for j in range(photos_each):
            client_uuid = uuid.uuid4()
            body, ctype = multipart(
                {"client_uuid": client_uuid, "stage": "before", "angle": ANGLES[j % len(ANGLES)]},
                photos[(i * photos_each + j) % len(photos)],
            )
            mine.append((client_uuid, body, ctype))
        bodies.append((token, inspection_uuid, mine))
    barrier = threading.Barrier(len(bodies))
    latencies, errors, acknowledged = [], [], []
    lock = threading.Lock()

    def run(token, inspection_uuid, mine):
        barrier.wait()
        for client_uuid, body, ctype in mine:
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
                conn.request(
                    "POST",
                    f"/api/inspections/{inspection_uuid}/photos/",
                    body=body,
                    headers={"Authorization": f"Token {token}", "Content-Type": ctype},
                )
                response = conn.getresponse()
                text = response.read()
                conn.close()
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status == 201:
                        latencies.append(elapsed)
                        acknowledged.append(str(client_uuid))
                    else:
                        errors.append(f"{response.status}: {text[:200]!r}")
            except OSError as error:
                with lock:
                    errors.append(f"connection: {error}")

    threads = [threading.Thread(target=run, args=b) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, acknowledged


def machine_busy_s() -> float:
    """CPU-seconds the whole machine spent busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICKS


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def wait_processed(client_uuids, timeout):
    from inspections.models import Photo, PhotoStatus

    started = time.perf_counter()
    while True:
        pending = Photo.objects.filter(
            client_uuid__in=client_uuids, status=PhotoStatus.PENDING
        ).count()
        if pending == 0 or time.perf_counter() - started > timeout:
            done = Photo.objects.filter(client_uuid__in=client_uuids).exclude(
                status=PhotoStatus.PENDING
            )
            failed = done.filter(status=PhotoStatus.FAILED).count()
            return done.count(), failed, pending, time.perf_counter() - started
        time.sleep(0.25)


def seed(count: int):
    """`count` inspectors, each with a token and a visit to a household of one village."""
    from rest_framework.authtoken.models import Token

    from tests.factories import HouseFactory, UserFactory, make_region
    from tests.inspections.factories import InspectionFactory

    village = make_region("520399100200")
    made = []
    for i in range(count):
        house = HouseFactory(household__village=village)
        user = UserFactory(username=f"bench-inspector-{i}", regions=[village])
        inspection = InspectionFactory(inspector=user, house=house)
        token, _ = Token.objects.get_or_create(user=user)
        made.append((token.key, str(inspection.client_uuid)))
    return made


def main():
    args = parse_args()
    counts = [int(n) for n in args.uploaders.split(",") if n.strip()]
    url = os.environ.get("DATABASE_URL", "")
    db = ThrowawayDatabase(url=url, name="anju_bench_uploads", bench="bench_uploads")
    media = Path(tempfile.mkdtemp(prefix="anju-bench-uploads-"))
    env = {
        **os.environ,
        "DATABASE_URL": db.django_url,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_HSTS_SECONDS": "0",
        "DJANGO_MEDIA_ROOT": str(media),
        "DJANGO_STATIC_ROOT": str(media / "static"),
        "GUNICORN_ACCESS_LOG": "/dev/null",
        "CELERY_BROKER_URL": BROKER,
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    processes = []
    try:
        db.create()
        print(f"bench_uploads: migrating {db.name}", flush=True)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            env=env,
            check=True,
            cwd=ROOT,
        )
        # DEBUG off serves hashed static names: collect them first, as `make serve` does.
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            env=env,
            check=True,
            cwd=ROOT,
        )
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_MEDIA_ROOT")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        import redis

        redis.Redis.from_url(BROKER).flushdb()
        uploaders = seed(max([*counts, 1]))
        photos = make_photos(min(8, max(counts) * args.photos_each))
        size_mb = statistics.mean(len(p) for p in photos) / 1e6
        print(f"bench_uploads: {len(photos)} distinct 4000x3000 JPEGs, {size_mb:.1f} MB each")

        port = free_port()
        gunicorn = [str(ROOT / ".venv/bin/gunicorn")]
        conf = ROOT / "config" / "gunicorn.conf.py"
        if conf.exists():
            gunicorn += ["-c", str(conf)]
        gunicorn += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
        if args.gunicorn_workers:
            gunicorn += ["--workers", str(args.gunicorn_workers)]
        gunicorn += ["config.wsgi:application"]
        web = subprocess.Popen(gunicorn, env=env, cwd=ROOT, start_new_session=True)
        worker = subprocess.Popen(
            [
                # SCHED_IDLE: the worker runs only on CPU time the web processes leave.
                "chrt",
                "--idle",
                "0",
                str(ROOT / ".venv/bin/celery"),
                "-A",
                "config",
                "worker",
                "--concurrency",
                str(args.celery_concurrency),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=env,
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
        )
        processes = [web, worker]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/login/")
                conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.3)
        else:
            sys.exit("bench_uploads: gunicorn did not answer in 60 s")
        time.sleep(2)  # the worker connects to the broker

        print(
            f"gunicorn: {conf.name if conf.exists() else 'defaults'}, "
            f"celery: concurrency {args.celery_concurrency} (SCHED_IDLE); {os.cpu_count()} cores"
        )
        header = (
            f"{'N':>4} {'acks':>5} {'errs':>4} {'p50 s':>7} {'p95 s':>7} {'max s':>7} "
            f"{'processed':>9} {'drain s':>8} {'web cpu/ph':>10} {'wrk cpu/ph':>10} "
            f"{'p95/base':>8} {'p95/goal':>8}"
        )
        # Warm every gunicorn worker and the Celery worker (imports, connections): the
        # first request a process serves costs far more than the next ones.
        for _ in range(2):
            _, _, acked = upload_round(port, uploaders[:8], photos, 1)
            wait_processed(acked, args.drain_timeout)
        baseline = None
        rows = []
        for n in [1, *counts]:
            web_cpu0, worker_cpu0 = proc_tree_cpu(web.pid), proc_tree_cpu(worker.pid)
            busy0, client0, wall0 = machine_busy_s(), time.process_time(), time.perf_counter()
            latencies, errors, acked = upload_round(port, uploaders[:n], photos, args.photos_each)
            web_cpu1, worker_cpu_round = proc_tree_cpu(web.pid), proc_tree_cpu(worker.pid)
            busy = machine_busy_s() - busy0
            client_cpu, wall = time.process_time() - client0, time.perf_counter() - wall0
            processed, failed, pending, drain = wait_processed(acked, args.drain_timeout)
            worker_cpu1 = proc_tree_cpu(worker.pid)
            total = n * args.photos_each
            p95 = percentile(latencies, 0.95)
            if baseline is None:
                baseline = p95
                print(f"baseline (1 uploader, idle server): p95 {p95:.3f} s")
                print(header)
                continue
            rows.append(
                f"{n:>4} {len(acked):>5} {len(errors):>4} {percentile(latencies, 0.5):>7.3f} "
                f"{p95:>7.3f} {max(latencies, default=float('nan')):>7.3f} "
                f"{processed:>4}/{total:<4} {drain:>8.1f} "
                f"{(web_cpu1 - web_cpu0) / max(1, total):>10.3f} "
                f"{(worker_cpu1 - worker_cpu0) / max(1, total):>10.3f} "
                f"{p95 / baseline:>7.1f}x {p95 / GOAL_P95_S:>7.2f}x"
            )
            print(rows[-1], flush=True)
            print(
                f"     the round took {wall:.2f} s; the machine was busy {busy:.2f} CPU-s of "
                f"{wall * (os.cpu_count() or 1):.2f} (gunicorn {web_cpu1 - web_cpu0:.2f}, "
                f"the worker {worker_cpu_round - worker_cpu0:.2f}, "
                f"this load generator {client_cpu:.2f})"
            )
            if failed or pending:
                print(f"     {failed} failed, {pending} still pending")
            for error in errors[:5]:
                print(f"     error: {error}")
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be set up yet
            pass
        db.drop()
        if not args.keep_media:
            shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
