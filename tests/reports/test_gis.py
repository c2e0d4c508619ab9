"""The map layers from the demo county, read back through GDAL (pyogrio): every format and
coordinate system, the attributes, the CRS named in the file, Chinese text intact, and only
what the exporting user may see."""

import io
import zipfile

import pyogrio
import pyogrio.raw
import pytest
import shapely
from django.utils import translation

from housing.models import Household, Region, RenovationStatus
from renovation.models import CaseState, RenovationCase
from reports.gis import HOUSEHOLD_ATTRIBUTES, REGION_ATTRIBUTES
from reports.models import ExportStatus
from tests.reports.conftest import export_bytes, run_export

COUNTY = "520399"
TOWNSHIP = "520399100"  # the demo township user's township
OTHER_TOWNSHIP = "520399101"

# Every format in every CRS it is made in (KML only in WGS84: see test_kml_in_cgcs2000...).
FORMATS_AND_CRS = [
    ("gpkg", 4326),
    ("gpkg", 4490),
    ("shp", 4326),
    ("shp", 4490),
    ("geojson", 4326),
    ("geojson", 4490),
    ("kml", 4326),
]


def read_layer(export, tmp_path, layer: str):
    """(info, columns by field name, geometries as WKB) of the export's layer, through GDAL."""
    path = tmp_path / export.filename
    path.write_bytes(export_bytes(export))
    source = f"/vsizip/{path}/{layer}.shp" if export.format == "shp" else str(path)
    info = pyogrio.read_info(source, layer=layer)
    meta, _fids, geometry, values = pyogrio.raw.read(source, layer=layer)
    return info, dict(zip(meta["fields"], values, strict=True)), geometry


def fields_of(columns: dict, fmt: str) -> list[str]:
    """The layer's own fields: GDAL's KML reader adds the placemark's standard elements
    (Name, description, timestamp, ...) before the ExtendedData fields."""
    names = list(columns)
    if fmt == "kml":
        names = names[names.index("arch_no" if "arch_no" in names else "code") :]
    return names


def latest_case(household: Household) -> RenovationCase | None:
    return (
        RenovationCase.objects.filter(house__household=household)
        .order_by("-created_at", "-pk")
        .first()
    )


def test_field_names_fit_a_shapefile_and_are_the_same_in_every_format():
    for attributes in (HOUSEHOLD_ATTRIBUTES, REGION_ATTRIBUTES):
        names = [a.name for a in attributes]
        assert len(names) == len(set(names))
        for attribute in attributes:
            assert attribute.name.isascii() and len(attribute.name) <= 10, attribute.name
            assert attribute.kind in {"str", "int", "float"}
            assert attribute.zh and attribute.en


