"""Schemathesis against the API's own OpenAPI schema: no input may make a server error.

The schema is the one GET /api/schema/ serves (drf-spectacular's generator); requests go
through the WSGI app in process, against the test database with a small county in it, as
three roles (county official, township official, inspector: their queries are scoped
differently). Every operation, reads and writes, gets a bounded number of generated cases,
valid and invalid (schemathesis' positive and negative modes: wrong types, numbers past
any bound, missing fields), with the one check that matters here: nothing answers 5xx.
Writing to the test database is fine: each test's writes are rolled back.

What it found once stays as a concrete regression test (tests/*/test_input_bounds.py).
ANJU_FUZZ_EXAMPLES sets the cases per operation and role (PostGIS; SpatiaLite runs a third
as many: its only extra holes were integer overflows, which those tests pin down).
"""

import json
import os

import pytest
import schemathesis
from django.core import signals
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from config.wsgi import application
from renovation.models import CaseState
from tests.conftest import shared_rows
from tests.factories import HouseFactory, HouseholdFactory, make_region, square
from tests.housing.known import make_known
from tests.renovation.factories import case_in_state, eligible_house

ON_POSTGIS = os.environ.get("DATABASE_URL", "").startswith("postgis")
EXAMPLES = int(os.environ.get("ANJU_FUZZ_EXAMPLES", "10"))
if not ON_POSTGIS:
    EXAMPLES = max(1, EXAMPLES // 3)


def _load_schema():
    """The schema GET /api/schema/ serves, made at collection time (schemathesis makes one
    test per operation from it), its requests sent to the WSGI app."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(document, cls=DjangoJSONEncoder)))
    loaded.app = application
    loaded.config.generation.update(max_examples=EXAMPLES, deterministic=True, database="none")
    return loaded


schema = _load_schema()


@pytest.fixture(scope="module")
def tokens(django_db_setup, django_db_blocker):
    """A county with households, a case and the three roles' tokens, built once for the
    module (each test still runs in its own savepoint)."""
    fast_passwords = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
    )
    with shared_rows(django_db_blocker), fast_passwords:
        make_region("520399", "安居示范县", boundary=square(107.9, 27.2, 0.2))
        regions = {
            "township1": make_region("520399100", "龙溪镇", boundary=square(107.9, 27.2, 0.1)),
            "village1": make_region("520399100200", "青山村", boundary=square(107.9, 27.2, 0.05)),
            "village2": make_region("520399101200", "河坝村", boundary=square(108.0, 27.2, 0.05)),
        }
        for village in ("village1", "village2"):
            HouseFactory(household=HouseholdFactory(village=regions[village]))
        make_known(regions)
        house = eligible_house(household=HouseholdFactory(village=regions["village1"]))
        team = case_in_state(CaseState.APPLIED, house=house, photos=False).team
        yield {
            role: Token.objects.get_or_create(user=team[role])[0].key
            for role in ("county", "township", "inspector")
        }


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """The WSGI handler closes the database connection after each request, which would end
    the test's transaction; Django's test client skips that the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _no_throttles(settings):
    # Hundreds of requests a minute per user: the rate limits would answer most with 429.
    settings.ANJU_API_USER_RATE = settings.ANJU_API_ANON_RATE = settings.ANJU_API_TOKEN_RATE = ""


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["county", "township", "inspector"])
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_input_makes_a_server_error(case, tokens, role):
    case.call_and_validate(
        headers={"Authorization": f"Token {tokens[role]}"}, checks=[not_a_server_error]
    )


# Pagination parses these itself: a page past the last is a 404, a page size past the
# maximum is the maximum (tests/housing/test_input_bounds.py). A path id that no row has
# is a 404 like any other.
UNBOUNDED_ALLOWED = {"page", "page_size"}


def _integer_inputs(document: dict):
    """(where, schema) of every integer a client sends: query parameters and request bodies."""
    components = document["components"]["schemas"]

    def walk(node, where, seen):
        if isinstance(node, list):
            for item in node:
                yield from walk(item, where, seen)
            return
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                yield from walk(components[name], where, seen | {name})
            return
        if node.get("type") == "integer" and not node.get("readOnly"):
            yield where, node
        for name, prop in node.get("properties", {}).items():
            yield from walk(prop, f"{where}.{name}", seen)
        for key in ("items", "allOf", "oneOf", "anyOf"):
            if key in node:
                yield from walk(node[key], where, seen)

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] not in UNBOUNDED_ALLOWED:
                    yield from walk(
                        parameter["schema"], f"{method} {path} ?{parameter['name']}", set()
                    )
            for content in operation.get("requestBody", {}).get("content", {}).values():
                yield from walk(content["schema"], f"{method} {path} body", set())


def test_every_integer_input_in_the_schema_is_bounded():
    # An integer without a maximum reaches the database as it came: past 2^63-1 that was a
    # 500 on SQLite. With both bounds in the schema, schemathesis' coverage phase sends
    # each bound plus and minus one, above, on every run.
    document = SchemaGenerator().get_schema(request=None, public=True)
    inputs = list(_integer_inputs(document))

    unbounded = [where for where, node in inputs if "minimum" not in node or "maximum" not in node]

    assert len(inputs) > 10
    assert unbounded == []
