"""The client's address: from the connection, or from a trusted proxy's header."""

import pytest
from django.test import RequestFactory

from accounts.network import client_ip


def request(remote, header=None, name="HTTP_X_FORWARDED_FOR"):
    meta = {"REMOTE_ADDR": remote}
    if header is not None:
        meta[name] = header
    return RequestFactory().get("/", **meta)


def test_without_trusted_proxies_the_connecting_address_is_the_client(settings):
    settings.ANJU_TRUSTED_PROXIES = []

    assert client_ip(request("203.0.113.7", "192.0.2.1")) == "203.0.113.7"


@pytest.mark.parametrize(
    ("remote", "header", "expected"),
    [
        # The proxy appended the address it saw; what the client wrote sits to its left.
        ("10.0.0.5", "192.0.2.1, 203.0.113.7", "203.0.113.7"),
        # Two trusted proxies in a row: skipped from the right.
        ("10.0.0.5", "192.0.2.1, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
        ("10.0.0.5", "203.0.113.7", "203.0.113.7"),
        # No header, or nothing but proxies: as far back as we can see.
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "10.0.0.9", "10.0.0.9"),
        # Garbage a trusted proxy would not write: stop at the last address we trust.
        ("10.0.0.5", "203.0.113.7, not-an-address", "10.0.0.5"),
        # Not from a trusted proxy: the header is the client's own claim, ignored.
        ("203.0.113.8", "192.0.2.1", "203.0.113.8"),
        ("2001:db8::1", "192.0.2.1", "2001:db8::1"),
    ],
)
def test_behind_trusted_proxies_the_first_untrusted_address_from_the_right(
    settings, remote, header, expected
):
    settings.ANJU_TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert client_ip(request(remote, header)) == expected


def test_the_header_is_configurable(settings):
    settings.ANJU_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.ANJU_CLIENT_IP_HEADER = "X-Real-IP"

    assert client_ip(request("127.0.0.1", "203.0.113.7", name="HTTP_X_REAL_IP")) == "203.0.113.7"
    assert client_ip(request("127.0.0.1", "203.0.113.9")) == "127.0.0.1"
