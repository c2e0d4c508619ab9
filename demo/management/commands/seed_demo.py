import logging
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.anomalies import AnomalyKind
from demo import cases as case_demo
from demo import evidence as photo_demo
from demo import registry as demo
from renovation.models import CaseState

# What -v 2 prints the time of, in the order of the run.
PHASES = {
    "regions": gettext_lazy("Regions and key groups"),
    "households": gettext_lazy("Households, houses and family members drawn"),
    "writing": gettext_lazy("Registry rows written"),
    "history": gettext_lazy("History rows"),
    "statistics": gettext_lazy("Table statistics (ANALYZE)"),
    "users": gettext_lazy("Demo users"),
    "map": gettext_lazy("Map tables refreshed"),
    "commit": gettext_lazy("Registry committed (foreign keys checked)"),
    "photo_plans": gettext_lazy("Households to photograph chosen"),
    "inspections": gettext_lazy("Inspections submitted"),
    "drawing": gettext_lazy("Photos drawn"),
    "uploads": gettext_lazy("Photos uploaded"),
    "processing": gettext_lazy("Photos processed (EXIF, thumbnails, evidence checks)"),
    "case_steps": gettext_lazy("Case steps before visits"),
    "cases": gettext_lazy("Renovation cases and planted anomalies"),
    "photo_commit": gettext_lazy("Photos and cases committed (queued photo tasks)"),
}


