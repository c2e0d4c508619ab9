"""Exports with committed rows, outside tests/reports (whose tests share one transaction):

- an export whose Celery worker is killed mid-job is finished by the next worker. Real
  processes: two `celery worker` processes against Redis and the test database; the first
  is killed with SIGKILL while it writes the export, the task (acks_late) goes back to the
  queue after the visibility timeout, and the second worker runs the job from the start;
- the exports page in a real browser: the form shows what the chosen kind takes, a running
  export's progress bar moves on its own, and the list survives a reload.
"""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import translation

from accounts.models import User
from config.celery import app
from renovation.models import CaseEvent, CaseEventKind, CaseState, RenovationCase
from reports.models import Export, ExportStatus
from reports.runner import export_run
from reports.services import export_request
from tests.conftest import ARTIFACTS, browser_login
from tests.factories import FamilyMemberFactory, HouseFactory, HouseholdFactory
from tests.inspections.test_celery_worker import _forget_connections, redis_available
from tests.live import stop, wait_for

REDIS_URL = "redis://127.0.0.1:6379/14"
VISIBILITY_S = 2
ROOT = Path(__file__).resolve().parents[1]


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def status_of(pk: int) -> Export:
    return Export.objects.get(pk=pk)


# The workers are other processes: they must see committed rows in a database they can
# open, hence PostGIS and a transactional test.
@pytest.mark.postgis_only
@pytest.mark.django_db(transaction=True)
def test_an_export_whose_worker_is_killed_is_finished_by_the_next_worker(tmp_path, settings):
    if not redis_available():
        pytest.fail("Redis is not running on 127.0.0.1:6379 (make test starts it)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    with override_settings(ANJU_DEMO_PASSWORD="x1" * 6), translation.override("en"):
        call_command("seed_demo", households=60, photos=6, seed=3, stdout=io.StringIO())
    year = (
        RenovationCase.objects.filter(state__in=[CaseState.PAID, CaseState.COMPLETION_PASSED])
        .values_list("funding_year", flat=True)
        .first()
    )
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgis://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/"
        f"{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_S),
        "ANJU_EXPORT_STALE_S": "1",
        "DJANGO_MEDIA_ROOT": str(media),
    }
    log = tmp_path / "workers.log"
    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager", "result_backend")}
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False, result_backend=None)
    _forget_connections()
    workers = []
    try:
        workers.append(start_worker(env, log))
        # Outside any transaction: the task is published as the export is committed.
        export = export_request(
            user=User.objects.get(username="auditor"),
            kind="acceptance",
            format="zip",
            params={"region": "520399", "funding_year": year},
            base_url="http://testserver",
        )
        wait_for(
            lambda: status_of(export.pk).status != ExportStatus.QUEUED,
            60,
            "the first worker",
            log=log,
        )
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        crashed = status_of(export.pk)
        assert crashed.status == ExportStatus.RUNNING and crashed.attempts == 1
        assert crashed.file == ""
        # The message comes back to the queue once its visibility timeout has passed.
        time.sleep(VISIBILITY_S + 1)
        workers.append(start_worker(env, log))
        done = wait_for(
            lambda: (
                (e := status_of(export.pk)).status in (ExportStatus.DONE, ExportStatus.FAILED) and e
            ),
            120,
            "the second worker to finish the export",
            log=log,
        )
        assert done.status == ExportStatus.DONE, done.error + log.read_text()[-3000:]
        assert done.attempts == 2
        assert done.done == done.total
        assert default_storage.exists(done.file)
        assert CaseEvent.objects.filter(kind=CaseEventKind.DOCUMENT).count() == 1
    finally:
        stop(workers)
        app.conf.update(saved)
        _forget_connections()
        connection.close()


def visible(page, name: str) -> bool:
    return page.locator(f'.export-field[data-param="{name}"]').is_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_export_is_asked_for_watched_and_downloaded(page, live_server, regions, county_official):
    for n in range(3):
        household = HouseholdFactory(village=regions["village1"], head_name=f"王{n}")
        HouseFactory(household=household)
        FamilyMemberFactory(household=household)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    browser_login(page, live_server, county_official)
    page.goto(f"{live_server.url}/exports/")
    assert page.locator("h1").inner_text() == "Exports"

    # The form shows only what the chosen kind reads.
    page.select_option("select[name=kind]", "gis_households")
    assert visible(page, "region") and visible(page, "crs")
    assert not visible(page, "funding_year")
    assert page.locator("select[name=format] option:not([disabled])").all_inner_texts() == [
        "GeoPackage",
        "Shapefile (zipped)",
        "KML",
        "GeoJSON",
    ]
    page.select_option("select[name=kind]", "acceptance")
    assert visible(page, "region") and visible(page, "funding_year")
    assert not visible(page, "crs")
    assert page.locator("select[name=format]").input_value() == "pdf"

    # A job the worker has not picked up yet: the page polls it until it is done.
    export = Export.objects.create(
        user=county_official, kind="members", format="csv", params={}, language="en"
    )
    Export.objects.filter(pk=export.pk).update(number=f"AJ-2026-{export.pk:06d}")
    page.reload()
    row = page.locator(f"#export-{export.pk}")
    assert row.get_attribute("data-status") == "queued"
    assert "Queued" in row.inner_text()
    assert row.locator("a", has_text="Download").count() == 0
    export_run(export_id=export.pk)
    page.wait_for_selector(f'#export-{export.pk}[data-status="done"]', timeout=10_000)
    assert row.locator("progress").get_attribute("value") == "100"
    assert "3 / 3" in row.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "exports-page.png"), full_page=True)

    # It is still there after a reload, and downloads.
    page.reload()
    with page.expect_download() as download:
        page.locator(f"#export-{export.pk} a", has_text="Download").click()
    assert download.value.suggested_filename == f"AJ-2026-{export.pk:06d}-members.csv"
    assert Export.objects.get(pk=export.pk).status == ExportStatus.DONE

    assert errors == []
    assert page.external_requests == []


@pytest.mark.postgis_only
@pytest.mark.django_db(transaction=True)
def test_without_a_broker_an_export_runs_in_a_thread_and_the_request_does_not_wait(
    settings, regions, county_official
):
    settings.ANJU_EXPORT_IN_THREAD = True
    for n in range(3):
        HouseFactory(household=HouseholdFactory(village=regions["village1"], head_name=f"李{n}"))
    export = export_request(
        user=county_official, kind="households", format="csv", params={"filters": {}}
    )
    # Committed (no transaction here): the thread has been started and runs on its own.
    done = wait_for(
        lambda: (
            (e := status_of(export.pk)).status in (ExportStatus.DONE, ExportStatus.FAILED) and e
        ),
        30,
        "the export's thread",
    )
    assert done.status == ExportStatus.DONE, done.error
    assert done.done == done.total == 3
    assert default_storage.exists(done.file)
