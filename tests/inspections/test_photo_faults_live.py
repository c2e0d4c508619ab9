"""Every acknowledged photo finishes (issue 11), with real processes: Redis, `celery worker`
processes and PostgreSQL, against committed rows (hence PostGIS and transactional tests).

- the broker stopped: an upload still answers 201, the photo waits pending, the sweep
  queues it again once the broker is back;
- with a broker the upload only checks the header: a damaged image is accepted and ends
  "failed", with the reason, in the worker;
- a worker killed (SIGKILL) mid-task: acks_late and reject_on_worker_lost leave the message
  in Redis, it comes back after the visibility timeout and the next worker processes it;
- PostgreSQL stopped mid-burst, as the worker sees it: the worker reaches the database
  through a TCP relay in this test, which is closed (every connection cut, the port
  refusing) and opened again. The test's own connection goes straight to the server, so
  the test database is not lost; what fails for the worker is real (connection refused,
  connection reset), only the server process keeps running. The worker's tasks retry with
  back-off and every photo ends ready.
"""

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Role
from config.celery import app
from inspections.models import Photo, PhotoStatus
from inspections.photos import photo_upload
from tests.inspections import images
from tests.inspections.factories import InspectionFactory, stored_files
from tests.inspections.test_celery_worker import _forget_connections, redis_available
from tests.live import free_port, stop, wait_for

pytestmark = [pytest.mark.postgis_only, pytest.mark.django_db(transaction=True)]

# A Redis database per pytest-xdist worker (13, 12, 11, ...): two of these tests running at
# once must not flush or consume each other's messages. (14 and 15 are the other live tests'.)
_XDIST = os.environ.get("PYTEST_XDIST_WORKER", "gw-1")
REDIS_URL = f"redis://127.0.0.1:6379/{12 - int(_XDIST.removeprefix('gw'))}"
VISIBILITY_S = 2
ROOT = Path(__file__).resolve().parents[2]
WORKER_OPTIONS = ["--pool=solo", "--without-heartbeat", "--without-gossip", "--without-mingle"]
WORKER_OPTIONS += ["-l", "info"]


def use_broker(url: str) -> None:
    app.conf.update(broker_url=url, task_always_eager=False, result_backend=None)
    _forget_connections()


@pytest.fixture
def broker():
    """The Celery app of this process publishes to ``url`` (Redis by default) for one test."""
    if not redis_available():
        pytest.fail("Redis is not running on 127.0.0.1:6379 (make test starts it)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager", "result_backend")}
    use_broker(REDIS_URL)
    yield use_broker
    app.conf.update(saved)
    _forget_connections()
    connection.close()


@pytest.fixture
def workers(tmp_path, settings):
    """Start `celery worker` processes (solo pool) on the test database; all ended after."""
    started: list[subprocess.Popen] = []
    log = tmp_path / "workers.log"
    db = connection.settings_dict

    def start(*, db_port=None) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": f"postgis://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}"
            f":{db_port or db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_S),
            "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", *WORKER_OPTIONS],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        started.append(worker)
        return worker

    start.log = log
    yield start
    stop(started)


@pytest.fixture
def inspection(households, make_user, regions):
    inspector = make_user(Role.INSPECTOR, [regions["township1"]])
    return InspectionFactory(house=households["village1"].houses.get(), inspector=inspector)


def upload(inspection, data, *, angle="front", stage="before"):
    photo, created = photo_upload(
        user=inspection.inspector,
        inspection=inspection,
        client_uuid=uuid.uuid4(),
        stage=stage,
        angle=angle,
        file=SimpleUploadedFile("IMG.jpg", data, content_type="image/jpeg"),
    )
    assert created
    return photo


def statuses(photos) -> list[str]:
    return list(
        Photo.objects.filter(pk__in=[p.pk for p in photos]).values_list("status", flat=True)
    )


def referenced_files() -> list[str]:
    names = []
    for photo in Photo.objects.all():
        names += [f.name for f in (photo.original, photo.display, photo.thumbnail) if f]
    return sorted(names)


