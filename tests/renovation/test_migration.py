"""Moving the renovation cases from the inspections app to the renovation app rewrites no data.

inspections 0007 and renovation 0001 only change which app Django thinks owns the case
models: the tables keep their inspections_* names (db_table, and the history tables' names),
and the one data change is the app label of the moved models' content types (so permissions
and admin log entries, which point at content type ids, follow the models).

The test migrates a throw-away database (a new database on the test PostGIS server, or a
SpatiaLite file) to just before the move, fills it with real rows through the historical
models of that state, migrates it across the move and back, and compares every row of every
table of the project's models, the schema of the moved tables and the content types each time.
"""

import copy
import datetime
import hashlib
import uuid
from decimal import Decimal

import psycopg
import pytest
from django.conf import settings
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from psycopg import sql

ALIAS = "migration_probe"

# The two migrations that make the move.
MOVE = {("inspections", "0007_cases_move_to_renovation"), ("renovation", "0001_initial")}

MOVED_MODELS = [
    "arearule",
    "subsidystandard",
    "renovationcase",
    "payment",
    "caseevent",
    "chainhead",
    "historicalarearule",
    "historicalsubsidystandard",
    "historicalrenovationcase",
    "historicalpayment",
]
MOVED_TABLES = sorted(f"inspections_{model}" for model in MOVED_MODELS)

AT = datetime.datetime(2030, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)


class ToTheProbe:
    """Sends the ORM calls that name no database to the probe, while it migrates.

    housing 0002 and inspections 0002/0005 seed their rows through `Model.objects` without
    naming schema_editor's database: in production (one database) the rows land there; here
    they would land in the test database instead.
    """

    def db_for_read(self, model, **hints):
        return ALIAS

    def db_for_write(self, model, **hints):
        return ALIAS


# --- the throw-away database ---------------------------------------------------------


@pytest.fixture(scope="module")
def probe(django_db_setup, tmp_path_factory, django_db_blocker):
    """A new, empty database registered as connections[ALIAS]; dropped afterwards.

    Module-scoped so that the alias exists when pytest-django sets the test up (a test may
    only use the databases it names, and only names that exist); after django_db_setup so
    that pytest-django does not make a test database of it.
    """
    default = settings.DATABASES[DEFAULT_DB_ALIAS]
    postgis = connections[DEFAULT_DB_ALIAS].vendor == "postgresql"
    config = copy.deepcopy(default)
    config.pop("TEST", None)  # the test database's TEST settings are not the probe's
    if postgis:
        config["NAME"] = f"anju_migtest_{uuid.uuid4().hex[:12]}"  # pytest-xdist: one each
    else:
        config["NAME"] = str(tmp_path_factory.mktemp("migration") / "probe.sqlite3")
    try:
        if postgis:
            _create_postgis_database(default, config["NAME"])
        connections.settings[ALIAS] = connections.configure_settings(
            {DEFAULT_DB_ALIAS: copy.deepcopy(default), ALIAS: config}
        )[ALIAS]
        with django_db_blocker.unblock():
            connections[ALIAS].prepare_database()  # postgis, or SpatiaLite's metadata tables
        yield connections[ALIAS]
    finally:
        if ALIAS in connections.settings:
            connections[ALIAS].close()
            del connections[ALIAS]
            del connections.settings[ALIAS]
        if postgis:
            _drop_postgis_database(default, config["NAME"])


def _server(default) -> dict:
    """psycopg's parameters for the test database's server and credentials."""
    params = {
        key: default[setting]
        for key, setting in [("user", "USER"), ("password", "PASSWORD"), ("host", "HOST")]
        if default.get(setting)
    }
    if default.get("PORT"):
        params["port"] = int(default["PORT"])
    return params


def _create_postgis_database(default, name: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **_server(default)) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(dbname=name, autocommit=True, **_server(default)) as new:
        new.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def _drop_postgis_database(default, name: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **_server(default)) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# --- migrating -----------------------------------------------------------------------