class Command(BaseCommand):
    help = gettext_lazy(
        "Build a synthetic demo county, 安居示范县 (520399, not a real county), under 贵州省 "
        "遵义市: townships and villages with boundaries, households with their houses and "
        "family members (all names and ID numbers invented), and demo users for every role "
        "(usernames inspector, township, county, county2, auditor and admin) with the password in "
        "ANJU_DEMO_PASSWORD. Up to --photos households get inspections with photos drawn for "
        "them, sent through the real photo pipeline, with a few planted problems so that the "
        "evidence flags show. Renovation cases are driven through every state by the demo users, "
        "with a few planted anomalies for the auditor's worklist (unless --no-cases). "
        "The same --seed gives the same data. It refuses to run when the demo county already "
        "exists; there is no reset: start from an empty database instead."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # argparse wants a plain string, translated when the command runs.
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--households",
            type=int,
            default=2000,
            help=_("How many households to create (default 2000)."),
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=1,
            help=_("Random seed; the same seed gives the same county (default 1)."),
        )
        parser.add_argument(
            "--photos",
            type=int,
            default=photo_demo.DEFAULT_PHOTOGRAPHED,
            help=_(
                "At most how many households get inspections with photos (default %(n)d): "
                "all renovated houses in progress or completed, and a few others."
            )
            % {"n": photo_demo.DEFAULT_PHOTOGRAPHED},
        )
        parser.add_argument(
            "--no-photos",
            action="store_true",
            help=_("Make no inspections or photos (the same as --photos 0)."),
        )
        parser.add_argument(
            "--no-cases",
            action="store_true",
            help=_(
                "Make no renovation cases (they need the photos: --no-photos makes none either)."
            ),
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help=_("When the demo county already exists, do nothing but print the demo logins."),
        )

    def handle(self, *args, households, seed, if_empty, photos, no_photos, no_cases, **options):
        password = settings.ANJU_DEMO_PASSWORD
        if demo.demo_county_exists():
            if if_empty:
                self.stdout.write(_("The demo county already exists; nothing to do."))
                self.stdout.write(demo.logins_table(rows=demo.demo_logins(), password=password))
                return
            raise CommandError(
                _(
                    "The demo county %(code)s already exists in this database; seed_demo adds "
                    "it only once. Use --if-empty to print the demo logins, or start from an "
                    "empty database (a new DATABASE_URL, or delete the SpatiaLite file) to seed "
                    "again."
                )
                % {"code": demo.COUNTY[0]}
            )
        if households < 1:
            raise CommandError(_("--households must be at least 1; got %(n)d.") % {"n": households})
        if seed < 0:
            raise CommandError(_("--seed must be 0 or more; got %(seed)d.") % {"seed": seed})
        if photos < 0:
            raise CommandError(_("--photos must be 0 or more; got %(n)d.") % {"n": photos})
        photos = 0 if no_photos else photos
        taken = demo.demo_users_taken()
        cases = bool(photos) and not no_cases
        if photos:
            taken = sorted([*taken, *photo_demo.field_inspectors_taken()])
        if cases:
            taken = sorted([*taken, *case_demo.township_officials_taken()])
        if taken:
            raise CommandError(
                _(
                    "The demo users need these usernames, which are already taken: %(names)s. "
                    "Rename or delete those users first."
                )
                % {"names": ", ".join(taken)}
            )
        started = time.monotonic()
        clock = demo.PhaseClock()
        try:
            summary = demo.demo_county_create(
                households=households,
                seed=seed,
                on_progress=self._progress(households, options["verbosity"]),
                clock=clock,
            )
        except ValidationError as error:
            # Typically ANJU_DEMO_PASSWORD failing the password validators.
            raise CommandError(
                _("Nothing was created: %(error)s") % {"error": demo.validation_message(error)}
            ) from error
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "Created the demo county %(name)s (%(code)s) in %(seconds).1f s. "
                    "Townships: %(townships)d; villages: %(villages)d; households: "
                    "%(households)d; houses: %(houses)d; family members: %(members)d."
                )
                % {
                    "name": demo.COUNTY[1],
                    "code": demo.COUNTY[0],
                    "townships": summary.townships,
                    "villages": summary.villages,
                    "households": summary.households,
                    "houses": summary.houses,
                    "members": summary.members,
                    "seconds": time.monotonic() - started,
                }
            )
        )
        if photos:
            # Celery (eager without a broker) reports every task at INFO: a thousand lines,
            # when the transaction commits.
            trace_logger = logging.getLogger("celery.app.trace")
            level = trace_logger.level
            trace_logger.setLevel(max(level, logging.WARNING))
            try:
                # Photos and cases in one transaction: the cases start inside the photo demo.
                with transaction.atomic():
                    made = case_demo.CaseDemo(seed=seed, households=households) if cases else None
                    self._photos(seed=seed, limit=photos, cases=made, clock=clock)
                    if made:
                        with clock.phase("cases"):
                            self._cases(made)
                    committing = time.perf_counter()
                clock.add("photo_commit", time.perf_counter() - committing)
            finally:
                trace_logger.setLevel(level)
        if options["verbosity"] >= 2:
            self._timings(clock, total=time.monotonic() - started)
        self.stdout.write(demo.logins_table(rows=demo.demo_logins(), password=password))

    def _timings(self, clock: demo.PhaseClock, *, total: float) -> None:
        self.stdout.write(_("Seconds per phase:"))
        for key, seconds in clock.seconds.items():
            label = PHASES.get(key, key)
            self.stdout.write(
                _("  %(phase)s: %(seconds).1f s") % {"phase": label, "seconds": seconds}
            )
        self.stdout.write(_("  Total: %(seconds).1f s") % {"seconds": total})

    def _photos(self, *, seed: int, limit: int, cases=None, clock=None) -> None:
        started = time.monotonic()
        summary = photo_demo.demo_photos_create(
            seed=seed,
            limit=limit,
            before_visit=cases.before_visit if cases else None,
            clock=clock,
        )
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "Photo evidence in %(seconds).1f s: %(households)d households, "
                    "%(inspections)d inspections, %(photos)d photos, %(flagged)d of them with "
                    "evidence flags."
                )
                % {
                    "households": summary.households,
                    "inspections": summary.inspections,
                    "photos": summary.photos,
                    "flagged": summary.flagged,
                    "seconds": time.monotonic() - started,
                }
            )
        )
        if summary.planted:
            self.stdout.write(
                _("Planted problems, to see the flags: %(list)s.")
                % {
                    "list": "; ".join(
                        f"{photo_demo.problem_label(problem)}: {archive_no}"
                        for problem, archive_no in summary.planted.items()
                    )
                }
            )

    def _cases(self, cases: case_demo.CaseDemo) -> None:
        started = time.monotonic()
        summary = cases.finish()
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "Renovation cases in %(seconds).1f s: %(cases)d cases, %(payments)d "
                    "payments. By state: %(states)s."
                )
                % {
                    "cases": summary.cases,
                    "payments": summary.payments,
                    "states": "; ".join(
                        f"{label}: {summary.states[state]}"
                        for state, label in CaseState.choices
                        if summary.states[state]
                    ),
                    "seconds": time.monotonic() - started + cases.seconds_in_photos,
                }
            )
        )
        if summary.planted:
            self.stdout.write(
                _("Planted anomalies, to see in the auditor's worklist: %(list)s.")
                % {
                    "list": "; ".join(
                        f"{AnomalyKind(code).label}: {', '.join(numbers)}"
                        for code in AnomalyKind.values
                        if (numbers := summary.planted.get(code))
                    )
                }
            )

    def _progress(self, total: int, verbosity: int):
        """Report every tenth of the way on large runs, which take minutes."""
        if total < 20000 or verbosity < 1:
            return None
        step = max(1, total // 10)
        state = {"next": step}

        def report(done: int, of: int):
            if done >= state["next"] or done == of:
                state["next"] = done + step
                self.stdout.write(
                    _("Households: %(done)d of %(total)d") % {"done": done, "total": of}
                )

        return report
