"""Map layers for desktop GIS: households as points, regions as polygons, in GeoPackage,
zipped Shapefile, KML or GeoJSON, in WGS84 (EPSG:4326) or CGCS2000 (EPSG:4490).

How a layer is made, and why:

1. Rows come from the database in chunks (the ORM's scoped `values_list` query, fetched
   through a server-side cursor), already flat: the village, township, current house and
   latest case are joined or sub-selected in SQL, and the geometry arrives as WKB,
   reprojected in SQL (ST_Transform / SpatiaLite Transform), so no GEOS object and no
   per-row Python work beyond turning a chunk into numpy columns.
2. Each chunk is appended with `pyogrio.raw.write` to a GeoPackage in the job's work folder,
   without a spatial index: appending to an indexed GeoPackage updates the R-tree through
   triggers, row by row, which is several times slower than the rest of the write.
3. That GeoPackage is copied into the asked format in one GDAL session, as an Arrow stream
   (`pyogrio.raw.open_arrow` → `pyogrio.raw.write_arrow`), batch by batch: memory stays flat
   whatever the size, the final GeoPackage's R-tree is bulk-built once at the end, and KML and
   GeoJSON, which GDAL cannot append to, are still written by GDAL, not by us. A Shapefile
   gets text fields as wide as their longest value (see _sized_select), then is zipped.

Every format carries the same attributes under the same names (ATTRIBUTES below): at most 10
ASCII characters, the Shapefile limit, so a layer exported as GeoPackage and as Shapefile
joins and styles the same way. Enumerations are written as their stable codes (the API's,
the same in every language) and the two workflow states also as a label in the export's
language (`renov_lbl`, `case_lbl`) for reading in an attribute table.

The CRS is named in every file: the GeoPackage's srs, the Shapefile's .prj, the GeoJSON
"crs" member. KML is WGS84 by its specification (OGC KML 2.2, section 6.2), so a KML in
CGCS2000 is refused with a message rather than silently written in WGS84. CGCS2000 and
WGS84 differ by centimetres; PROJ transforms between them as the identity (a "ballpark"
transformation), so the coordinates are the stored ones, named in the other datum.
"""

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyogrio.raw
from django.contrib.gis.db.models.functions import AsWKB, Transform
from django.db import connections
from django.db.models import Count, F, FilteredRelation, FloatField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, NullIf
from django.utils.translation import gettext as _

from accounts.scoping import scope
from housing.models import CODE_LENGTHS, Household, Region, RegionLevel, RenovationStatus
from renovation.models import CaseState, RenovationCase
from reports.errors import ExportError
from reports.scope import crs_of, region_of

WGS84 = 4326
CGCS2000 = 4490
SRIDS = (WGS84, CGCS2000)

# Rows per database fetch and per append: about 20 MB of Python objects for households, big
# enough that the fixed cost of each GDAL write is negligible, small enough to stay flat.
CHUNK_ROWS = 20_000
# Features per Arrow batch when the work GeoPackage is copied into the asked format.
ARROW_BATCH = 16_384

HOUSEHOLDS_LAYER = "households"
REGIONS_LAYER = "regions"

# GDAL driver of each export format (reports.kinds.GIS_FORMATS).
DRIVERS = {"gpkg": "GPKG", "shp": "ESRI Shapefile", "kml": "KML", "geojson": "GeoJSON"}
SHAPEFILE_PARTS = ("shp", "shx", "dbf", "prj", "cpg")


@dataclass(frozen=True)
class Attribute:
    """One attribute of a layer: its field name in every format and what it means.

    `source` is the values_list path or annotation it is read from; for a label attribute,
    the attribute holding the code, and `labels` the TextChoices that word it.
    """

    name: str  # at most 10 ASCII characters: the Shapefile (dBASE) limit
    kind: str  # "str", "int" (nullable) or "float" (NULL as NaN)
    zh: str
    en: str
    source: str = ""
    labels: type | None = None