def before_the_move(graph) -> list[tuple[str, str | None]]:
    """Every app's latest migration that does not need the move (None: none does)."""
    targets = []
    for app, name in sorted(graph.leaf_nodes()):
        own = [node for node in graph.forwards_plan((app, name)) if node[0] == app]
        clean = [node for node in own if not MOVE & set(graph.forwards_plan(node))]
        targets.append(clean[-1] if clean else (app, None))
    return targets


# The suite runs with --no-migrations, which hides every app's migrations.
WITH_MIGRATIONS = override_settings(MIGRATION_MODULES={})


def migrate(connection, targets):
    """Migrate the probe to `targets`; return the models (historical) there."""
    with WITH_MIGRATIONS, override_settings(DATABASE_ROUTERS=[ToTheProbe()]):
        executor = MigrationExecutor(connection)
        state = executor.migrate(targets)  # the project state at `targets`
        executor.loader.build_graph()  # re-read what is applied
        assert not executor.migration_plan(targets), "the probe did not reach its targets"
    state.clear_delayed_apps_cache()
    return state.apps


def graph_of(connection):
    with WITH_MIGRATIONS:
        return MigrationExecutor(connection).loader.graph


# --- the rows ------------------------------------------------------------------------


def fill(apps, using: str) -> dict:
    """A case with everything it refers to and a row in every moved table; returns ids."""

    def create(label, **values):
        return apps.get_model(label).objects.using(using).create(**values)

    region = None
    for code, level in [
        ("52", "province"),
        ("5203", "city"),
        ("520399", "county"),
        ("520399100", "township"),
        ("520399100200", "village"),
    ]:
        region = create(
            "housing.Region", code=code, name=f"Region {code}", level=level, parent=region
        )
    region.boundary = MultiPolygon(
        Polygon(((107.9, 27.2), (107.95, 27.2), (107.95, 27.25), (107.9, 27.25), (107.9, 27.2))),
        srid=4326,
    )
    region.save(using=using)
    key_group = create("housing.KeyGroup", code="probe_group", name="Probe group")
    household = create(
        "housing.Household",
        archive_no="HH-PROBE-1",
        village=region,
        head_name="户主",
        head_id_number="520399196001010012",
        location=Point(107.905, 27.205, srid=4326),
        location_source="surveyed",
        key_group=key_group,
    )
    house = create(
        "housing.House",
        household=household,
        structure_type="earth_wood",
        storeys=1,
        floor_area=Decimal("72.50"),
        year_built=1985,
        safety_grade="D",
    )
    user = create("accounts.User", username="probe-inspector", password="!", role="inspector")
    inspection = create(
        "inspections.Inspection",
        house=house,
        inspector=user,
        kind="appraisal",
        started_at=AT,
        ended_at=AT + datetime.timedelta(hours=1),
        payload_digest="d" * 64,
    )
    appraisal = create(
        "inspections.Appraisal",
        inspection=inspection,
        site_hazards=["landslide"],
        foundation="dangerous",
        load_bearing_walls="dangerous",
        columns_beams="damaged",
        roof_structure="damaged",
        floors_slabs="sound",
        envelope="sound",
        derived_grade="D",
        grade="D",
        rule_version="probe",
    )
    standard = create(
        "inspections.SubsidyStandard",
        year=2030,
        method="rebuild_same_site",
        amount=Decimal("23456.78"),
        key_group=key_group,
    )
    rule = create("inspections.AreaRule", effective_year=2030, min_per_person=Decimal("14.5"))
    case = create(
        "inspections.RenovationCase",
        state="county_approved",
        entry_grade="D",
        method="rebuild_same_site",
        build_mode="self_built",
        household_size=4,
        planned_floor_area=Decimal("72.00"),
        subsidy_amount=Decimal("23456.78"),
        subsidy_standard=standard,
        funding_year=2030,
        batch="2030-1",
        paid_total=Decimal("10000.00"),
        house=house,
        entry_appraisal=appraisal,
        created_by=user,
        works_inspector=user,
    )
    payment = create(
        "inspections.Payment",
        case=case,
        amount=Decimal("10000.00"),
        paid_on=datetime.date(2030, 5, 6),
        reference="TRE-2030-0001",
        recorded_by=user,
    )
    event_hash = hashlib.sha256(b"the opening of the probe case").hexdigest()
    event = create(
        "inspections.CaseEvent",
        case=case,
        kind="opened",
        to_state="applied",
        at=AT,
        data={"method": "rebuild_same_site", "amount": "23456.78"},
        request_key="probe-request-1",
        prev_hash="0" * 64,
        hash=event_hash,
        actor=user,
    )
    create("inspections.ChainHead", last_hash=event_hash, last_event_id=event.pk)
    history = {
        name: remember(apps, using, row, user)
        for name, row in [("case", case), ("payment", payment), ("standard", standard)]
    }
    remember(apps, using, rule, user)

    ContentType = apps.get_model("contenttypes.ContentType")
    for app_label, model in [("inspections", m) for m in MOVED_MODELS] + [
        ("inspections", "inspection"),
        ("housing", "house"),
    ]:
        ContentType.objects.using(using).create(app_label=app_label, model=model)
    case_type = ContentType.objects.using(using).get(
        app_label="inspections", model="renovationcase"
    )
    permission = create(
        "auth.Permission",
        name="Can approve renovation case",
        content_type=case_type,
        codename="approve_renovationcase",
    )
    user.user_permissions.add(permission)
    create(
        "admin.LogEntry",
        action_time=AT,
        user=user,
        content_type=case_type,
        object_id=str(case.pk),
        object_repr="probe case",
        action_flag=2,
        change_message="[]",
    )
    return {
        "case": case.pk,
        "house": house.pk,
        "appraisal": appraisal.pk,
        "standard": standard.pk,
        "rule": rule.pk,
        "user": user.pk,
        "payment": payment.pk,
        "event": event.pk,
        "event hash": event_hash,
        "case history": history["case"].pk,
        "case content type": case_type.pk,
    }