@pytest.mark.usefixtures("demo_county")
class TestHouseholdsLayer:
    @pytest.mark.parametrize(("fmt", "srid"), FORMATS_AND_CRS)
    def test_every_format_reads_back_with_its_crs_and_every_household(
        self, demo_county, tmp_path, fmt, srid
    ):
        export = run_export(demo_county.county, "gis_households", fmt, crs=srid)
        assert export.status == ExportStatus.DONE, export.error
        households = Household.objects.filter(village__code__startswith=COUNTY)
        assert export.total == export.done == households.count() == 120

        info, columns, geometry = read_layer(export, tmp_path, "households")
        assert info["layer_name"] == "households"
        assert info["features"] == 120
        assert info["crs"] == f"EPSG:{srid}"
        # KML declares no geometry type per layer; its placemarks are points all the same.
        assert info["geometry_type"] == ("Unknown" if fmt == "kml" else "Point")
        assert set(shapely.get_type_id(shapely.from_wkb(geometry))) == {0}
        assert fields_of(columns, fmt) == [a.name for a in HOUSEHOLD_ATTRIBUTES]
        assert sorted(columns["arch_no"]) == sorted(households.values_list("archive_no", flat=True))

        # Chinese names intact, and the point is the stored one (CGCS2000 ≈ WGS84 here).
        household = households.select_related("village__parent").order_by("archive_no")[7]
        row = list(columns["arch_no"]).index(household.archive_no)
        assert columns["head"][row] == household.head_name
        assert not household.head_name.isascii()
        assert columns["village"][row] == household.village.name
        assert columns["township"][row] == household.village.parent.name
        assert columns["vill_code"][row] == household.village.code
        point = shapely.from_wkb(geometry[row])
        assert (point.x, point.y) == pytest.approx(
            (household.location.x, household.location.y), abs=1e-7
        )

    def test_the_attributes_are_the_current_house_and_the_latest_case(self, demo_county, tmp_path):
        export = run_export(demo_county.county, "gis_households", "gpkg", crs=4326)
        _info, columns, _geometry = read_layer(export, tmp_path, "households")
        rows = {no: i for i, no in enumerate(columns["arch_no"])}
        with_cases = Household.objects.filter(houses__cases__isnull=False).distinct()
        assert with_cases.exists()
        for household in with_cases:
            case = latest_case(household)
            row = rows[household.archive_no]
            assert columns["case_st"][row] == case.state
            assert columns["case_lbl"][row] == str(CaseState(case.state).label)
            assert columns["fund_year"][row] == case.funding_year
            assert columns["subsidy"][row] == float(case.subsidy_amount)
            assert columns["paid"][row] == float(case.paid_total)
        for household in Household.objects.filter(houses__cases__isnull=True)[:5]:
            row = rows[household.archive_no]
            house = household.houses.get(is_current=True)
            assert columns["case_st"][row] is None
            assert columns["grade"][row] == (house.safety_grade or None)
            assert columns["renov"][row] == house.renovation_status
            assert columns["renov_lbl"][row] == str(RenovationStatus(house.renovation_status).label)

    def test_labels_are_in_the_exports_language(self, demo_county, tmp_path):
        export = run_export(
            demo_county.county, "gis_households", "geojson", language="zh-hans", crs=4490
        )
        _info, columns, _geometry = read_layer(export, tmp_path, "households")
        with translation.override("zh-hans"):
            words = {str(c.label) for c in RenovationStatus}
        assert set(columns["renov_lbl"]) <= words
        assert "未纳入改造" in set(columns["renov_lbl"])

    def test_the_zipped_shapefile_has_its_five_parts_and_says_utf8(self, demo_county):
        export = run_export(demo_county.county, "gis_households", "shp", crs=4490)
        assert export.filename.endswith(".zip")
        with zipfile.ZipFile(io.BytesIO(export_bytes(export))) as archive:
            assert sorted(archive.namelist()) == sorted(
                f"households.{part}" for part in ("shp", "shx", "dbf", "prj", "cpg")
            )
            assert archive.read("households.cpg").decode().strip() == "UTF-8"
            assert b"China_Geodetic_Coordinate_System_2000" in archive.read("households.prj")

    def test_geojson_and_geopackage_name_the_crs_and_the_document(self, demo_county):
        export = run_export(demo_county.county, "gis_households", "geojson", crs=4490)
        data = export_bytes(export)
        assert b'"urn:ogc:def:crs:EPSG::4490"' in data
        assert export.number.encode() in data[:1000]

    def test_the_township_users_layer_has_only_their_township(self, demo_county, tmp_path):
        export = run_export(demo_county.township, "gis_households", "gpkg", crs=4326)
        assert export.status == ExportStatus.DONE, export.error
        _info, columns, _geometry = read_layer(export, tmp_path, "households")
        expected = Household.objects.filter(village__code__startswith=TOWNSHIP)
        assert 0 < expected.count() < 120
        assert sorted(columns["arch_no"]) == sorted(expected.values_list("archive_no", flat=True))
        assert {code[:9] for code in columns["vill_code"]} == {TOWNSHIP}

    def test_a_region_narrows_the_layer(self, demo_county, tmp_path):
        village = (
            Region.objects.filter(
                code__startswith=TOWNSHIP, level="village", households__isnull=False
            )
            .order_by("code")
            .first()
        )
        export = run_export(
            demo_county.county, "gis_households", "geojson", region=village.code, crs=4326
        )
        _info, columns, _geometry = read_layer(export, tmp_path, "households")
        assert set(columns["vill_code"]) == {village.code}
        assert len(columns["arch_no"]) == village.households.count()

    def test_a_region_without_households_gives_an_empty_layer(self, demo_county, tmp_path):
        village = (
            Region.objects.filter(code__startswith=COUNTY, level="village", households__isnull=True)
            .order_by("code")
            .first()
        )
        export = run_export(demo_county.county, "gis_households", "shp", region=village.code)
        assert export.status == ExportStatus.DONE, export.error
        info, columns, _geometry = read_layer(export, tmp_path, "households")
        assert info["features"] == 0
        assert list(columns) == [a.name for a in HOUSEHOLD_ATTRIBUTES]

    def test_a_region_outside_the_users_regions_fails_with_no_file(self, demo_county):
        export = run_export(
            demo_county.township, "gis_households", "gpkg", region=OTHER_TOWNSHIP, crs=4326
        )
        assert export.status == ExportStatus.FAILED
        assert export.error == f"There is no region {OTHER_TOWNSHIP} among your regions."
        assert not export.file

    def test_kml_in_cgcs2000_is_refused_with_what_to_ask_instead(self, demo_county):
        export = run_export(demo_county.county, "gis_households", "kml", crs=4490)
        assert export.status == ExportStatus.FAILED
        assert export.error == (
            "KML is always in WGS84 (EPSG:4326) by its specification, so it cannot be made in "
            "CGCS2000 (EPSG:4490). Ask for KML in WGS84, or for GeoPackage, Shapefile or "
            "GeoJSON in CGCS2000."
        )
        assert not export.file

    def test_an_unknown_crs_is_refused(self, demo_county):
        export = run_export(demo_county.county, "gis_households", "gpkg", crs=3857)
        assert export.status == ExportStatus.FAILED
        assert export.error == (
            "The coordinate system “3857” is not offered; choose WGS84 (EPSG:4326) or "
            "CGCS2000 (EPSG:4490)."
        )