# The households layer (points), in field order. Documented in the README from this table.
HOUSEHOLD_ATTRIBUTES = (
    Attribute(
        "arch_no", "str", "档案编号", "archive number (one household, one file)", "archive_no"
    ),
    Attribute("head", "str", "户主姓名", "head of household", "head_name"),
    Attribute("vill_code", "str", "村（社区）代码", "village code (12 digits)", "village__code"),
    Attribute("village", "str", "村（社区）名称", "village name", "village__name"),
    Attribute("town_code", "str", "乡镇代码", "township code (9 digits)", "village__parent__code"),
    Attribute("township", "str", "乡镇名称", "township name", "village__parent__name"),
    Attribute("key_group", "str", "重点对象类别", "key group (its name)", "key_group__name"),
    Attribute("address", "str", "住址", "address", "address"),
    Attribute(
        "loc_src",
        "str",
        "坐标来源",
        "where the point came from: phone_gps, gcj02_map, surveyed, imported; empty: unknown",
        "loc_src",
    ),
    Attribute(
        "grade",
        "str",
        "房屋安全等级",
        "safety grade of the current house, A–D; empty: not yet appraised",
        "grade",
    ),
    Attribute(
        "renov",
        "str",
        "改造状态代码",
        "renovation status code of the current house: none, planned, in_progress, completed",
        "cur__renovation_status",
    ),
    Attribute(
        "renov_lbl",
        "str",
        "改造状态",
        "renovation status, worded in the export's language",
        "renov",
        RenovationStatus,
    ),
    Attribute(
        "case_st",
        "str",
        "最新案件状态代码",
        "state code of the household's latest renovation case (applied … paid, rejected, "
        "withdrawn); empty: no case",
        "case_st",
    ),
    Attribute(
        "case_lbl",
        "str",
        "最新案件状态",
        "state of the latest case, worded in the export's language",
        "case_st",
        CaseState,
    ),
    Attribute("fund_year", "int", "资金年度", "funding year of the latest case", "fund_year"),
    Attribute("subsidy", "float", "补助金额（元）", "subsidy of the latest case (yuan)", "subsidy"),
    Attribute("paid", "float", "已拨付（元）", "paid so far on the latest case (yuan)", "paid"),
)

# The regions layer (polygons), in field order.
REGION_ATTRIBUTES = (
    Attribute("code", "str", "区划代码", "statistical code (2, 4, 6, 9 or 12 digits)", "code"),
    # Not "name": GDAL's KML writer would take a field so called for the placemark's <name>
    # and drop it from the attributes.
    Attribute("reg_name", "str", "区划名称", "region name", "name"),
    Attribute(
        "level",
        "str",
        "层级代码",
        "level code: province, city, county, township, village",
        "level",
    ),
    Attribute(
        "level_lbl", "str", "层级", "level, worded in the export's language", "level", RegionLevel
    ),
    Attribute("parent", "str", "上级区划代码", "code of the region above", "parent__code"),
    Attribute("hh_count", "int", "户数", "households in the region (the exporter's scope)", ""),
    Attribute("grade_c", "int", "C级危房户数", "of them, current house graded C", ""),
    Attribute("grade_d", "int", "D级危房户数", "of them, current house graded D", ""),
)

ATTRIBUTES = {HOUSEHOLDS_LAYER: HOUSEHOLD_ATTRIBUTES, REGIONS_LAYER: REGION_ATTRIBUTES}


# --- what is exported: the queries -----------------------------------------------------------


def _geometry(field: str, srid: int):
    """WKB of the field in `srid`, reprojected by the database (not by Python, row by row)."""
    return AsWKB(field if srid == WGS84 else Transform(field, srid))


def _households_in(user, region: Region | None):
    households = scope(Household.objects.all(), user, "village__code")
    if region is not None:
        households = households.filter(village__code__startswith=region.code)
    return households


