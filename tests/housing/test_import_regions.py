import json
import subprocess
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from housing.models import Region, RegionLevel
from tests.factories import make_region

pytestmark = pytest.mark.django_db

# A county and one of its townships (real codes: Yuqing County, Zunyi; Longxi Town).
COUNTY_RING = [[107.5, 27.2], [107.9, 27.2], [107.9, 27.6], [107.5, 27.6], [107.5, 27.2]]
TOWN_RINGS = [
    [[107.5, 27.2], [107.6, 27.2], [107.6, 27.3], [107.5, 27.3], [107.5, 27.2]],
    [[107.7, 27.4], [107.8, 27.4], [107.8, 27.5], [107.7, 27.5], [107.7, 27.4]],
]


def feature_collection(crs: str | None = None, features=None) -> dict:
    collection = {
        "type": "FeatureCollection",
        "features": features
        if features is not None
        else [
            {
                "type": "Feature",
                "properties": {"adcode": 520329, "name": "余庆县"},
                "geometry": {"type": "Polygon", "coordinates": [COUNTY_RING]},
            },
            {
                "type": "Feature",
                "properties": {"adcode": "520329102", "name": "龙溪镇"},
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [[TOWN_RINGS[0]], [TOWN_RINGS[1]]],
                },
            },
        ],
    }
    if crs:
        collection["crs"] = {"type": "name", "properties": {"name": crs}}
    return collection


def write_geojson(path, collection: dict):
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return path


def ogr2ogr(*args):
    subprocess.run(["ogr2ogr", *[str(a) for a in args]], check=True, capture_output=True)


def run(*args) -> str:
    out = StringIO()
    call_command("import_regions", *[str(a) for a in args], stdout=out)
    return out.getvalue().strip()


def failure(*args) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    return str(caught.value)


@pytest.fixture
def city(db):
    return make_region("5203", "遵义市")


def assert_county_and_town(tolerance: float):
    county = Region.objects.get(code="520329")
    town = Region.objects.get(code="520329102")
    assert (county.name, county.level, county.parent.code) == ("余庆县", RegionLevel.COUNTY, "5203")
    assert (town.name, town.level, town.parent) == ("龙溪镇", RegionLevel.TOWNSHIP, county)
    assert county.boundary.geom_type == "MultiPolygon"
    assert county.boundary.srid == 4326
    assert len(county.boundary) == 1
    assert county.boundary.extent == pytest.approx((107.5, 27.2, 107.9, 27.6), abs=tolerance)
    assert len(town.boundary) == 2
    assert town.boundary.extent == pytest.approx((107.5, 27.2, 107.8, 27.5), abs=tolerance)


def test_geojson_in_wgs84_with_polygon_and_multipolygon(tmp_path, city):
    path = write_geojson(tmp_path / "regions.geojson", feature_collection())

    output = run(path)

    assert output == "Regions imported: 2 created, 0 updated."
    assert_county_and_town(tolerance=1e-12)


def test_geojson_in_cgcs2000_is_stored_as_wgs84(tmp_path, city):
    path = write_geojson(
        tmp_path / "regions.geojson", feature_collection("urn:ogc:def:crs:EPSG::4490")
    )

    run(path)

    assert_county_and_town(tolerance=1e-9)


def test_geojson_in_a_projected_cgcs2000_crs_is_reprojected(tmp_path, city):
    source = write_geojson(tmp_path / "wgs84.geojson", feature_collection())
    projected = tmp_path / "gauss_kruger.geojson"
    # CGCS2000 / 3-degree Gauss-Kruger CM 108E: metres, as county surveys deliver them.
    ogr2ogr("-f", "GeoJSON", "-t_srs", "EPSG:4545", projected, source)
    assert (
        json.loads(projected.read_text())["features"][0]["geometry"]["coordinates"][0][0][0] > 1e4
    )

    output = run(projected)

    assert output == "Regions imported: 2 created, 0 updated."
    assert_county_and_town(tolerance=1e-7)


def test_geopackage_from_cgcs2000(tmp_path, city):
    source = write_geojson(
        tmp_path / "source.geojson", feature_collection("urn:ogc:def:crs:EPSG::4490")
    )
    gpkg = tmp_path / "regions.gpkg"
    ogr2ogr("-f", "GPKG", gpkg, source)

    output = run(gpkg)

    assert output == "Regions imported: 2 created, 0 updated."
    assert_county_and_town(tolerance=1e-9)


