"""Which address a request comes from: the one place login lockout and API throttles ask.

Behind a reverse proxy every request arrives from the proxy's address, so counting by
REMOTE_ADDR would put every user in one bucket; trusting X-Forwarded-For outright would let
anyone pick a fresh address per request. So the header is read only when the request comes
from a proxy we were told to trust (ANJU_TRUSTED_PROXIES), and read from the right: each
trusted proxy appends the address it saw, so the first address from the right that is not a
trusted proxy is the client. Whatever a client writes into the header itself sits to the
left of that and is ignored.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _is_trusted(address: str) -> bool:
    networks = _networks(tuple(settings.ANJU_TRUSTED_PROXIES))
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _meta_key(header: str) -> str:
    """X-Forwarded-For -> HTTP_X_FORWARDED_FOR, as Django names it in request.META."""
    return "HTTP_" + header.strip().upper().replace("-", "_")


def client_ip(request) -> str:
    """The address of the client that sent this request, as far as we can trust it."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    if not settings.ANJU_TRUSTED_PROXIES or not _is_trusted(remote):
        return remote
    forwarded = request.META.get(_meta_key(settings.ANJU_CLIENT_IP_HEADER), "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            # A proxy we trust would not write this: stop at the last address we are sure of.
            return remote
        if not _is_trusted(hop):
            return hop
        remote = hop
    # Every hop is a trusted proxy: the left-most one is as far back as we can see.
    return remote