def households_query(*, user, region: Region | None, srid: int):
    """The households layer's rows: the households the user sees under `region` (all their
    regions when None), by id, as tuples of the non-label attributes' sources then the WKB.

    Public so that a benchmark can run the very same SQL through ogr2ogr.
    """
    # The household's latest case over all its houses, as the maps define it
    # (maps.points): newest opened first, id breaking ties.
    latest = RenovationCase.objects.filter(house__household=OuterRef("pk")).order_by(
        "-created_at", "-pk"
    )
    columns = [a.source for a in HOUSEHOLD_ATTRIBUTES if a.labels is None]
    return (
        _households_in(user, region)
        .order_by("pk")
        .annotate(
            cur=FilteredRelation("houses", condition=Q(houses__is_current=True)),
            loc_src=NullIf("location_source", Value("")),
            grade=NullIf(F("cur__safety_grade"), Value("")),
            case_st=Subquery(latest.values("state")[:1]),
            fund_year=Subquery(latest.values("funding_year")[:1]),
            # Floats from SQL: no Decimal object per row (nor SQLite's Decimal converter).
            subsidy=Cast(Subquery(latest.values("subsidy_amount")[:1]), FloatField()),
            paid=Cast(Subquery(latest.values("paid_total")[:1]), FloatField()),
            wkb=_geometry("location", srid),
        )
        .values_list(*columns, "wkb")
    )


def regions_query(*, user, region: Region | None, srid: int):
    """The regions layer's rows: the user's regions (and all under them) under `region`."""
    regions = scope(Region.objects.all(), user, "code")
    if region is not None:
        regions = regions.filter(code__startswith=region.code)
    return (
        regions.order_by("code")
        .annotate(wkb=_geometry("boundary", srid))
        .values_list("code", "name", "level", "parent__code", "wkb")
    )


def region_counts(*, user, region: Region | None) -> dict[str, tuple[int, int, int]]:
    """(households, grade C, grade D) of every region code with households, counted per
    village in SQL and added up the code prefixes (a village's code starts with its
    township's, county's, ...): one query, whatever the number of regions."""
    per_village = (
        _households_in(user, region)
        .annotate(cur=FilteredRelation("houses", condition=Q(houses__is_current=True)))
        .order_by()
        .values("village__code")
        .annotate(
            n=Count("pk"),
            c=Count("pk", filter=Q(cur__safety_grade="C")),
            d=Count("pk", filter=Q(cur__safety_grade="D")),
        )
        .values_list("village__code", "n", "c", "d")
    )
    totals: dict[str, list[int]] = {}
    lengths = sorted(CODE_LENGTHS.values())
    for code, n, c, d in per_village:
        for length in lengths:
            if length <= len(code):
                total = totals.setdefault(code[:length], [0, 0, 0])
                total[0] += n
                total[1] += c
                total[2] += d
    return {code: tuple(values) for code, values in totals.items()}


# --- writing ---------------------------------------------------------------------------------


def _chunks(queryset, size: int):
    """The queryset's rows, `size` at a time, from a server-side cursor where the database
    has one (PostgreSQL), as plain tuples.

    Django's own `.iterator(chunk_size=...)` does the same fetching, plus a converter call per
    value and a generator step per row: about a seventh of the export's time at 300,000 rows, for
    nothing here, since the SQL already returns plain text, numbers and WKB.
    """
    connection = connections[queryset.db]
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    server_side = connection.features.can_use_chunked_reads and not connection.settings_dict.get(
        "DISABLE_SERVER_SIDE_CURSORS"
    )
    with connection.chunked_cursor() if server_side else connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(size):
            yield batch


