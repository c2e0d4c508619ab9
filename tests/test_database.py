"""The storage promises: one coordinate system, and a spatial index on every geometry."""

import pytest
from django.apps import apps
from django.contrib.gis.db.models import GeometryField
from django.db import connection
from simple_history.models import HistoricalChanges


def geometry_fields():
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, GeometryField):
                yield model, field


def is_history(model) -> bool:
    """A django-simple-history table: its geometries are copies, read by record and date,
    never by place, so they have no spatial index (housing.models)."""
    return issubclass(model, HistoricalChanges)


# Derived copies kept in another projection, on purpose: MapPoint holds each household's
# point in Web Mercator, the projection map tiles are cut in, rebuilt from the WGS84 record.
DERIVED_PROJECTIONS = {("maps.MapPoint", "point"): 3857}


def test_every_geometry_is_stored_in_wgs84_with_a_spatial_index():
    found = list(geometry_fields())
    assert {(m._meta.label, f.name) for m, f in found} >= {
        ("housing.Region", "boundary"),
        ("housing.Household", "location"),
    }
    assert any(is_history(model) for model, _field in found)
    for model, field in found:
        srid = DERIVED_PROJECTIONS.get((model._meta.label, field.name), 4326)
        assert (model._meta.label, field.srid, field.spatial_index) == (
            model._meta.label,
            srid,
            not is_history(model),
        )


@pytest.mark.django_db
def test_the_database_has_the_spatial_indexes():
    with connection.cursor() as cursor:
        for model, field in geometry_fields():
            table, column = model._meta.db_table, field.column
            if is_history(model):
                if connection.vendor == "postgresql":
                    # SpatiaLite keeps its R*Tree: Django cannot alter its geometry columns.
                    cursor.execute(
                        "select count(*) from pg_indexes where tablename = %s and indexdef "
                        "ilike '%%using gist%%'",
                        [table],
                    )
                    assert (table, cursor.fetchone()[0]) == (table, 0)
                continue
            if connection.vendor == "postgresql":
                cursor.execute(
                    "select count(*) from pg_indexes where tablename = %s and indexdef ilike %s",
                    [table, f"%using gist ({column})%"],
                )
            else:
                cursor.execute(
                    "select count(*) from geometry_columns where f_table_name = %s "
                    "and f_geometry_column = %s and spatial_index_enabled = 1",
                    [table.lower(), column.lower()],
                )
            assert (table, cursor.fetchone()[0]) == (table, 1)
