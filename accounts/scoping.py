"""Region scoping: the one place that decides which rows a user may see.

A user sees their regions and everything under them. Region codes are hierarchical
(a village's 12-digit code starts with its township's 9 digits, which start with its
county's 6, ...), so "under" is a prefix match on the code: one indexed predicate, no
tree walk. Administrators see everything. A user with no regions sees nothing.

cached_region_codes() is user_region_codes() kept in the Django cache between requests, for
the hot paths (map tiles) where one query a request matters. Whether a user is active or an
administrator is always read from the user row the request loaded; only the region codes are
cached. Each entry carries the two tokens that were current when its codes were read: the
user's own (replaced when their regions, role or account change) and everyone's (replaced
when any region is saved or deleted). A token is replaced both at once and after the commit
of the change, and a reader takes the tokens before it reads the database, so an entry read
before a change can never pass for one read after it. With a cache shared by every process
(DJANGO_CACHE_URL) the next request sees the change; with a cache in each process's memory,
another process's entry lives at most LOCAL_SECONDS.
"""

import uuid
from functools import reduce
from operator import or_

from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction
from django.db.models import Q, QuerySet

SHARED_SECONDS = 3600
LOCAL_SECONDS = 10
_ENTRY = "anju:scope:{pk}"
_USER_TOKEN = "anju:scope-token:{pk}"
_ALL_TOKEN = "anju:scope-token"


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
        cached = _read_codes(user)
        user._anju_region_codes = cached
    return cached


def _read_codes(user) -> list[str]:
    codes = sorted(user.regions.values_list("code", flat=True), key=len)
    kept: list[str] = []
    for code in codes:
        if not any(code.startswith(k) for k in kept):
            kept.append(code)
    return kept


def cached_region_codes(user) -> list[str] | None:
    """user_region_codes(user), from the cache when the user's regions are unchanged since."""
    if not user.is_authenticated or not user.is_active:
        return []
    if user.is_administrator:
        return None
    cached = getattr(user, "_anju_region_codes", None)
    if cached is not None:
        return cached
    keys = [_ALL_TOKEN, _USER_TOKEN.format(pk=user.pk), _ENTRY.format(pk=user.pk)]
    found = cache.get_many(keys)
    tokens = (found.get(keys[0]), found.get(keys[1]))
    entry = found.get(keys[2])
    if entry is not None and None not in tokens and entry[0] == tokens:
        cached = list(entry[1])
    else:
        # The tokens before the database: a change committed after this read replaces one.
        tokens = (_token(keys[0], tokens[0]), _token(keys[1], tokens[1]))
        cached = _read_codes(user)
        local = isinstance(caches["default"], LocMemCache)
        seconds = LOCAL_SECONDS if local else SHARED_SECONDS
        cache.set(keys[2], (tokens, tuple(cached)), seconds)
    user._anju_region_codes = cached
    return cached


def _token(key: str, current: str | None) -> str:
    if current is None:
        cache.add(key, uuid.uuid4().hex, None)
        current = cache.get(key)
    return current


def forget_region_codes(user_pks=None) -> None:
    """The cached codes of these users (None: of everyone) are stale: now and after commit."""
    keys = [_ALL_TOKEN] if user_pks is None else [_USER_TOKEN.format(pk=pk) for pk in user_pks]
    if not keys:
        return

    def replace():
        cache.set_many({key: uuid.uuid4().hex for key in keys}, None)

    replace()
    transaction.on_commit(replace)


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
