"""Every user-facing read of exports. Each takes the user."""

from django.db.models import QuerySet
from django.http import Http404

from reports.models import Export
from reports.permissions import can_download_export

RECENT = 100


def export_list(*, user) -> QuerySet[Export]:
    """The user's own exports, newest first."""
    return Export.objects.filter(user=user).order_by("-id")


def export_get(*, user, pk: int) -> Export:
    """One export the user may download, or 404 (someone else's export is not a leak)."""
    export = Export.objects.select_related("user").filter(pk=pk).first()
    if export is None or not can_download_export(user, export):
        raise Http404("No such export.")
    return export


def export_by_number(*, number: str) -> Export | None:
    """For /verify/: which document a number is (any signed-in user may ask)."""
    return Export.objects.select_related("user").filter(number=number).first()