def test_shapefile_from_cgcs2000(tmp_path, city):
    source = write_geojson(
        tmp_path / "source.geojson", feature_collection("urn:ogc:def:crs:EPSG::4490")
    )
    shp = tmp_path / "regions.shp"
    ogr2ogr("-f", "ESRI Shapefile", "-lco", "ENCODING=UTF-8", shp, source)

    output = run(shp)

    assert output == "Regions imported: 2 created, 0 updated."
    assert_county_and_town(tolerance=1e-9)


def test_padded_adcodes_of_amap_layers_are_read_as_the_level_they_pad(tmp_path):
    features = [
        {"type": "Feature", "properties": {"adcode": code, "name": name}, "geometry": None}
        for code, name in [(520000, "贵州省"), (520300, "遵义市"), (520329, "余庆县")]
    ]
    path = write_geojson(tmp_path / "datav.json", feature_collection(features=features))

    run(path)

    assert list(Region.objects.values_list("code", "level", "parent__code")) == [
        ("52", RegionLevel.PROVINCE, None),
        ("5203", RegionLevel.CITY, "52"),
        ("520329", RegionLevel.COUNTY, "5203"),
    ]


def test_csv_of_codes_and_names_builds_a_four_level_tree(tmp_path):
    path = tmp_path / "regions.csv"
    path.write_text(
        "code,name\n520329102,龙溪镇\n52,贵州省\n520329,余庆县\n5203,遵义市\n", encoding="utf-8"
    )

    output = run(path)

    assert output == "Regions imported: 4 created, 0 updated."
    assert list(Region.objects.values_list("code", "name", "level", "parent__code")) == [
        ("52", "贵州省", RegionLevel.PROVINCE, None),
        ("5203", "遵义市", RegionLevel.CITY, "52"),
        ("520329", "余庆县", RegionLevel.COUNTY, "5203"),
        ("520329102", "龙溪镇", RegionLevel.TOWNSHIP, "520329"),
    ]
    assert not Region.objects.filter(boundary__isnull=False).exists()


def test_csv_with_chinese_headers_and_byte_order_mark(tmp_path, city):
    path = tmp_path / "regions.csv"
    path.write_text("区划代码,名称\n520329,余庆县\n520329102,龙溪镇\n", encoding="utf-8-sig")

    output = run(path)

    assert output == "Regions imported: 2 created, 0 updated."
    assert Region.objects.get(code="520329102").parent.code == "520329"


def test_reimport_updates_names_and_keeps_boundaries_a_csv_does_not_carry(tmp_path, city):
    run(write_geojson(tmp_path / "regions.geojson", feature_collection()))
    path = tmp_path / "regions.csv"
    path.write_text("code,name\n520329,余庆县（新）\n520329102,龙溪镇\n", encoding="utf-8")

    output = run(path)

    assert output == "Regions imported: 0 created, 2 updated."
    assert Region.objects.count() == 4
    county = Region.objects.get(code="520329")
    assert county.name == "余庆县（新）"
    assert county.boundary.extent == pytest.approx((107.5, 27.2, 107.9, 27.6))


def test_dry_run_counts_and_writes_nothing(tmp_path, city):
    path = tmp_path / "regions.csv"
    path.write_text("code,name\n5203,遵义市\n520329,余庆县\n", encoding="utf-8")

    output = run(path, "--dry-run")

    assert output == "Regions that would be imported: 1 new, 1 updated."
    assert not Region.objects.filter(code="520329").exists()


def test_a_parent_in_neither_file_nor_database_fails_the_whole_file(tmp_path):
    path = tmp_path / "regions.csv"
    path.write_text("code,name\n52,贵州省\n520329,余庆县\n", encoding="utf-8")

    report = failure(path)

    assert report == (
        "1 problem found; nothing was imported.\n"
        "regions.csv, row 3, column code, value “520329”: "
        "The parent region 5203 is neither in this file nor in the database."
    )
    assert Region.objects.count() == 0


def test_every_bad_code_is_reported_and_nothing_written(tmp_path, city):
    path = tmp_path / "regions.csv"
    path.write_text(
        "代码,名称\n520329,余庆县\n52032A,坏县\n5203291,七位\n520329,重复\n520330,\n",
        encoding="utf-8",
    )

    report = failure(path)

    assert report.splitlines() == [
        "4 problems found; nothing was imported.",
        "regions.csv, row 3, column 代码, value “52032A”: A region code has digits only.",
        "regions.csv, row 4, column 代码, value “5203291”: "
        "A region code has 2, 4, 6, 9, 12 digits; 5203291 has 7.",
        "regions.csv, row 5, column 代码, value “520329”: The region 520329 is also in row 2.",
        "regions.csv, row 6, column 名称, value “”: This field cannot be blank.",
    ]
    assert Region.objects.count() == 2


