"""Tile numbers past the grid, however large, are a 404 (no such tile), never a 500."""

import pytest

from accounts.models import Role

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"


@pytest.fixture
def official(client, make_user, regions):
    client.force_login(make_user(Role.COUNTY_OFFICIAL, [regions["county"]]))
    return client


@pytest.mark.parametrize(
    "zxy",
    [f"{HUGE}/0/0", f"3/{HUGE}/0", f"3/0/{HUGE}", "21/0/0", "3/8/0", "3/0/8"],
)
def test_a_tile_outside_the_grid_is_not_found(official, households, zxy):
    assert official.get(f"/maps/tiles/{zxy}.geojson").status_code == 404


def test_a_tile_with_an_out_of_range_year_filter_is_a_400(official, households):
    response = official.get("/maps/tiles/3/6/3.geojson", {"year": HUGE})

    assert response.status_code == 400


@pytest.mark.parametrize("zxy", [f"{HUGE}/0/0", f"3/{HUGE}/0", f"3/0/{HUGE}"])
def test_a_base_map_tile_outside_the_grid_is_not_found(official, settings, zxy):
    settings.MAP_BASEMAP = "tianditu"
    settings.TIANDITU_KEY = "test-key"

    assert official.get(f"/maps/basemap/tianditu/vec/{zxy}").status_code == 404
