"""Import administrative regions from a GIS layer (GeoJSON, GeoPackage, Shapefile) or a CSV.

Levels come from the code length and the tree from code prefixes, so a file needs only a
code and a name per row. Boundaries are stored in WGS84 whatever the layer's CRS.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.gis.gdal import CoordTransform, DataSource, GDALException, SpatialReference
from django.contrib.gis.geos import GEOSException, GEOSGeometry, MultiPolygon
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from housing.coords import out_of_china
from housing.history import CHANGED, CREATED, history_snapshot
from housing.importers.batching import UPDATE_BATCH, WRITE_BATCH, lookup
from housing.importers.readers import header_key, read_table
from housing.importers.report import ImportFailed, Problem
from housing.models import CODE_LENGTHS, LEVEL_BY_CODE_LENGTH, LEVEL_ORDER, Region, parent_code

# Tried in this order when --code-field / --name-field are not given.
CODE_FIELDS = ("code", "adcode", "区划代码", "行政区划代码", "代码", "编码", "区划编码")
NAME_FIELDS = ("name", "名称", "区划名称", "行政区划名称")

WGS84 = 4326
# The change reason on the history rows this import writes.
HISTORY_REASON = "import_regions"


@dataclass
class RegionImportResult:
    created: int = 0
    updated: int = 0
    created_by_level: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    # Imported all the same, but worth a look (a boundary outside China).
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class _Row:
    row: int
    code: str
    name: str
    level: str
    boundary: MultiPolygon | None
    has_boundary: bool  # False for a CSV: an existing boundary is then kept


def canonical_code(code: str) -> str:
    """Strip the zero padding of the 6- and 12-digit forms of GB/T 2260 and the statistical codes.

    AMap/DataV layers give a city as 520300 and a province as 520000; the statistics
    bureau gives a township as 520329102000. The padding digits are never a real
    subdivision (a county is never numbered 00, a township never 000), so 520300 is the
    city 5203, and 520329102000 is the township 520329102.
    """
    if len(code) == 12 and code.endswith("000"):
        code = code[:9]
    if len(code) == 9 and code.endswith("000"):
        code = code[:6]
    if len(code) == 6 and code.endswith("00"):
        code = code[:4]
    if len(code) == 4 and code.endswith("00"):
        code = code[:2]
    return code


def _code_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _pick_field(available: list[str], wanted: str | None, defaults: tuple[str, ...]) -> str | None:
    by_key = {header_key(name): name for name in available}
    for candidate in (wanted,) if wanted else defaults:
        if header_key(candidate) in by_key:
            return by_key[header_key(candidate)]
    return None


def _missing_field_problem(
    file: str, *, wanted: str | None, defaults: tuple[str, ...], option: str, available
) -> Problem:
    fields = ", ".join(available) or "-"
    if wanted:
        message = _("The field %(field)s is not in the file. Its fields are: %(fields)s.") % {
            "field": wanted,
            "fields": fields,
        }
    else:
        message = _(
            "None of the usual fields (%(defaults)s) is in the file; name the field with "
            "%(option)s. Its fields are: %(fields)s."
        ) % {"defaults": ", ".join(defaults), "option": option, "fields": fields}
    return Problem(file=file, message=message)


def _read_csv(path: Path, code_field, name_field) -> tuple[list[dict], str]:
    table = read_table(
        path,
        aliases={
            "code": (code_field,) if code_field else CODE_FIELDS,
            "name": (name_field,) if name_field else NAME_FIELDS,
        },
        required=("code", "name"),
    )
    records = [
        {
            "row": number,
            "code": table.cell(cells, "code"),
            "name": table.cell(cells, "name"),
            "geometry": None,
            "has_boundary": False,
        }
        for number, cells in table.rows
    ]
    return records, table.headers


def _ring_problems(geom) -> list[str]:
    """What is wrong with the rings of an OGR polygon or multipolygon, in words.

    GDAL reads an unclosed GeoJSON ring without complaint, and GEOS then fails on it; a
    ring is checked here so that the report can say which one.
    """
    polygons = list(geom) if geom.geom_type.name.startswith("Multi") else [geom]
    messages = []
    for p, polygon in enumerate(polygons, start=1):
        for r, ring in enumerate(polygon, start=1):
            count = len(ring)
            where = {"polygon": p, "ring": r, "count": count}
            if count < 4:
                messages.append(
                    _(
                        "Ring %(ring)d of polygon %(polygon)d has %(count)d points; a ring "
                        "needs at least 4, the last repeating the first."
                    )
                    % where
                )
            elif ring[0] != ring[count - 1]:
                messages.append(
                    _(
                        "Ring %(ring)d of polygon %(polygon)d is not closed: it starts at "
                        "%(first)s and ends at %(last)s."
                    )
                    % {**where, "first": _point_text(ring[0]), "last": _point_text(ring[count - 1])}
                )
    return messages


def _point_text(point) -> str:
    return "(" + ", ".join(f"{c:.6f}".rstrip("0").rstrip(".") for c in point[:2]) + ")"


def _extent_problem(extent) -> str | None:
    """Refuse coordinates no WGS84 longitude/latitude can have (after reprojection)."""
    min_lon, min_lat, max_lon, max_lat = extent
    if not all(math.isfinite(v) for v in extent):
        return _("The boundary has coordinates that are not numbers.")
    if -180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90:
        return None
    message = _(
        "The boundary reaches longitude %(min_lon)s to %(max_lon)s, latitude %(min_lat)s to "
        "%(max_lat)s: a longitude is between -180 and 180, a latitude between -90 and 90."
    ) % {
        "min_lon": f"{min_lon:g}",
        "max_lon": f"{max_lon:g}",
        "min_lat": f"{min_lat:g}",
        "max_lat": f"{max_lat:g}",
    }
    swapped = (min_lat, min_lon, max_lat, max_lon)
    if _in_china(swapped):
        message += " " + _("Read the other way round it is in China: are they swapped?")
    else:
        message += " " + _(
            "Is the layer's coordinate system (its .prj, or the GeoJSON's crs) missing or wrong?"
        )
    return message


def _in_china(extent) -> bool:
    min_lon, min_lat, max_lon, max_lat = extent
    return not (out_of_china(min_lon, min_lat) or out_of_china(max_lon, max_lat))


def _to_boundary(
    geom, transform, file: str, row: int
) -> tuple[MultiPolygon | None, Problem | None, Problem | None]:
    """An OGR geometry as a WGS84 MultiPolygon, or the problem that prevents it; and a
    warning (imported all the same) for a boundary outside China."""

    def refused(message) -> tuple[None, Problem, None]:
        return None, Problem(file=file, row=row, unit="feature", message=message), None

    # Counted first, on GDAL's copy: GEOS and the database are never handed a monster.
    limit = settings.ANJU_BOUNDARY_MAX_VERTICES
    vertices = geom.point_count
    if vertices > limit:
        return refused(
            _(
                "The boundary has %(count)d vertices; at most %(limit)d are accepted "
                "(ANJU_BOUNDARY_MAX_VERTICES). Simplify it first, e.g. with "
                "ogr2ogr -simplify 0.0001 (about 10 m), and import it again."
            )
            % {"count": vertices, "limit": limit}
        )
    try:
        geom.set_3d(False)
        if geom.geom_type.name in ("Polygon", "MultiPolygon"):
            rings = _ring_problems(geom)
            if rings:
                return refused(" ".join(rings))
        if transform is not None:
            geom.transform(transform)
        problem = _extent_problem(geom.extent)
        if problem:
            return refused(problem)
        geos = GEOSGeometry(geom.wkb, srid=WGS84)
    except (GDALException, GEOSException, ValueError) as exc:
        return refused(_("The geometry cannot be read: %(error)s") % {"error": exc})
    if geos.geom_type == "Polygon":
        geos = MultiPolygon(geos, srid=WGS84)
    if geos.geom_type != "MultiPolygon":
        return refused(
            _("A boundary must be a polygon or multipolygon, not a %(type)s.")
            % {"type": geos.geom_type}
        )
    if not geos.valid:
        # Self-touching rings are common in published boundaries; repair what GEOS can and
        # refuse only what would no longer be an area.
        fixed = geos.make_valid()
        if fixed.geom_type == "Polygon":
            fixed = MultiPolygon(fixed, srid=WGS84)
        if fixed.geom_type != "MultiPolygon":
            return refused(
                _("The boundary is not a valid polygon: %(reason)s") % {"reason": geos.valid_reason}
            )
        geos = fixed
    geos.srid = WGS84
    warning = None
    if not _in_china(geom.extent):
        warning = Problem(
            file=file,
            row=row,
            unit="feature",
            message=_(
                "The boundary (longitude %(min_lon)s to %(max_lon)s, latitude %(min_lat)s to "
                "%(max_lat)s) is not inside China; imported all the same. Check the layer's "
                "coordinate system."
            )
            % dict(
                zip(
                    ("min_lon", "min_lat", "max_lon", "max_lat"),
                    (f"{v:g}" for v in geom.extent),
                    strict=True,
                )
            ),
        )
    return geos, None, warning


def _read_layer(path: Path, code_field, name_field) -> tuple[list[dict], dict[str, str]]:
    file = path.name
    try:
        source = DataSource(str(path), encoding="utf-8")
    except GDALException as exc:
        raise ImportFailed(
            [
                Problem(
                    file=file,
                    message=_("The file cannot be read as GIS data: %(error)s") % {"error": exc},
                )
            ]
        ) from None
    if source.layer_count == 0:
        raise ImportFailed([Problem(file=file, message=_("The file has no layer."))])
    layer = source[0]
    available = list(layer.fields)
    code_name = _pick_field(available, code_field, CODE_FIELDS)
    name_name = _pick_field(available, name_field, NAME_FIELDS)
    problems = []
    if code_name is None:
        problems.append(
            _missing_field_problem(
                file,
                wanted=code_field,
                defaults=CODE_FIELDS,
                option="--code-field",
                available=available,
            )
        )
    if name_name is None:
        problems.append(
            _missing_field_problem(
                file,
                wanted=name_field,
                defaults=NAME_FIELDS,
                option="--name-field",
                available=available,
            )
        )
    if problems:
        raise ImportFailed(problems)

    # A layer without a CRS is taken as WGS84; CGCS2000 (EPSG:4490) and projected CRSs
    # are transformed like any other. GDAL's traditional axis order keeps longitude first.
    transform = None
    if layer.srs is not None and layer.srs.srid != WGS84:
        transform = CoordTransform(layer.srs, SpatialReference(WGS84))

    records = []
    for position, feature in enumerate(layer, start=1):
        record = {
            "row": position,
            "code": _code_text(feature.get(code_name)),
            "name": _code_text(feature.get(name_name)),
            "geometry": None,
            "has_boundary": True,
            "problem": None,
            "warning": None,
        }
        try:
            geom = feature.geom
        except GDALException:
            geom = None  # a feature without geometry: the region gets no boundary
        if geom is not None:
            record["geometry"], record["problem"], record["warning"] = _to_boundary(
                geom, transform, file, position
            )
        records.append(record)
    return records, {"code": code_name, "name": name_name}


def import_regions(
    *,
    path,
    code_field: str | None = None,
    name_field: str | None = None,
    dry_run: bool = False,
) -> RegionImportResult:
    """Validate every row, then upsert all regions by code in one transaction.

    Raises ImportFailed listing every problem, having written nothing.
    """
    path = Path(path)
    file = path.name
    if not path.exists():
        raise ImportFailed([Problem(file=file, message=_("The file does not exist."))])
    is_table = path.suffix.lower() in (".csv", ".txt")
    if is_table:
        records, headers = _read_csv(path, code_field, name_field)
    else:
        records, headers = _read_layer(path, code_field, name_field)
    unit = "row" if is_table else "feature"

    problems: list[Problem] = []
    rows: list[_Row] = []
    seen: dict[str, int] = {}

    def problem(record, key, message):
        problems.append(
            Problem(
                file=file,
                row=record["row"],
                unit=unit,
                column=headers[key],
                value=record[key],
                message=message,
            )
        )

    for record in records:
        if record.get("problem"):
            problems.append(record["problem"])
        raw = record["code"]
        if not raw:
            problem(record, "code", _("A region code is required."))
            continue
        if not raw.isdigit():
            problem(record, "code", _("A region code has digits only."))
            continue
        code = canonical_code(raw)
        level = LEVEL_BY_CODE_LENGTH.get(len(code))
        if level is None:
            problem(
                record,
                "code",
                _("A region code has %(lengths)s digits; %(code)s has %(n)d.")
                % {
                    "lengths": ", ".join(str(n) for n in CODE_LENGTHS.values()),
                    "code": raw,
                    "n": len(raw),
                },
            )
            continue
        if code in seen:
            if is_table:
                message = _("The region %(code)s is also in row %(row)d.")
            else:
                message = _("The region %(code)s is also in feature %(row)d.")
            problem(record, "code", message % {"code": code, "row": seen[code]})
            continue
        seen[code] = record["row"]
        region = Region(code=code, name=record["name"], level=level, boundary=record["geometry"])
        try:
            # The model's own rules (digits, length for the level, name present and short
            # enough); the parent is checked below against the file and the database.
            region.full_clean(exclude=["parent"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                key = name if name in ("code", "name") else "code"
                problem(record, key, " ".join(errors))
            continue
        rows.append(
            _Row(
                row=record["row"],
                code=code,
                name=record["name"],
                level=level,
                boundary=record["geometry"],
                has_boundary=record["has_boundary"],
            )
        )

    in_file = {row.code for row in rows} | set(seen)
    wanted_parents = {parent_code(row.code) for row in rows} - in_file - {None}
    with transaction.atomic():
        ids = dict(lookup(Region.objects.all(), "code", wanted_parents, "code", "id"))
        for row in rows:
            parent = parent_code(row.code)
            if parent and parent not in in_file and parent not in ids:
                problems.append(
                    Problem(
                        file=file,
                        row=row.row,
                        unit=unit,
                        column=headers["code"],
                        value=row.code,
                        message=_(
                            "The parent region %(parent)s is neither in this file nor in "
                            "the database."
                        )
                        % {"parent": parent},
                    )
                )
        if problems:
            problems.sort(key=lambda p: p.row or 0)
            raise ImportFailed(problems)

        existing = dict(lookup(Region.objects.all(), "code", in_file, "code", "id"))
        result = RegionImportResult(
            dry_run=dry_run, warnings=[r["warning"] for r in records if r.get("warning")]
        )
        for row in rows:
            if row.code in existing:
                result.updated += 1
            else:
                result.created += 1
                result.created_by_level[row.level] = result.created_by_level.get(row.level, 0) + 1
        if dry_run:
            return result
        _write(rows, ids=ids, existing=existing)
    return result


def _write(rows: list[_Row], *, ids: dict[str, int], existing: dict[str, int]) -> None:
    """Top level first, so that each level finds its parents' ids."""
    ids = {**ids, **existing}
    for level in LEVEL_ORDER:
        at_level = [row for row in rows if row.level == level]
        if not at_level:
            continue
        new = [
            Region(
                code=row.code,
                name=row.name,
                level=row.level,
                parent_id=ids.get(parent_code(row.code)),
                boundary=row.boundary,
            )
            for row in at_level
            if row.code not in existing
        ]
        Region.objects.bulk_create(new, batch_size=WRITE_BATCH)
        for keep_boundary in (False, True):
            changed = [
                Region(
                    id=existing[row.code],
                    code=row.code,
                    name=row.name,
                    level=row.level,
                    parent_id=ids.get(parent_code(row.code)),
                    boundary=row.boundary,
                )
                for row in at_level
                if row.code in existing and row.has_boundary != keep_boundary
            ]
            fields = ["name", "level", "parent"] + ([] if keep_boundary else ["boundary"])
            Region.objects.bulk_update(changed, fields, batch_size=UPDATE_BATCH)
            history_snapshot(
                Region,
                [region.pk for region in changed],
                history_type=CHANGED,
                reason=HISTORY_REASON,
            )
        ids.update(lookup(Region.objects.all(), "code", [r.code for r in new], "code", "id"))
        history_snapshot(
            Region, [ids[r.code] for r in new], history_type=CREATED, reason=HISTORY_REASON
        )
