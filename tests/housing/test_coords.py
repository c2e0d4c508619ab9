import itertools

import pytest

from housing import coords

# Published reference pairs (WGS84 lat, lon -> GCJ-02 lat, lon) from the eviltransform
# project's own tests: github.com/googollee/eviltransform, python/test.py (commit 3416646)
# and go/transform_test.go, the same three points in every language port.
REFERENCE = [
    pytest.param(31.1774276, 121.5272106, 31.17530398364597, 121.531541859215, id="shanghai"),
    pytest.param(22.543847, 113.912316, 22.540796131694766, 113.9171764808363, id="shenzhen"),
    pytest.param(39.911954, 116.377817, 39.91334545536069, 116.38404722455657, id="beijing"),
]


@pytest.mark.parametrize(("wgs_lat", "wgs_lon", "gcj_lat", "gcj_lon"), REFERENCE)
def test_wgs84_to_gcj02_matches_published_pairs(wgs_lat, wgs_lon, gcj_lat, gcj_lon):
    lon, lat = coords.wgs84_to_gcj02(wgs_lon, wgs_lat)

    assert lon == pytest.approx(gcj_lon, abs=1e-9)
    assert lat == pytest.approx(gcj_lat, abs=1e-9)


@pytest.mark.parametrize(("wgs_lat", "wgs_lon", "gcj_lat", "gcj_lon"), REFERENCE)
def test_gcj02_to_wgs84_recovers_published_wgs84_within_1e_6_degrees(
    wgs_lat, wgs_lon, gcj_lat, gcj_lon
):
    lon, lat = coords.gcj02_to_wgs84(gcj_lon, gcj_lat)

    assert abs(lon - wgs_lon) < 1e-6
    assert abs(lat - wgs_lat) < 1e-6


def test_round_trip_is_accurate_to_1e_6_degrees_across_china():
    lons = [74.0, 87.6, 100.0, 107.9, 113.3, 121.5, 126.6, 134.0]
    lats = [18.2, 22.5, 27.2, 31.2, 39.9, 45.8, 53.0]
    worst = 0.0
    for lon, lat in itertools.product(lons, lats):
        back = coords.gcj02_to_wgs84(*coords.wgs84_to_gcj02(lon, lat))
        worst = max(worst, abs(back[0] - lon), abs(back[1] - lat))

    assert worst < 1e-6


def test_the_offset_inside_china_is_hundreds_of_metres():
    lon, lat = coords.wgs84_to_gcj02(107.905, 27.205)

    # 1e-3 degrees is roughly 100 m at this latitude.
    assert 1e-3 < abs(lon - 107.905) + abs(lat - 27.205) < 1e-2


@pytest.mark.parametrize(
    ("lon", "lat"),
    [
        pytest.param(-0.1276, 51.5072, id="london"),
        pytest.param(139.6917, 35.6895, id="tokyo"),
        pytest.param(151.2093, -33.8688, id="sydney"),
    ],
)
def test_points_outside_china_are_unchanged_both_ways(lon, lat):
    assert coords.wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert coords.gcj02_to_wgs84(lon, lat) == (lon, lat)
    assert coords.out_of_china(lon, lat) is True
