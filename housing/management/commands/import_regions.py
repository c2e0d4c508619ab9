"""python manage.py import_regions PATH [--code-field F] [--name-field F] [--dry-run]"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from housing.importers import ImportFailed, import_regions


class Command(BaseCommand):
    help = (
        "Import administrative regions from GeoJSON, GeoPackage, Shapefile or a CSV of "
        "code,name. Levels come from the code length, parents from code prefixes; boundaries "
        "are reprojected to WGS84. Existing regions are updated by code."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="GeoJSON, GeoPackage, Shapefile or CSV file.")
        parser.add_argument("--code-field", help="Field holding the region code.")
        parser.add_argument("--name-field", help="Field holding the region name.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check the file and report; write nothing."
        )

    def handle(self, *args, path, code_field, name_field, dry_run, **options):
        try:
            result = import_regions(
                path=path, code_field=code_field, name_field=name_field, dry_run=dry_run
            )
        except ImportFailed as exc:
            raise CommandError(str(exc)) from None
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(str(warning)))
        if dry_run:
            message = _("Regions that would be imported: %(created)d new, %(updated)d updated.")
        else:
            message = _("Regions imported: %(created)d created, %(updated)d updated.")
        self.stdout.write(
            self.style.SUCCESS(
                message
                % {
                    "count": result.created + result.updated,
                    "created": result.created,
                    "updated": result.updated,
                }
            )
        )
