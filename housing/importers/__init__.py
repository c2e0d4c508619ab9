"""Bulk imports of regions and households: validate everything, then write in bulk.

The management commands import_regions and import_households are thin wrappers around
`import_regions` and `import_households`; both raise ImportFailed (nothing written) with a
report of every problem, by file, row and column.
"""

from housing.importers.households import HouseholdImportResult, import_households
from housing.importers.regions import RegionImportResult, import_regions
from housing.importers.report import ImportFailed, Problem

__all__ = [
    "HouseholdImportResult",
    "ImportFailed",
    "Problem",
    "RegionImportResult",
    "import_households",
    "import_regions",
]
