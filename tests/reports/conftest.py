"""The demo county, seeded once for the tests of this package, with its photos in a folder of
its own, and a way to run an export as the worker would.

Seeding costs seconds, so it is done once per package (per xdist worker, each time the
worker enters the package) inside a transaction rolled back when it leaves; each test runs
in a savepoint inside, as usual. Tests that need committed rows (a real worker, a browser)
cannot run inside that transaction: they live outside this package (tests/test_exports_live.py).
"""

import io
from dataclasses import dataclass

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import override_settings
from django.utils import translation

from accounts.models import User
from housing.models import Household
from reports.models import Export
from reports.runner import export_run
from reports.services import export_request
from tests.conftest import shared_rows

DEMO_PASSWORD = "demo-pass-for-tests-26"
DEMO_HOUSEHOLDS = 120
DEMO_PHOTOGRAPHED = 12


@dataclass
class DemoCounty:
    inspector: User
    township: User
    county: User
    auditor: User
    admin: User

    @property
    def users(self) -> dict[str, User]:
        return {
            "inspector": self.inspector,
            "township": self.township,
            "county": self.county,
            "auditor": self.auditor,
            "admin": self.admin,
        }


@pytest.fixture(scope="package")
def demo_media(tmp_path_factory):
    return tmp_path_factory.mktemp("demo-media")


@pytest.fixture(scope="package")
def package_rows(django_db_setup, django_db_blocker):
    """Like tests/conftest.py's class_rows, for the whole package."""
    with shared_rows(django_db_blocker):
        yield


@pytest.fixture(scope="package")
def demo_county_once(package_rows, demo_media):
    """seed_demo's county (120 households, 12 photographed, cases in every state), built
    once for the package's tests and rolled back after them."""
    with (
        override_settings(
            MEDIA_ROOT=demo_media,
            ANJU_DEMO_PASSWORD=DEMO_PASSWORD,
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ),
        translation.override("en"),
    ):
        call_command(
            "seed_demo",
            households=DEMO_HOUSEHOLDS,
            photos=DEMO_PHOTOGRAPHED,
            seed=11,
            stdout=io.StringIO(),
        )
    return True


@pytest.fixture
def demo_county(demo_county_once, db, settings, demo_media) -> DemoCounty:
    # The photos are where the seed stored them; exports are stored there too.
    settings.MEDIA_ROOT = demo_media
    return DemoCounty(
        **{
            name: User.objects.get(username=name)
            for name in ("inspector", "township", "county", "auditor", "admin")
        }
    )


def run_export(user, kind: str, fmt: str, *, language: str = "en", **params) -> Export:
    """Ask for an export and run its job as the worker would (on_commit callbacks do not
    fire inside a test's transaction, so the job is run here instead)."""
    with translation.override(language):
        export = export_request(
            user=user, kind=kind, format=fmt, params=params, base_url="http://testserver"
        )
    export_run(export_id=export.pk)
    export.refresh_from_db()
    return export


def export_bytes(export: Export) -> bytes:
    with default_storage.open(export.file, "rb") as handle:
        return handle.read()


def a_household_outside(user) -> Household:
    """A household of the demo county outside the user's regions (for scope tests)."""
    from accounts.scoping import region_q

    q = region_q(user, "village__code")
    return Household.objects.exclude(q).order_by("id").first() if q is not None else None
