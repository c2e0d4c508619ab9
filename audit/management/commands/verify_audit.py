"""python manage.py verify_audit: walk the case events' hash chain and report the first break."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from audit.chain import verify_chain


class Command(BaseCommand):
    help = (
        "Check the audit trail of renovation cases: every event's hash against its content and "
        "the event before it, and the newest event against the chain head. Prints the number "
        "of events checked, or the first broken link and exits with status 1."
    )

    def handle(self, *args, **options):
        checked, broken = verify_chain()
        if broken is not None:
            self.stderr.write(
                ngettext(
                    "%(count)d event before the break is intact.",
                    "%(count)d events before the break are intact.",
                    checked,
                )
                % {"count": checked}
            )
            # CommandError: the message on stderr and a non-zero exit, for cron and monitoring.
            raise CommandError(broken.message)
        self.stdout.write(
            self.style.SUCCESS(
                ngettext(
                    "%(count)d event checked: the audit chain is intact.",
                    "%(count)d events checked: the audit chain is intact.",
                    checked,
                )
                % {"count": checked}
            )
        )
