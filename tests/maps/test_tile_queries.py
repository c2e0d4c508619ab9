"""The tiles' written-out SQL: the same tiles as the ORM built, the few queries a request costs,
and the cached scope that must never be wider than the user's regions are now.

The households are test_tiles' (`homes`, `edge_homes`); tiles_reference is maps.tiles as it
was before its SQL was written out (Django's ORM), the yardstick for "the same tiles".
"""

import json
import re
from datetime import datetime

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role, User
from accounts.scoping import cached_region_codes
from maps import tiles
from maps.filters import MapFilters
from maps.models import MapVersion
from tests.factories import make_region
from tests.maps import test_tiles as base
from tests.maps import tiles_reference
from tests.maps.test_tiles import T1, T2, V1, V2, in_scope, tile_of, tiles_near

# test_tiles' households, as fixtures of this module too.
homes, edge_homes = base.homes, base.edge_homes

pytestmark = pytest.mark.django_db

ZOOMS = [0, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
FILTERS = [
    MapFilters(),
    MapFilters(grades=("A", "none")),
    MapFilters(states=("none", "applied", "paid")),
    MapFilters(year=2025),
    MapFilters(key_group="minimum_income"),
    MapFilters(region=V2),
    MapFilters(key_group="registered_poor", grades=("B", "C", "D", "none"), region=T1[:6]),
]


def canonical(features: list[dict]) -> list[str]:
    """A tile's features as sorted JSON: GeoJSON gives their order no meaning."""
    return sorted(json.dumps(f, sort_keys=True) for f in features)


def assert_same_tiles(user, homes, filters, zooms=ZOOMS, shift=False):
    shown = 0
    for z in zooms:
        for x, y in tiles_near(homes, z, shift=shift):
            if not (0 <= x < 2**z and 0 <= y < 2**z):
                continue
            ours = tiles.tile(user=user, z=z, x=x, y=y, filters=filters)["features"]
            theirs = tiles_reference.tile(user=user, z=z, x=x, y=y, filters=filters)["features"]
            assert canonical(ours) == canonical(theirs), (z, x, y, filters)
            # What the view sends (close up on PostGIS: features the database wrote).
            sent = json.loads(tiles.tile_json(user=user, z=z, x=x, y=y, filters=filters))
            assert canonical(sent["features"]) == canonical(theirs), (z, x, y, filters)
            shown += len(ours)
    return shown


@pytest.fixture
def users(regions, make_user):
    return {
        "admin": make_user(Role.ADMINISTRATOR),
        "county": make_user(Role.COUNTY_OFFICIAL, [regions["county"]]),
        "township": make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]]),
        "two codes": make_user(Role.TOWNSHIP_OFFICIAL, [regions["village1"], regions["township2"]]),
        "nobody": make_user(Role.INSPECTOR),
    }


# ---------------------------------------------------------------------------------------
# The same tiles as the ORM's


def test_every_tile_equals_the_orms_for_every_scope_and_filter(homes, users):
    for name, user in users.items():
        for filters in FILTERS:
            shown = assert_same_tiles(user, homes, filters)
            if name == "nobody":
                assert shown == 0
    assert assert_same_tiles(users["county"], homes, MapFilters()) > 0


def test_tiles_on_tile_and_cell_edges_equal_the_orms(edge_homes, users):
    assert assert_same_tiles(users["admin"], edge_homes, MapFilters()) > 0
    assert assert_same_tiles(users["township"], edge_homes, MapFilters(grades=("A", "C"))) > 0


def test_tiles_over_a_gcj02_base_map_equal_the_orms(homes, users, settings):
    settings.MAP_BASEMAP_CRS = "gcj02"
    assert assert_same_tiles(users["county"], homes, MapFilters(), shift=True) > 0
    assert assert_same_tiles(users["two codes"], homes, FILTERS[-1], shift=True) >= 0


