"""Signals the registry sends for writes that bypass Model.save().

Bulk paths (the importers, the demo seeder) write with COPY or bulk_create, so no
post_save fires. They send `households_changed` after writing, inside their transaction,
so that derived data (the maps' MapPoint rows) follows. housing does not know who listens.
"""

from django.dispatch import Signal

# kwargs: ids — an iterable of Household ids, or None for "possibly all of them".
households_changed = Signal()
