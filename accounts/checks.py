"""Deploy checks (`manage.py check --deploy`) of what Anju itself needs in production."""

from django.conf import settings
from django.core import checks
from django.utils.translation import gettext as _

PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register(checks.Tags.caches, deploy=True)
def shared_cache(app_configs, **kwargs):
    """The cache carries each user's region codes (accounts.scoping), the maps' data version
    and the API throttles' counts: per process, another gunicorn worker serves an old scope
    for up to 10 s after an administrator narrows a user's regions, and each counts alone."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend not in PER_PROCESS_CACHES:
        return []
    return [
        checks.Warning(
            _("The cache is kept in each process's memory (%(backend)s).") % {"backend": backend},
            hint=_(
                "Set DJANGO_CACHE_URL to a Redis database shared by every app server, "
                "e.g. redis://127.0.0.1:6379/1: users' regions, the maps' data version "
                "and the API throttles live there."
            ),
            id="anju.W001",
        )
    ]