def test_a_crowded_close_up_tile_falls_back_to_cells_as_the_orm_did(homes, users, monkeypatch):
    # One house a tile at most: the tile of the two households sharing a spot is cells.
    monkeypatch.setattr(tiles, "MAX_POINTS", 1)
    monkeypatch.setattr(tiles_reference, "MAX_POINTS", 1)
    shown = assert_same_tiles(users["county"], homes, MapFilters(), zooms=[15, 16, 17])
    assert shown > 0
    z = 15
    x, y = tile_of(108.0311, 27.2311, z)
    features = tiles.tile(user=users["county"], z=z, x=x, y=y, filters=MapFilters())["features"]
    assert any(f["properties"]["n"] > 1 for f in features)  # cells, not houses


# ---------------------------------------------------------------------------------------
# Queries per request


def tile_url(z, lon=108.0311, lat=27.2311):
    return reverse("maps:tile", args=[z, *tile_of(lon, lat, z)])


def tables(queries) -> list[str]:
    """Which table each statement reads, from its first FROM that names a table (the
    database-written close-up features select FROM a subquery of maps_mappoint)."""
    return [re.search(r' FROM "?([a-z_]+)', q["sql"]).group(1) for q in queries]


@pytest.mark.parametrize(
    "z, query",
    [
        (8, {}),
        (14, {}),
        (16, {}),
        (17, {"grade": ["A", "D"], "state": "applied", "year": "2026"}),
        (16, {"key_group": "minimum_income", "region": V2}),
    ],
)
def test_a_warm_tile_request_costs_the_session_with_its_user_and_the_tiles_own_sql(
    homes, users, client, django_assert_max_num_queries, z, query
):
    client.force_login(users["county"])
    url = tile_url(z)
    first = client.get(url, query)  # warms the scope, the version and the key groups
    assert first.status_code == 200

    with CaptureQueriesContext(connection) as queries:
        again = client.get(url, query)

    assert again.status_code == 200
    assert again.json() == first.json()
    read = tables(queries)
    assert read[:1] == ["accounts_session"], read  # the session joined with its user
    assert read[1:] and set(read[1:]) <= {"maps_mapcell", "maps_mappoint"}, read
    with django_assert_max_num_queries(2 if z != 8 else 3):  # zoom 8 may add its single houses
        client.get(url, query)


def test_a_revalidation_costs_the_session_with_its_user_and_the_version(homes, users, client):
    client.force_login(users["county"])
    url = tile_url(16)
    etag = client.get(url)["ETag"]

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert tables(queries) == ["accounts_session", "maps_mapversion"]


