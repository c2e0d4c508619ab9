import contextlib
import os
import shutil
from pathlib import Path

import pytest

# shapely first: if Django's system GEOS is loaded before shapely's bundled one, shapely's
# WKB writer fails ("WKB output dimension must be 2 or 3").
import shapely  # noqa: F401
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import translation

from accounts.models import Role
from tests.factories import HouseFactory, HouseholdFactory, UserFactory, make_region, square
from tests.housing.known import make_known

# Playwright's sync API runs an event loop in the test thread; the ORM calls that tests make
# around it are still synchronous, so Django's async-safety guard does not apply.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def is_postgis() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    if "spatialite" in os.environ.get("DATABASE_URL", "spatialite") or not os.environ.get(
        "DATABASE_URL"
    ):
        skip = pytest.mark.skip(reason="needs PostGIS")
        once = pytest.mark.skip(reason="independent of the database: run on PostGIS")
        for item in items:
            if "postgis_only" in item.keywords:
                item.add_marker(skip)
            elif "once" in item.keywords:
                item.add_marker(once)


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    """Uploaded and generated files go to a fresh folder per test: real files, no leftovers.

    Password hashing is made cheap: the real hasher costs most of a second per test user.
    """
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Exports run as Celery tasks (eager), as with a broker, not in a thread of their own.
    settings.ANJU_EXPORT_IN_THREAD = False
    # API throttles count in the cache: every test starts with none of its requests counted.
    # (Failed logins are rows in the database, rolled back with the test.)
    cache.clear()
    # A request with Accept-Language leaves its language active in the thread: start and
    # end every test in English so that message assertions do not depend on test order.
    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture(scope="class")
def class_rows(django_db_setup, django_db_blocker):
    """Rows that the tests of one class share: built once, rolled back after the last test.

    A class-scoped fixture that asks for this builds its rows in an open transaction. Each
    test still asks for `db`, which runs it in a savepoint inside, so what a test writes is
    undone after it as usual; the shared rows go when the class ends (Django's setUpTestData).
    For data slow to build, such as seed_demo's county.
    """
    with shared_rows(django_db_blocker):
        yield


@contextlib.contextmanager
def shared_rows(django_db_blocker):
    """An open transaction for rows that several tests share, rolled back at the end (for
    class_rows, and for fixtures of a wider scope such as tests/reports' package_rows)."""
    with django_db_blocker.unblock():
        shared = transaction.atomic()
        shared.__enter__()
        try:
            yield
        finally:
            transaction.set_rollback(True)
            shared.__exit__(None, None, None)


@pytest.fixture
def regions(db):
    """A small tree: province 52 > city 5203 > county 520399 > townships 100, 101 > villages."""
    county = make_region("520399", "安居示范县", boundary=square(107.9, 27.2, 0.2))
    t1 = make_region("520399100", "龙溪镇", boundary=square(107.9, 27.2, 0.1))
    t2 = make_region("520399101", "白泥镇", boundary=square(108.0, 27.2, 0.1))
    v1 = make_region("520399100200", "青山村", boundary=square(107.9, 27.2, 0.05))
    v2 = make_region("520399101200", "河坝村", boundary=square(108.0, 27.2, 0.05))
    return {"county": county, "township1": t1, "township2": t2, "village1": v1, "village2": v2}


@pytest.fixture
def households(regions):
    """One household with a current house in each village."""
    h1 = HouseFactory(household=HouseholdFactory(village=regions["village1"])).household
    h2 = HouseFactory(household=HouseholdFactory(village=regions["village2"])).household
    return {"village1": h1, "village2": h2}


@pytest.fixture
def known(regions):
    """A household in village 1 with known ID numbers, a current house and one member."""
    return make_known(regions)


@pytest.fixture
def make_user(db):
    def make(role=Role.INSPECTOR, regions=(), **kwargs):
        return UserFactory(role=role, regions=list(regions), **kwargs)

    return make


@pytest.fixture
def township_official(make_user, regions):
    return make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]], username="township1")


@pytest.fixture
def county_official(make_user, regions):
    return make_user(Role.COUNTY_OFFICIAL, [regions["county"]], username="county")


@pytest.fixture
def administrator(make_user):
    return make_user(Role.ADMINISTRATOR, username="admin")


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright: headless, no sandbox, nothing from outside."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser page that refuses every request not to the live server."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    external = []

    def guard(route):
        if route.request.url.startswith(live_server.url) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.external_requests = external
    yield page
    context.close()


def browser_login(page, live_server, user, password="test-pass-123", path="/login/"):
    """Log in through a real form: ours at /login/, or the admin's at /admin/login/."""
    page.goto(f"{live_server.url}{path}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", password)
    page.click("[type=submit]")
    page.wait_for_load_state()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server for this pytest process (tests/s3.py), started when first asked for."""
    from tests import s3

    server = s3.start()
    yield server
    server.server.stop()


@pytest.fixture
def s3(s3_server, settings):
    """The default storage is the test S3 bucket for this test, found empty (tests/s3.py)."""
    from tests import s3 as s3_module

    s3_server.empty()
    for name, value in s3_module.storage_settings(s3_server).items():
        setattr(settings, name, value)
    return s3_server