def remember(apps, using, row, user):
    """The django-simple-history row of `row`'s creation, as HistoricalRecords writes it."""
    History = apps.get_model(row._meta.app_label, f"Historical{row._meta.object_name}")
    values = {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}
    return History.objects.using(using).create(
        **values, history_date=AT, history_type="+", history_user_id=user.pk
    )


def the_case(apps, app_label: str, using: str) -> dict:
    """What the models of `app_label` (inspections or renovation) read of the probe case."""

    def get(model, **lookup):
        return apps.get_model(app_label, model).objects.using(using).get(**lookup)

    case = get("RenovationCase")
    payment = case.payments.get()
    event = case.events.get()
    history = get("HistoricalRenovationCase")
    ContentType = apps.get_model("contenttypes.ContentType")
    case_type = ContentType.objects.using(using).get(app_label=app_label, model="renovationcase")
    return {
        "case": (
            case.pk,
            case.state,
            case.subsidy_amount,
            case.paid_total,
            case.house_id,
            case.entry_appraisal_id,
            case.subsidy_standard_id,
            case.created_by_id,
            case.works_inspector_id,
        ),
        "standard": (case.subsidy_standard.pk, case.subsidy_standard.amount),
        "rule": get("AreaRule", effective_year=2030).min_per_person,
        "payment": (payment.pk, payment.case_id, payment.amount, payment.reference),
        "event": (event.pk, event.case_id, event.hash, event.prev_hash, event.data),
        "chain head": (get("ChainHead").last_hash, get("ChainHead").last_event_id),
        "history": (history.pk, history.id, history.state, history.history_type),
        "content type": case_type.pk,
    }


# --- what the database holds ---------------------------------------------------------


