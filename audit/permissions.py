"""Who may read the audit work."""

from accounts.models import Role
from accounts.permissions import has_role

# Who reads the auditor's worklist of anomalies (administrators too, as always).
WORKLIST_ROLES = (Role.AUDITOR, Role.COUNTY_OFFICIAL)


def can_view_worklist(user) -> bool:
    """Auditors, county officials and administrators; not townships or inspectors."""
    return has_role(user, *WORKLIST_ROLES)
