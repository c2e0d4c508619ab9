"""python manage.py purge_exports --older-than DAYS: delete old export files from storage."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from reports.errors import ExportError
from reports.services import exports_purge


class Command(BaseCommand):
    help = (
        "Delete the files of exports finished more than DAYS days ago from storage. Their "
        "records stay, with the SHA-256 and the audit-chain event, so a purged document can "
        "still be verified; its file can be made again as a new export."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            required=True,
            metavar="DAYS",
            help=_("Purge exports finished more than this many days ago."),
        )

    def handle(self, *args, **options):
        try:
            purged = exports_purge(older_than_days=options["older_than"])
        except ExportError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            ngettext("%(count)d export file deleted.", "%(count)d export files deleted.", purged)
            % {"count": purged}
        )