def test_a_304_is_decided_on_the_version_in_the_database_not_the_cached_one(homes, users, client):
    client.force_login(users["county"])
    url = tile_url(16)
    etag = client.get(url)["ETag"]
    # A bump the cache has not heard of (another process's, say): the cached version lags.
    MapVersion.objects.filter(pk=1).update(version=MapVersion.objects.get(pk=1).version + 1)

    response = client.get(url, headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response["ETag"] != etag
    assert client.get(url, headers={"If-None-Match": response["ETag"]}).status_code == 304


# ---------------------------------------------------------------------------------------
# The cached scope


def tile_ids(client, homes, z=16) -> set[int]:
    """The households every tile near `homes` shows to the client's user, at a close-up zoom."""
    ids = set()
    for x, y in tiles_near(homes, z):
        response = client.get(reverse("maps:tile", args=[z, x, y]))
        if response.status_code != 200:
            return set()
        ids |= {f["properties"]["id"] for f in response.json()["features"]}
    return ids


def ids_in(homes, code) -> set[int]:
    return {h.pk for h in in_scope(homes, code)}


def test_narrowing_a_users_regions_shows_on_the_next_request(homes, regions, users, client):
    user = users["county"]
    client.force_login(user)
    assert tile_ids(client, homes) == ids_in(homes, "520399")

    user.regions.set([regions["township1"]])
    assert tile_ids(client, homes) == ids_in(homes, T1)

    regions["township1"].users.remove(user)  # from the region's side
    assert tile_ids(client, homes) == set()

    regions["township2"].users.add(user)
    assert tile_ids(client, homes) == ids_in(homes, T2)

    regions["township2"].users.clear()
    assert tile_ids(client, homes) == set()


def admin_form_data(rf, staff, user) -> dict:
    """The admin's change form for `user` as a browser would post it back unchanged."""
    request = rf.get("/")
    request.user = staff
    form = admin.site._registry[User].get_form(request, user)(instance=user)
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if field.disabled or value is None:
            continue
        if isinstance(value, datetime):
            data[f"{name}_0"], data[f"{name}_1"] = (
                value.date().isoformat(),
                value.strftime("%H:%M:%S"),
            )
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [getattr(v, "pk", v) for v in value]
        else:
            data[name] = value
    return data


def test_an_administrator_narrowing_regions_in_the_admin_shows_on_the_next_request(
    homes, regions, users, client, make_user, rf
):
    user = users["county"]
    client.force_login(user)
    assert tile_ids(client, homes) == ids_in(homes, "520399")

    staff = make_user(Role.ADMINISTRATOR, username="staff-admin")
    admin_client = Client()
    admin_client.force_login(staff)
    data = admin_form_data(rf, staff, user)
    data["regions"] = [regions["village2"].pk]
    response = admin_client.post(reverse("admin:accounts_user_change", args=[user.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(user.regions.values_list("code", flat=True)) == [V2]

    assert tile_ids(client, homes) == ids_in(homes, V2)

    data = admin_form_data(rf, staff, User.objects.get(pk=user.pk))
    data.pop("is_active")  # unticked: the account is switched off
    admin_client.post(reverse("admin:accounts_user_change", args=[user.pk]), data)
    response = client.get(tile_url(16))
    assert response.status_code == 302 and "features" not in response.content.decode()


def test_a_role_change_shows_on_the_next_request(homes, regions, users, client):
    user = users["township"]
    client.force_login(user)
    assert tile_ids(client, homes) == ids_in(homes, T1)

    user.role, user.is_staff, user.is_superuser = Role.ADMINISTRATOR, True, True
    user.save()
    assert tile_ids(client, homes) == {h.pk for h in homes}

    user.role, user.is_staff, user.is_superuser = Role.TOWNSHIP_OFFICIAL, False, False
    user.save()
    assert tile_ids(client, homes) == ids_in(homes, T1)


def test_a_deactivated_user_gets_nothing(homes, users, client):
    user = users["county"]
    client.force_login(user)
    assert tile_ids(client, homes)

    user.is_active = False
    user.save()

    response = client.get(tile_url(16))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    # And the function itself, handed such a user, shows nothing either.
    assert tiles.tile(user=user, z=16, x=0, y=0, filters=MapFilters())["features"] == []
    z = 16
    x, y = tile_of(108.0311, 27.2311, z)
    assert tiles.tile(user=user, z=z, x=x, y=y, filters=MapFilters())["features"] == []


def test_the_cache_never_serves_one_users_scope_to_another(homes, regions, users, client):
    one, other = Client(), Client()
    one.force_login(users["township"])
    other.force_login(users["two codes"])
    want_one = ids_in(homes, T1)
    want_other = ids_in(homes, V1) | ids_in(homes, T2)
    for _ in range(2):  # cold, then warm
        assert tile_ids(one, homes) == want_one
        assert tile_ids(other, homes) == want_other
    url = tile_url(10, 107.95, 27.22)
    assert one.get(url)["ETag"] != other.get(url)["ETag"]


def test_an_edited_region_code_is_seen_by_its_users_at_once(regions, make_user):
    spare = make_region("520399102", "新镇")
    user = make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"], spare])
    assert cached_region_codes(User.objects.get(pk=user.pk)) == [T1, "520399102"]
    assert cached_region_codes(User.objects.get(pk=user.pk)) == [T1, "520399102"]  # warm

    spare.code = "520399109"
    spare.save()
    assert cached_region_codes(User.objects.get(pk=user.pk)) == [T1, "520399109"]

    spare.delete()
    assert cached_region_codes(User.objects.get(pk=user.pk)) == [T1]


def test_a_key_group_added_after_the_codes_were_cached_is_known_at_once(homes, users, client):
    from tests.factories import key_group

    client.force_login(users["county"])
    url = tile_url(16)
    assert client.get(url, {"key_group": "minimum_income"}).status_code == 200  # cached

    key_group("at_risk_of_poverty")

    response = client.get(url, {"key_group": "at_risk_of_poverty"})
    assert response.status_code == 200 and response.json()["features"] == []
    assert client.get(url, {"key_group": "nobody"}).status_code == 400