def test_a_named_field_missing_from_the_layer_lists_the_layer_fields(tmp_path, city):
    path = write_geojson(tmp_path / "regions.geojson", feature_collection())

    report = failure(path, "--code-field", "区码")

    assert report == (
        "1 problem found; nothing was imported.\n"
        "regions.geojson: The field 区码 is not in the file. Its fields are: adcode, name."
    )


def test_a_layer_without_the_usual_fields_says_which_option_to_use(tmp_path, city):
    features = [
        {
            "type": "Feature",
            "properties": {"id": "520329", "title": "余庆县"},
            "geometry": {"type": "Polygon", "coordinates": [COUNTY_RING]},
        }
    ]
    path = write_geojson(tmp_path / "regions.geojson", feature_collection(features=features))

    report = failure(path)

    assert report.splitlines() == [
        "2 problems found; nothing was imported.",
        "regions.geojson: None of the usual fields (code, adcode, 区划代码, 行政区划代码, 代码, "
        "编码, 区划编码) is in the file; name the field with --code-field. "
        "Its fields are: id, title.",
        "regions.geojson: None of the usual fields (name, 名称, 区划名称, 行政区划名称) is in the "
        "file; name the field with --name-field. Its fields are: id, title.",
    ]

    output = run(path, "--code-field", "id", "--name-field", "title")

    assert output == "Regions imported: 1 created, 0 updated."


def test_a_point_is_not_a_boundary(tmp_path, city):
    features = [
        {
            "type": "Feature",
            "properties": {"code": "520329", "name": "余庆县"},
            "geometry": {"type": "Point", "coordinates": [107.7, 27.4]},
        }
    ]
    path = write_geojson(tmp_path / "regions.geojson", feature_collection(features=features))

    report = failure(path)

    assert report == (
        "1 problem found; nothing was imported.\n"
        "regions.geojson, feature 1: A boundary must be a polygon or multipolygon, not a Point."
    )
    assert not Region.objects.filter(code="520329").exists()


def test_a_shapefile_without_a_prj_is_taken_as_wgs84(tmp_path, city):
    shp = tmp_path / "regions.shp"
    ogr2ogr(
        "-f",
        "ESRI Shapefile",
        "-lco",
        "ENCODING=UTF-8",
        shp,
        write_geojson(tmp_path / "source.geojson", feature_collection()),
    )
    (tmp_path / "regions.prj").unlink()

    run(shp)

    assert_county_and_town(tolerance=1e-12)


def test_reimporting_a_layer_replaces_boundaries_in_place(tmp_path, city):
    path = write_geojson(tmp_path / "regions.geojson", feature_collection())
    run(path)
    county_id = Region.objects.get(code="520329").pk
    collection = feature_collection()
    collection["features"][0]["geometry"]["coordinates"] = [
        [[107.0, 27.0], [108.0, 27.0], [108.0, 28.0], [107.0, 27.0]]
    ]
    write_geojson(path, collection)

    output = run(path)

    assert output == "Regions imported: 0 created, 2 updated."
    county = Region.objects.get(code="520329")
    assert county.pk == county_id
    assert county.boundary.extent == pytest.approx((107.0, 27.0, 108.0, 28.0))


# --- hostile boundaries (issue 11): refused with the feature and the reason, nothing written


def county_with(geometry: dict) -> dict:
    """The usual county and town, the town with this geometry instead of its own."""
    collection = feature_collection()
    collection["features"][1]["geometry"] = geometry
    return collection


def assert_nothing_written():
    assert not Region.objects.filter(code__in=["520329", "520329102"]).exists()


def test_an_unclosed_ring_is_refused_naming_the_feature_and_the_ring(tmp_path, city):
    open_ring = COUNTY_RING[:-1]  # four corners, the first not repeated at the end
    path = write_geojson(
        tmp_path / "regions.geojson",
        county_with({"type": "Polygon", "coordinates": [open_ring]}),
    )

    report = failure(path)

    assert report == (
        "1 problem found; nothing was imported.\n"
        "regions.geojson, feature 2: Ring 1 of polygon 1 is not closed: it starts at "
        "(107.5, 27.2) and ends at (107.5, 27.6)."
    )
    assert_nothing_written()


def test_a_ring_of_two_points_is_refused(tmp_path, city):
    path = write_geojson(
        tmp_path / "regions.geojson",
        county_with(
            {"type": "MultiPolygon", "coordinates": [[TOWN_RINGS[0]], [[[107.7, 27.4]] * 2]]}
        ),
    )

    report = failure(path)

    assert report.splitlines()[1] == (
        "regions.geojson, feature 2: Ring 1 of polygon 2 has 2 points; a ring needs at "
        "least 4, the last repeating the first."
    )
    assert_nothing_written()