def _column(values, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A numpy column for pyogrio, and its NULL mask for integers (floats use NaN)."""
    if kind == "float":
        return np.array(values, dtype=np.float64), None  # None becomes NaN, written as NULL
    if kind == "int":
        floats = np.array(values, dtype=np.float64)
        missing = np.isnan(floats)
        return np.where(missing, 0, floats).astype(np.int32), missing
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column, None


class LayerWriter:
    """Appends chunks of rows to a GeoPackage without a spatial index (see the module
    docstring), creating the layer with the first chunk, even an empty one."""

    def __init__(self, path: Path, *, layer: str, attributes, geometry_type: str, srid: int):
        self.path = path
        self.layer = layer
        self.attributes = attributes
        self.geometry_type = geometry_type
        self.crs = f"EPSG:{srid}"
        self.created = False
        # The label attributes' words, in the export's language, looked up once.
        self.words = {
            a.name: {choice.value: str(choice.label) for choice in a.labels}
            for a in attributes
            if a.labels is not None
        }

    def write(self, columns: dict[str, list], geometry: list) -> None:
        data, masks = [], []
        for attribute in self.attributes:
            if attribute.labels is not None:
                words = self.words[attribute.name]
                values = [words.get(code) for code in columns[attribute.source]]
            else:
                values = columns[attribute.name]
            column, mask = _column(values, attribute.kind)
            data.append(column)
            masks.append(mask)
        wkb = np.empty(len(geometry), dtype=object)
        wkb[:] = [bytes(g) if g is not None else None for g in geometry]
        pyogrio.raw.write(
            self.path,
            wkb,
            data,
            [a.name for a in self.attributes],
            field_mask=masks,
            layer=self.layer,
            driver="GPKG",
            geometry_type=self.geometry_type,
            crs=self.crs,
            encoding="UTF-8",
            append=self.created,
            layer_options={"SPATIAL_INDEX": "NO"},
        )
        self.created = True


def _translate(source: Path, job, *, layer: str, attributes, geometry_type: str, description: str):
    """Copy the work GeoPackage's layer into job.path in the export's format, streaming."""
    fmt = job.export.format
    read = {"layer": layer}
    if fmt == "shp":
        target = job.workdir / "shp" / f"{layer}.shp"
        target.parent.mkdir()
        read = {"sql": _sized_select(source, layer, attributes), "sql_dialect": "OGRSQL"}
    else:
        target = job.path
    options = {
        "gpkg": {"SPATIAL_INDEX": "YES", "DESCRIPTION": description},
        "geojson": {"DESCRIPTION": description},
    }.get(fmt, {})
    with pyogrio.raw.open_arrow(source, batch_size=ARROW_BATCH, **read) as (meta, stream):
        pyogrio.raw.write_arrow(
            stream,
            target,
            layer=layer,
            driver=DRIVERS[fmt],
            geometry_type=geometry_type,
            geometry_name=meta["geometry_name"] or "geom",
            crs=meta["crs"],
            # The .cpg then says UTF-8, so ArcGIS and QGIS read Chinese names as written.
            encoding="UTF-8" if fmt == "shp" else None,
            layer_options=options,
        )
    if fmt == "shp":
        _zip_shapefile(target, job.path)


def _sized_select(source: Path, layer: str, attributes) -> str:
    """An OGR SQL SELECT of the layer giving each text field the width of its longest value
    in UTF-8 bytes, for the Shapefile.

    A dBASE text field is fixed-width and GDAL makes it 80 bytes when it is not told: most
    of a 300,000-row .dbf would be padding (353 MB where 79 MB hold it all), and RESIZE=YES
    rewrites the whole file once more to shrink it. The widths come from one SQLite pass
    over the work GeoPackage; a value longer than the dBASE limit of 254 bytes (about 84
    Chinese characters) is cut there by GDAL, with a warning.
    """
    texts = [a.name for a in attributes if a.kind == "str"]
    longest = ", ".join(f'max(length(CAST("{name}" AS BLOB))) AS "{name}"' for name in texts)
    meta, _fids, _geometry, values = pyogrio.raw.read(
        source,
        sql=f'SELECT {longest} FROM "{layer}"',
        sql_dialect="SQLITE",
        read_geometry=False,
    )
    widths = {
        name: max(1, int(column[0] or 0))
        for name, column in zip(meta["fields"], values, strict=True)
    }
    fields = ", ".join(
        f'CAST("{a.name}" AS character({widths[a.name]})) AS "{a.name}"'
        if a.kind == "str"
        else f'"{a.name}"'
        for a in attributes
    )
    return f'SELECT {fields} FROM "{layer}"'


def _zip_shapefile(shp: Path, zip_path: Path) -> None:
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for part in SHAPEFILE_PARTS:
            member = shp.with_suffix(f".{part}")
            if member.exists():
                archive.write(member, member.name)


def _srid_of(job) -> int:
    """The asked CRS, checked: one of SRIDS, and WGS84 for KML."""
    try:
        srid = crs_of(job)
    except (TypeError, ValueError):
        srid = None
    if srid not in SRIDS:
        raise ExportError(
            _(
                "The coordinate system “%(crs)s” is not offered; choose WGS84 (EPSG:4326) or "
                "CGCS2000 (EPSG:4490)."
            )
            % {"crs": job.params.get("crs")}
        )
    if srid != WGS84 and job.export.format == "kml":
        raise ExportError(
            _(
                "KML is always in WGS84 (EPSG:4326) by its specification, so it cannot be made "
                "in CGCS2000 (EPSG:4490). Ask for KML in WGS84, or for GeoPackage, Shapefile or "
                "GeoJSON in CGCS2000."
            )
        )
    return srid


def _description(job, title: str, srid: int) -> str:
    """The layer's description: what it is, its CRS and the document number (which
    reports.services.document_verify finds in the file)."""
    return _("%(title)s, EPSG:%(srid)s, Anju document %(number)s") % {
        "title": title,
        "srid": srid,
        "number": job.stamp.number,
    }


def build_households(job) -> None:
    """The households layer (points) of the export's region, as the user sees it."""
    srid = _srid_of(job)
    region = region_of(job)
    job.set_total(_households_in(job.user, region).count(), "rows")
    work = job.workdir / "layer.gpkg"
    writer = LayerWriter(
        work,
        layer=HOUSEHOLDS_LAYER,
        attributes=HOUSEHOLD_ATTRIBUTES,
        geometry_type="Point",
        srid=srid,
    )
    read = [a.name for a in HOUSEHOLD_ATTRIBUTES if a.labels is None]
    rows = households_query(user=job.user, region=region, srid=srid)
    # Columns are keyed by attribute name; a label's source names its code attribute.
    for batch in _chunks(rows, CHUNK_ROWS):
        *values, geometry = zip(*batch, strict=True)
        writer.write(dict(zip(read, values, strict=True)), geometry)
        job.advance(len(batch))
    if not writer.created:
        writer.write({name: [] for name in read}, [])
    _translate(
        work,
        job,
        layer=HOUSEHOLDS_LAYER,
        attributes=HOUSEHOLD_ATTRIBUTES,
        geometry_type="Point",
        description=_description(job, _("Households"), srid),
    )


