"""python manage.py verify_document FILE: is this file exactly one that Anju issued?"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from reports.services import document_verify


class Command(BaseCommand):
    help = (
        "Check a file against the documents Anju issued: by its SHA-256, and its record in "
        "the audit chain. Exits with status 0 for an issued document, 1 otherwise (altered "
        "or unknown)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help=_("The file to check."))

    def handle(self, *args, **options):
        try:
            with open(options["file"], "rb") as handle:
                result = document_verify(fileobj=handle)
        except OSError as error:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s")
                % {"file": options["file"], "error": error.strerror or error}
            ) from None
        export = result.export
        if result.outcome == "issued":
            self.stdout.write(
                _(
                    "Issued by Anju: %(number)s, %(kind)s (%(format)s), issued to %(user)s at "
                    "%(at)s; SHA-256 %(sha)s; audit-chain event %(event)s."
                )
                % {
                    "number": export.number,
                    "kind": export.kind_label,
                    "format": export.format_label,
                    "user": export.user.username,
                    "at": timezone.localtime(export.issued_at).strftime("%Y-%m-%d %H:%M:%S"),
                    "sha": result.sha256,
                    "event": export.event_id,
                }
            )
            if not result.event_intact:
                raise CommandError(
                    _("But its record in the audit chain has been changed: run verify_audit.")
                )
            return
        if result.outcome == "altered":
            raise CommandError(
                _(
                    "Altered: the file carries the number %(number)s, but its content differs "
                    "from the document Anju issued under that number (SHA-256 %(sha)s)."
                )
                % {"number": result.claimed_number, "sha": result.sha256}
            )
        raise CommandError(
            _("Unknown: Anju issued no document with this content (SHA-256 %(sha)s).")
            % {"sha": result.sha256}
        )