def test_with_the_broker_down_the_upload_answers_201_and_the_sweep_queues_it_later(
    broker, workers, inspection, caplog
):
    # Nothing listens on this port: every publish is refused.
    broker(f"redis://127.0.0.1:{free_port()}/0")
    client = APIClient()
    client.force_login(inspection.inspector)
    started = time.monotonic()
    response = client.post(
        f"/api/inspections/{inspection.client_uuid}/photos/",
        {
            "client_uuid": str(uuid.uuid4()),
            "stage": "before",
            "angle": "front",
            "file": SimpleUploadedFile("IMG.jpg", images.jpeg(seed=51), content_type="image/jpeg"),
        },
        format="multipart",
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"
    assert elapsed < 5
    photo = Photo.objects.get()
    assert photo.status == PhotoStatus.PENDING
    assert f"photo {photo.pk}: could not be queued for processing; left pending" in caplog.text

    # The broker is back, and a worker: the sweep queues the photo again.
    broker(REDIS_URL)
    workers()
    call_command("photos_requeue", older_than=0)
    wait_for(lambda: statuses([photo]) == [PhotoStatus.READY], 60, "the photo", log=workers.log)
    assert stored_files() == referenced_files()
    assert len(stored_files()) == 3


def test_with_a_broker_a_damaged_image_is_accepted_and_ends_failed_in_the_worker(
    broker, workers, inspection
):
    workers()
    photo = upload(inspection, images.corrupt_jpeg())  # the request decodes no pixel
    assert photo.status == PhotoStatus.PENDING
    wait_for(lambda: statuses([photo]) != [PhotoStatus.PENDING], 60, "the worker", workers.log)
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.FAILED
    assert [flag["detail"] for flag in photo.flags] == [
        "The photo could not be processed: the image cannot be decoded (image file is "
        "truncated (52 bytes not processed))."
    ]
    assert stored_files() == [f"photos/original/{photo.key}"]


def waiting_for_a_lock(database: str) -> int:
    """Sessions of the database waiting for a lock (asked from this test's own connection,
    in autocommit: a transaction would see one snapshot of pg_stat_activity)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [database],
        )
        return cursor.fetchone()[0]


def test_a_photo_whose_worker_is_killed_mid_task_is_processed_by_the_next_worker(
    broker, workers, inspection
):
    photo = upload(inspection, images.jpeg(seed=61))  # queued; no worker runs yet
    db = connection.settings_dict
    blocker = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"],
        dbname=db["NAME"],
    )
    try:
        # Hold the photo's row: the worker does the image work, then waits for this lock
        # with its task taken and not acknowledged; it is killed right there.
        blocker.execute("SELECT id FROM inspections_photo WHERE id = %s FOR UPDATE", [photo.pk])
        first = workers()
        wait_for(
            lambda: waiting_for_a_lock(db["NAME"]),
            60,
            "the first worker to wait for the photo's row",
            log=workers.log,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        blocker.rollback()
        blocker.close()
    assert statuses([photo]) == [PhotoStatus.PENDING]
    assert stored_files() == [f"photos/original/{photo.key}"]
    # The message comes back to the queue once its visibility timeout has passed.
    time.sleep(VISIBILITY_S + 1)
    workers()
    wait_for(lambda: statuses([photo]) == [PhotoStatus.READY], 60, "the next worker", workers.log)
    assert stored_files() == referenced_files()
    assert len(stored_files()) == 3
    assert Photo.objects.count() == 1


class Relay:
    """A TCP relay to PostgreSQL on a port of its own. ``close()`` cuts every connection and
    stops listening (the port refuses), as a stopped server does; ``open()`` listens again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.listener = None
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would not, and the
            # port would take one more connection.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    # RST, not FIN: what a client sees when the server is killed.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                    sock.close()
                except OSError:
                    pass

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.target)
            with self.lock:
                self.pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            while True:
                for key, _events in selector.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        raise OSError("closed")
                    key.data.sendall(data)
        except (OSError, ValueError):
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
        finally:
            selector.close()


def test_photos_of_a_burst_during_which_postgresql_stops_all_end_ready(broker, workers, inspection):
    db = connection.settings_dict
    relay = Relay((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    relay.open()
    try:
        workers(db_port=relay.port)
        before = [upload(inspection, images.jpeg(seed=70), angle="front")]
        wait_for(lambda: statuses(before) == ["ready"], 60, "the worker", workers.log)

        # PostgreSQL stops (for the worker) mid-burst: the photos are acknowledged, their
        # tasks fail on the database and are retried with back-off.
        relay.close()
        burst = [
            upload(inspection, images.jpeg(seed=71 + n), angle=angle)
            for n, angle in enumerate(["back", "left", "right", "roof"])
        ]
        wait_for(
            lambda: "processing hit a fault" in workers.log.read_text(errors="replace"),
            30,
            "a task to meet the stopped database",
            log=workers.log,
        )
        assert statuses(burst) == ["pending"] * 4
        relay.open()
        wait_for(
            lambda: statuses(burst) == ["ready"] * 4,
            90,
            "every photo of the burst",
            log=workers.log,
        )
    finally:
        relay.close()
    assert Photo.objects.count() == 5
    assert stored_files() == referenced_files()
    assert len(stored_files()) == 15