def build_regions(job) -> None:
    """The regions layer (polygons): the user's regions under the export's region, with
    household counts in the user's scope."""
    srid = _srid_of(job)
    region = region_of(job)
    regions = regions_query(user=job.user, region=region, srid=srid)
    job.set_total(regions.count(), "rows")
    counts = region_counts(user=job.user, region=region)
    work = job.workdir / "layer.gpkg"
    writer = LayerWriter(
        work,
        layer=REGIONS_LAYER,
        attributes=REGION_ATTRIBUTES,
        geometry_type="MultiPolygon",
        srid=srid,
    )
    for batch in _chunks(regions, CHUNK_ROWS):
        codes, names, levels, parents, geometry = zip(*batch, strict=True)
        figures = [counts.get(code, (0, 0, 0)) for code in codes]
        columns = {
            "code": codes,
            "reg_name": names,
            "level": levels,
            "parent": parents,
            "hh_count": [f[0] for f in figures],
            "grade_c": [f[1] for f in figures],
            "grade_d": [f[2] for f in figures],
        }
        writer.write(columns, geometry)
        job.advance(len(batch))
    if not writer.created:
        writer.write({a.name: [] for a in REGION_ATTRIBUTES if a.labels is None}, [])
    _translate(
        work,
        job,
        layer=REGIONS_LAYER,
        attributes=REGION_ATTRIBUTES,
        geometry_type="MultiPolygon",
        description=_description(job, _("Regions"), srid),
    )