def test_a_longitude_of_500_is_refused(tmp_path, city):
    ring = [[500, 27.2], [107.9, 27.2], [107.9, 27.6], [500, 27.2]]
    path = write_geojson(
        tmp_path / "regions.geojson", county_with({"type": "Polygon", "coordinates": [ring]})
    )

    report = failure(path)

    assert report == (
        "1 problem found; nothing was imported.\n"
        "regions.geojson, feature 2: The boundary reaches longitude 107.9 to 500, latitude "
        "27.2 to 27.6: a longitude is between -180 and 180, a latitude between -90 and 90. "
        "Is the layer's coordinate system (its .prj, or the GeoJSON's crs) missing or wrong?"
    )
    assert_nothing_written()


def test_swapped_longitude_and_latitude_are_refused_with_a_hint(tmp_path, city):
    swapped = [[lat, lon] for lon, lat in TOWN_RINGS[0]]
    path = write_geojson(
        tmp_path / "regions.geojson", county_with({"type": "Polygon", "coordinates": [swapped]})
    )

    report = failure(path)

    assert report.splitlines()[1] == (
        "regions.geojson, feature 2: The boundary reaches longitude 27.2 to 27.3, latitude "
        "107.5 to 107.6: a longitude is between -180 and 180, a latitude between -90 and 90. "
        "Read the other way round it is in China: are they swapped?"
    )
    assert_nothing_written()


def test_a_boundary_outside_china_is_imported_with_a_warning(tmp_path, city):
    paris = [[2.3, 48.8], [2.4, 48.8], [2.4, 48.9], [2.3, 48.8]]
    path = write_geojson(
        tmp_path / "regions.geojson", county_with({"type": "Polygon", "coordinates": [paris]})
    )
    out, err = StringIO(), StringIO()

    call_command("import_regions", str(path), stdout=out, stderr=err)

    assert out.getvalue().strip() == "Regions imported: 2 created, 0 updated."
    assert err.getvalue().strip() == (
        "regions.geojson, feature 2: The boundary (longitude 2.3 to 2.4, latitude 48.8 to "
        "48.9) is not inside China; imported all the same. Check the layer's coordinate system."
    )


def test_a_boundary_over_the_vertex_limit_is_refused(tmp_path, city, settings):
    settings.ANJU_BOUNDARY_MAX_VERTICES = 4
    path = write_geojson(tmp_path / "regions.geojson", feature_collection())

    report = failure(path)

    # The county's ring has 5 vertices; the town's two rings have 10.
    assert report == (
        "2 problems found; nothing was imported.\n"
        "regions.geojson, feature 1: The boundary has 5 vertices; at most 4 are accepted "
        "(ANJU_BOUNDARY_MAX_VERTICES). Simplify it first, e.g. with ogr2ogr -simplify 0.0001 "
        "(about 10 m), and import it again.\n"
        "regions.geojson, feature 2: The boundary has 10 vertices; at most 4 are accepted "
        "(ANJU_BOUNDARY_MAX_VERTICES). Simplify it first, e.g. with ogr2ogr -simplify 0.0001 "
        "(about 10 m), and import it again."
    )
    assert_nothing_written()


def test_a_million_vertex_boundary_is_refused_under_the_default_limit(tmp_path, city):
    # Written as WKT in a CSV and turned into a GeoPackage by ogr2ogr: a GeoJSON of a
    # million vertices takes GDAL seconds to parse, a GeoPackage a tenth of one.
    n = 1_000_000
    # Whole degrees keep the line under the CSV driver's limit of about 10 MB.
    ring = ["107 27", *(["108 27", "108 28"] * ((n - 2) // 2)), "107 27"]
    source = tmp_path / "source.csv"
    source.write_text(
        f'code,name,WKT\n"520329",余庆县,"POLYGON(({",".join(ring)}))"\n', encoding="utf-8"
    )
    path = tmp_path / "regions.gpkg"
    ogr2ogr("-f", "GPKG", path, source, "-a_srs", "EPSG:4326", "-oo", "KEEP_GEOM_COLUMNS=NO")

    report = failure(path)

    assert report == (
        "1 problem found; nothing was imported.\n"
        "regions.gpkg, feature 1: The boundary has 1000000 vertices; at most 50000 are "
        "accepted (ANJU_BOUNDARY_MAX_VERTICES). Simplify it first, e.g. with ogr2ogr -simplify "
        "0.0001 (about 10 m), and import it again."
    )
    assert not Region.objects.filter(code="520329").exists()
