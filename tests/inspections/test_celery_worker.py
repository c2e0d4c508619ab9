"""The photo task through a real broker: Redis, and a Celery worker in this process."""

import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile

from config.celery import app
from inspections.models import Photo, PhotoStatus
from inspections.photos import photo_upload
from tests.inspections import images
from tests.inspections.factories import InspectionFactory

REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _forget_connections():
    """Drop the broker connections and producers made earlier for another configuration."""
    app.close()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    app.__dict__.pop("producer_pool", None)


@pytest.fixture
def celery_on_redis():
    """Point the app at Redis, not eager, for one test; put everything back after."""
    if not redis_available():
        pytest.fail("Redis is not running on 127.0.0.1:6379 (make test starts it)")
    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager", "result_backend")}
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False, result_backend=None)
    _forget_connections()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield
    finally:
        app.conf.update(saved)
        _forget_connections()


# The worker runs in another thread with its own connection: it must see committed rows,
# and the SQLite test database lives in one connection's memory. Hence PostGIS only.
@pytest.mark.postgis_only
@pytest.mark.django_db(transaction=True)
def test_an_uploaded_photo_is_processed_by_a_worker_after_commit(celery_on_redis):
    inspection = InspectionFactory()
    photo, created = photo_upload(
        user=inspection.inspector,
        inspection=inspection,
        client_uuid=uuid.uuid4(),
        stage="before",
        angle="front",
        file=SimpleUploadedFile("IMG_0001.jpg", images.jpeg(), content_type="image/jpeg"),
    )
    assert created
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        photo.refresh_from_db()
        if photo.status != PhotoStatus.PENDING:
            break
        time.sleep(0.1)
    assert photo.status == PhotoStatus.READY
    assert photo.display.name == f"photos/display/{photo.key}.jpg"
    assert photo.thumbnail.name == f"photos/thumb/{photo.key}.jpg"
    assert Photo.objects.count() == 1
