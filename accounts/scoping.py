"""Region scoping: the one place that decides which rows a user may see.

A user sees their regions and everything under them. Region codes are hierarchical
(a village's 12-digit code starts with its township's 9 digits, which start with its
county's 6, ...), so "under" is a prefix match on the code: one indexed predicate, no
tree walk. Administrators see everything. A user with no regions sees nothing.
"""

from functools import reduce
from operator import or_

from django.db.models import Q, QuerySet


def user_region_codes(user) -> list[str] | None:
    """The user's region codes, pruned of codes already covered by a shorter one.

    None means unrestricted (an administrator).
    """
    if not user.is_authenticated or not user.is_active:
        return []
    if user.is_administrator:
        return None
    cached = getattr(user, "_anju_region_codes", None)
    if cached is None:
        codes = sorted(user.regions.values_list("code", flat=True), key=len)
        cached = []
        for code in codes:
            if not any(code.startswith(kept) for kept in cached):
                cached.append(code)
        user._anju_region_codes = cached
    return cached


def region_q(user, code_path: str) -> Q | None:
    """A Q restricting `code_path` (a lookup path to a region code) to the user's regions.

    None means no restriction. For a user with no regions, a Q that matches nothing.
    """
    codes = user_region_codes(user)
    if codes is None:
        return None
    if not codes:
        return Q(pk__in=[])
    return reduce(or_, (Q(**{f"{code_path}__startswith": code}) for code in codes))


def scope(queryset: QuerySet, user, code_path: str) -> QuerySet:
    """Filter any queryset by the user's regions, given the path to its region code.

    Examples: Region -> "code"; Household -> "village__code";
    FamilyMember -> "household__village__code".
    """
    q = region_q(user, code_path)
    return queryset if q is None else queryset.filter(q)


def code_visible(user, code: str) -> bool:
    """True if the region with this code is in, or under, one of the user's regions."""
    codes = user_region_codes(user)
    return codes is None or any(code.startswith(c) for c in codes)