@pytest.mark.usefixtures("demo_county")
class TestRegionsLayer:
    @pytest.mark.parametrize(("fmt", "srid"), FORMATS_AND_CRS)
    def test_every_format_reads_back_with_every_region_and_its_counts(
        self, demo_county, tmp_path, fmt, srid
    ):
        export = run_export(demo_county.county, "gis_regions", fmt, crs=srid)
        assert export.status == ExportStatus.DONE, export.error
        regions = Region.objects.filter(code__startswith=COUNTY)
        info, columns, _geometry = read_layer(export, tmp_path, "regions")
        assert info["layer_name"] == "regions"
        assert info["crs"] == f"EPSG:{srid}"
        # KML declares no geometry type; a Shapefile does not tell polygons from multi.
        expected_type = {"kml": "Unknown", "shp": "Polygon"}.get(fmt, "MultiPolygon")
        assert info["geometry_type"] == expected_type
        assert info["features"] == regions.count() > 100
        assert fields_of(columns, fmt) == [a.name for a in REGION_ATTRIBUTES]
        rows = {code: i for i, code in enumerate(columns["code"])}
        county = rows[COUNTY]
        assert columns["reg_name"][county] == "安居示范县"
        assert columns["level"][county] == "county"
        assert columns["hh_count"][county] == 120
        township = rows[TOWNSHIP]
        assert columns["parent"][township] == COUNTY
        assert columns["hh_count"][township] == (
            Household.objects.filter(village__code__startswith=TOWNSHIP).count()
        )
        assert columns["grade_d"][township] == (
            Household.objects.filter(
                village__code__startswith=TOWNSHIP,
                houses__is_current=True,
                houses__safety_grade="D",
            ).count()
        )

    def test_the_township_user_gets_their_township_and_its_villages(self, demo_county, tmp_path):
        export = run_export(demo_county.township, "gis_regions", "gpkg", crs=4490)
        _info, columns, geometry = read_layer(export, tmp_path, "regions")
        expected = Region.objects.filter(code__startswith=TOWNSHIP)
        assert sorted(columns["code"]) == sorted(expected.values_list("code", flat=True))
        assert all(g is not None for g in geometry)
