from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from maps import points
from maps.models import MapPoint


class Command(BaseCommand):
    help = gettext_lazy(
        "Rebuild the maps' household points from the registry (after a direct database edit, "
        "or a change of what the maps count)."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def handle(self, *args, **options):
        points.refresh()
        self.stdout.write(
            _("Map points rebuilt: %(n)d households on the map, data version %(v)d.")
            % {"n": MapPoint.objects.count(), "v": points.version()}
        )
