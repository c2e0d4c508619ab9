"""python manage.py import_households PATH [--members PATH] [--crs CRS] [--dry-run]"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from housing.importers import ImportFailed, import_households
from housing.importers.households import CRS_CHOICES


class Command(BaseCommand):
    help = (
        "Import households and their current houses (and, with --members, family members) "
        "from CSV (UTF-8) or XLSX. Every row is checked first: a file with any bad row "
        "imports nothing. Re-importing updates by archive number, never duplicates."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Households file (.csv or .xlsx).")
        parser.add_argument("--members", help="Family members file (.csv or .xlsx).")
        parser.add_argument(
            "--crs",
            choices=CRS_CHOICES,
            default="wgs84",
            help="Coordinate system of longitude/latitude: wgs84 (GPS), cgcs2000 (official "
            "maps, taken as WGS84) or gcj02 (picked on an AMap/Tencent map; converted).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check the files and report; write nothing."
        )

    def handle(self, *args, path, members, crs, dry_run, **options):
        try:
            result = import_households(path=path, members_path=members, crs=crs, dry_run=dry_run)
        except ImportFailed as exc:
            raise CommandError(str(exc)) from None
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(str(warning)))
        params = {
            "households": result.households,
            "members": result.members,
            "households_created": result.households_created,
            "households_updated": result.households_updated,
            "members_created": result.members_created,
            "members_updated": result.members_updated,
        }
        if dry_run:
            message = _(
                "Nothing was written. Households that would be imported: "
                "%(households_created)d new, %(households_updated)d updated. "
                "Members: %(members_created)d new, %(members_updated)d updated."
            )
        else:
            message = _(
                "Households: %(households_created)d created, %(households_updated)d updated. "
                "Members: %(members_created)d created, %(members_updated)d updated."
            )
        self.stdout.write(self.style.SUCCESS(message % params))
