"""What the maps read: one narrow row per located household, and a data version.

The overview map, its tiles and the progress dashboard count households by region, grade
and case state across a whole county (300,000 households). Joining household, village,
current house and latest case for every tile would cost four tables per request; MapPoint
holds the result of that join, one row per household, with the point (if it has one)
already in Web Mercator (EPSG:3857), the projection tiles are cut in.

MapPoint is derived data: maps.points.refresh() rebuilds rows from the registry, and the
registry's writes call it (signals for single saves, explicit calls from the bulk paths).
`refresh_map_points` rebuilds everything. MapVersion counts refreshes: tile ETags carry it,
so a browser's cached tile goes stale the moment the data under it changes.
"""

from django.contrib.gis.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from housing.models import Household, KeyGroup


class MapPoint(models.Model):
    # MapPoint is derived from the registry, written by maps.points in the same transaction
    # as the registry change it follows, and deleted with its household by the ORM's cascade.
    # Its references are not database foreign keys: checking them cost each bulk import
    # 0.85 s per 100,000 households at commit, for rows the refresh has just read from the
    # tables they point to. A row left behind anyway (a household deleted by raw SQL, or
    # during a refresh that read it) is removed by the next full refresh.
    household = models.OneToOneField(
        Household,
        on_delete=models.CASCADE,
        primary_key=True,
        db_constraint=False,
        related_name="map_point",
        verbose_name=_("household"),
    )
    region_code = models.CharField(
        _("village code"), max_length=12, help_text=_("The household's village code.")
    )
    point = models.PointField(
        _("point (Web Mercator)"),
        srid=3857,
        null=True,
        blank=True,
        help_text=_("Blank: no location."),
    )
    # The point's cell on a fixed grid of 2^15 × 2^15 cells over the Web Mercator world (a
    # zoom-12 tile's 32-pixel cells, about 1.2 km); a coarser zoom's cell is this >> k.
    gx = models.IntegerField(_("grid column"), null=True, blank=True)
    gy = models.IntegerField(_("grid row"), null=True, blank=True)
    grade = models.CharField(_("safety grade"), max_length=1, blank=True)
    case_state = models.CharField(
        _("case state"), max_length=20, blank=True, help_text=_("Of the latest case; blank: none.")
    )
    key_group = models.ForeignKey(
        KeyGroup,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,  # tiles filter by scope and place; only deleting a group looks it up
        related_name="+",
        verbose_name=_("key group"),
    )
    funding_year = models.PositiveSmallIntegerField(
        _("funding year"), null=True, blank=True, help_text=_("Of the latest case.")
    )

    class Meta:
        verbose_name = _("map point")
        verbose_name_plural = _("map points")
        indexes = [
            models.Index(fields=["region_code"], name="maps_point_region"),
            models.Index(fields=["gx", "gy"], name="maps_point_grid"),
        ]

    def __str__(self):
        return str(self.household_id)


class MapCell(models.Model):
    """MapPoint counted by cell and by everything the maps filter on: the low-zoom pyramid.

    A zoom-8 tile covers a whole county; counting 300,000 MapPoint rows for it takes a
    quarter of a second. MapCell holds those counts ready, per zoom `level` 0–12, per cell
    of that zoom's grid (32-pixel cells), per village, grade, case state, key group and
    funding year, so a tile sums a few thousand rows and still filters and scopes exactly.
    Level -1 has one "cell" per combination, for all households, located or not: the region
    figures. maps.points keeps it in step by deltas (subtract a household's old row, add its
    new one), in the same transaction as the MapPoint change.
    """

    REGION_LEVEL = -1

    # The cell's key is its primary key: one index to write per cell, not a surrogate id's
    # and the key's (a bulk refresh writes a few cells per household: 30% less time).
    pk = models.CompositePrimaryKey(
        "level", "cx", "cy", "region_code", "grade", "case_state", "key_group_ref", "funding_year"
    )
    level = models.SmallIntegerField(_("zoom level"))
    cx = models.IntegerField(_("cell column"))
    cy = models.IntegerField(_("cell row"))
    region_code = models.CharField(_("village code"), max_length=12)
    grade = models.CharField(_("safety grade"), max_length=1, blank=True)
    case_state = models.CharField(_("case state"), max_length=20, blank=True)
    key_group_ref = models.IntegerField(_("key group id"), default=0, help_text=_("0: none."))
    funding_year = models.IntegerField(_("funding year"), default=0, help_text=_("0: no case."))
    n = models.IntegerField(_("households"), default=0)
    located = models.IntegerField(_("households with a location"), default=0)
    sx = models.FloatField(_("sum of x"), default=0)
    sy = models.FloatField(_("sum of y"), default=0)

    class Meta:
        verbose_name = _("map cell")
        verbose_name_plural = _("map cells")
        # A delta can empty a cell; the refresh deletes emptied cells through this index
        # instead of scanning the whole pyramid.
        indexes = [models.Index(fields=["level"], condition=Q(n=0), name="maps_cell_empty")]

    def __str__(self):
        return f"{self.level}/{self.cx}/{self.cy} {self.region_code}: {self.n}"


class MapVersion(models.Model):
    """A single row: bumped by every refresh, in the refresh's transaction."""

    version = models.BigIntegerField(_("version"), default=0)
    changed_at = models.DateTimeField(_("changed at"), auto_now=True)

    class Meta:
        verbose_name = _("map data version")
        verbose_name_plural = _("map data versions")

    def __str__(self):
        return str(self.version)