def rows(connection) -> dict[str, list[tuple]]:
    """Every row of every table of the project's models, but the content types."""
    introspection = connection.introspection
    tables = set(introspection.django_table_names(only_existing=True)) - {"django_content_type"}
    with connection.cursor() as cursor:
        found = {}
        for table in sorted(tables):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            found[table] = sorted(cursor.fetchall(), key=repr)
    return found


def content_types(connection) -> dict[int, tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, app_label, model FROM django_content_type")
        return {pk: (app_label, model) for pk, app_label, model in cursor.fetchall()}


def schema(connection) -> dict:
    """The database's table names, and the columns and constraints of the moved tables."""
    introspection = connection.introspection
    with connection.cursor() as cursor:
        return {
            "tables": sorted(introspection.table_names(cursor)),
            **{
                table: (
                    [column.name for column in introspection.get_table_description(cursor, table)],
                    introspection.get_constraints(cursor, table),
                )
                for table in MOVED_TABLES
            },
        }


# --- the test ------------------------------------------------------------------------


# transaction: migrations cannot run inside the test's transaction (SQLite's schema editor
# refuses to). "default" because maps 0001's fill (points.refresh) runs its SQL on the
# default connection whichever database is migrated.
@pytest.mark.django_db(databases=[DEFAULT_DB_ALIAS, ALIAS], transaction=True)
def test_moving_the_cases_to_renovation_and_back_keeps_every_row_table_and_id(probe):
    graph = graph_of(probe)
    before = before_the_move(graph)
    assert ("inspections", "0006_history") in before
    assert ("renovation", None) in before
    # Just across the move: renovation's first migration, and no later one (what came after,
    # such as events without a case or the reports app, changes tables on purpose).
    leaves = sorted(
        ("renovation", "0001_initial") if app == "renovation" else (app, name)
        for app, name in graph.leaf_nodes()
        if app != "reports"
    )

    old = migrate(probe, before)
    ids = fill(old, ALIAS)
    seen = the_case(old, "inspections", ALIAS)
    assert seen["case"] == (
        ids["case"],
        "county_approved",
        Decimal("23456.78"),
        Decimal("10000.00"),
        ids["house"],
        ids["appraisal"],
        ids["standard"],
        ids["user"],
        ids["user"],
    )
    assert seen["payment"] == (ids["payment"], ids["case"], Decimal("10000.00"), "TRE-2030-0001")
    assert seen["event"][:3] == (ids["event"], ids["case"], ids["event hash"])
    assert seen["history"] == (ids["case history"], ids["case"], "county_approved", "+")
    assert seen["content type"] == ids["case content type"]
    rows_before, types_before, schema_before = rows(probe), content_types(probe), schema(probe)
    assert all(rows_before[table] for table in MOVED_TABLES), "a moved table is empty"
    moved_types = {
        pk
        for pk, (app, model) in types_before.items()
        if app == "inspections" and model in MOVED_MODELS
    }
    assert len(moved_types) == len(MOVED_MODELS)

    # Across the move: the renovation app's models read the same rows in the same tables.
    new = migrate(probe, leaves)
    assert the_case(new, "renovation", ALIAS) == seen
    with pytest.raises(LookupError):
        new.get_model("inspections", "RenovationCase")
    assert rows(probe) == rows_before
    schema_after = schema(probe)
    assert schema_after == schema_before
    assert set(MOVED_TABLES) <= set(schema_after["tables"])
    assert not [table for table in schema_after["tables"] if table.startswith("renovation_")]
    assert content_types(probe) == {
        pk: ("renovation" if pk in moved_types else app, model)
        for pk, (app, model) in types_before.items()
    }

    # And back: the inspections app's models read them again, the content types return.
    old_again = migrate(probe, before)
    assert the_case(old_again, "inspections", ALIAS) == seen
    assert rows(probe) == rows_before
    assert schema(probe) == schema_before
    assert content_types(probe) == types_before
