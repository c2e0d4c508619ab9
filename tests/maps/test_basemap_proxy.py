"""The Tianditu tile proxy against a real HTTP server standing in for Tianditu.

The stub serves real PNG tiles (Pillow) on 127.0.0.1 and records every request, so the tests
see exactly what reached "Tianditu" (the key) and what reached the browser (never the key).
"""

import hashlib
import io
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from PIL import Image

from maps.basemaps import tianditu_proxy_url
from tests.conftest import browser_login

KEY = "tk-secret-8d41f0c2"
DAY = 24 * 60 * 60


class Upstream:
    """What the stub serves and what it was asked. mode: png | error | slow | xml."""

    def __init__(self):
        self.mode = "png"
        self.delay = 0.0
        self.version = 0  # bump to make every tile different from before
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def tile(self, layer: str, z: int, x: int, y: int) -> bytes:
        seed = hashlib.sha256(f"{layer}/{z}/{x}/{y}/{self.version}".encode()).digest()
        buffer = io.BytesIO()
        Image.new("RGB", (256, 256), tuple(seed[:3])).save(buffer, "PNG")
        return buffer.getvalue()

    def hits(self) -> int:
        with self.lock:
            return len(self.requests)


class StubHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        upstream: Upstream = self.server.upstream
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with upstream.lock:
            upstream.requests.append((parts.path, query))
        if upstream.mode == "slow":
            time.sleep(upstream.delay)
        if upstream.mode == "error":
            self._send(500, "text/plain", b"upstream broke")
        elif upstream.mode == "xml":
            # What Tianditu sends for a bad or exhausted key: 200 and an XML error.
            self._send(200, "text/xml", b"<ExceptionReport>invalid key</ExceptionReport>")
        else:
            layer = query["LAYER"]
            z, x, y = (int(query[k]) for k in ("TILEMATRIX", "TILECOL", "TILEROW"))
            self._send(200, "image/png", upstream.tile(layer, z, x, y))

    def _send(self, status: int, content_type: str, body: bytes):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the proxy gave up waiting (timeout test)

    def log_message(self, format, *args):
        pass


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def upstream():
    state = Upstream()
    server = StubServer(("127.0.0.1", 0), StubHandler)
    server.upstream = state
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.port = server.server_address[1]
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def tianditu(settings, upstream, tmp_path):
    """Tianditu as the base map, fetched from the stub, with a fresh tile cache."""
    real = django_settings.MAP_TIANDITU_URL
    assert real.startswith("https://t{s}.tianditu.gov.cn/")
    settings.MAP_BASEMAP = "tianditu"
    settings.TIANDITU_KEY = KEY
    # The real template's path and query, on the stub's host.
    settings.MAP_TIANDITU_URL = real.replace(
        "https://t{s}.tianditu.gov.cn/", f"http://127.0.0.1:{upstream.port}/t{{s}}/"
    )
    settings.MAP_TILE_CACHE_DIR = str(tmp_path / "tilecache")
    settings.MAP_TILE_CACHE_DAYS = 30
    settings.MAP_TILE_TIMEOUT = 2
    return upstream


@pytest.fixture
def user_client(client, make_user):
    client.force_login(make_user())
    return client


def tile_url(layer="vec", z=10, x=843, y=420) -> str:
    return reverse("basemap:tianditu_tile", args=[layer, z, x, y])


def cache_file(layer="vec", z=10, x=843, y=420) -> Path:
    root = Path(django_settings.MAP_TILE_CACHE_DIR)
    return root / "tianditu" / layer / str(z) / str(x) / f"{y}.tile"


def age(path: Path, days: float):
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def assert_no_key(response):
    assert KEY.encode() not in response.content
    assert KEY not in str(response.headers)
    assert b"tk=" not in response.content


@pytest.mark.parametrize(
    ("layer", "z", "x", "y"),
    [("vec", 10, 843, 420), ("cva", 10, 843, 420), ("img", 1, 1, 0), ("cia", 18, 0, 2**18 - 1)],
)
def test_tile_is_fetched_with_the_key_added_on_the_server(tianditu, user_client, layer, z, x, y):
    response = user_client.get(tile_url(layer, z, x, y))

    assert response.status_code == 200
    assert response.content == tianditu.tile(layer, z, x, y)
    assert Image.open(io.BytesIO(response.content)).size == (256, 256)
    assert response["Content-Type"] == "image/png"
    assert set(response["Cache-Control"].split(", ")) == {"private", "max-age=86400"}
    assert response["ETag"] == '"' + hashlib.sha256(response.content).hexdigest()[:32] + '"'
    assert_no_key(response)
    # Exactly one request reached "Tianditu": the WMTS GetTile on host t(x+y mod 8), with the key.
    [(path, query)] = tianditu.requests
    assert path == f"/t{(x + y) % 8}/{layer}_w/wmts"
    assert query == {
        "SERVICE": "WMTS",
        "REQUEST": "GetTile",
        "VERSION": "1.0.0",
        "LAYER": layer,
        "STYLE": "default",
        "TILEMATRIXSET": "w",
        "FORMAT": "tiles",
        "TILEMATRIX": str(z),
        "TILEROW": str(y),
        "TILECOL": str(x),
        "tk": KEY,
    }


def test_the_subdomain_depends_only_on_the_tile(tianditu, settings, user_client):
    settings.MAP_TILE_CACHE_DIR = ""  # every request goes upstream
    for x, y in [(5, 3), (5, 3), (0, 0), (7, 6)]:
        assert user_client.get(tile_url(z=4, x=x, y=y)).status_code == 200
    assert [path for path, _ in tianditu.requests] == [
        "/t0/vec_w/wmts",
        "/t0/vec_w/wmts",
        "/t0/vec_w/wmts",
        "/t5/vec_w/wmts",
    ]


def test_pages_point_at_the_proxy_and_never_carry_the_key(
    tianditu, client, county_official, households, regions
):
    client.force_login(county_official)
    pages = [
        reverse("portal:household_detail", args=[households["village1"].pk]),
        reverse("portal:region_detail", args=[regions["county"].code]),
    ]
    for url in pages:
        html = client.get(url).content.decode()
        assert "/maps/basemap/tianditu/vec/{z}/{x}/{y}" in html
        assert "/maps/basemap/tianditu/cva/{z}/{x}/{y}" in html
        assert KEY not in html
        assert "tk=" not in html
        assert "tianditu.gov.cn" not in html
    assert tianditu.requests == []  # rendering a page fetches no tile


def test_proxy_url_keeps_leaflets_placeholders():
    assert tianditu_proxy_url("img") == "/maps/basemap/tianditu/img/{z}/{x}/{y}"


def test_a_cached_tile_is_served_without_asking_tianditu(tianditu, user_client):
    first = user_client.get(tile_url())
    assert tianditu.hits() == 1
    assert cache_file().is_file()
    # Not even a failing Tianditu is asked while the copy is fresh.
    tianditu.mode = "error"
    tianditu.version += 1
    second = user_client.get(tile_url())

    assert second.status_code == 200
    assert second.content == first.content
    assert second["Content-Type"] == "image/png"
    assert second["ETag"] == first["ETag"]
    assert tianditu.hits() == 1
    # Atomic writes leave no temporary file behind.
    assert [p.name for p in cache_file().parent.iterdir()] == ["420.tile"]


def test_a_stale_tile_is_fetched_again_and_the_cache_renewed(tianditu, user_client):
    old = user_client.get(tile_url()).content
    age(cache_file(), 31)
    tianditu.version += 1

    response = user_client.get(tile_url())

    assert response.status_code == 200
    assert response.content == tianditu.tile("vec", 10, 843, 420) != old
    assert tianditu.hits() == 2
    assert time.time() - cache_file().stat().st_mtime < 60
    assert cache_file().read_bytes() == b"image/png\n" + response.content
    # Renewed: the next request is a cache hit again.
    user_client.get(tile_url())
    assert tianditu.hits() == 2


def test_a_tile_younger_than_the_cache_days_is_not_fetched_again(tianditu, user_client):
    user_client.get(tile_url())
    age(cache_file(), 29)
    assert user_client.get(tile_url()).status_code == 200
    assert tianditu.hits() == 1


@pytest.mark.parametrize("failure", ["error", "xml"])
def test_a_stale_tile_is_served_when_tianditu_fails(tianditu, user_client, failure):
    old = user_client.get(tile_url()).content
    age(cache_file(), 400)
    tianditu.mode = failure

    response = user_client.get(tile_url())

    assert response.status_code == 200
    assert response.content == old
    assert response["Content-Type"] == "image/png"
    assert tianditu.hits() == 2


def test_a_damaged_cache_file_is_replaced_from_tianditu(tianditu, user_client):
    cache_file().parent.mkdir(parents=True)
    cache_file().write_bytes(b"half a tile")
    response = user_client.get(tile_url())
    assert response.status_code == 200
    assert response.content == tianditu.tile("vec", 10, 843, 420)
    assert cache_file().read_bytes() == b"image/png\n" + response.content


def test_without_a_cache_dir_every_tile_goes_to_tianditu(tianditu, settings, user_client, tmp_path):
    settings.MAP_TILE_CACHE_DIR = ""
    user_client.get(tile_url())
    assert user_client.get(tile_url()).status_code == 200
    assert tianditu.hits() == 2
    assert not (tmp_path / "tilecache").exists()


def test_an_unwritable_cache_costs_only_the_cache(tianditu, settings, user_client, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache folder should be")
    settings.MAP_TILE_CACHE_DIR = str(blocker)
    response = user_client.get(tile_url())
    assert response.status_code == 200
    assert response.content == tianditu.tile("vec", 10, 843, 420)


def test_if_none_match_is_answered_with_304(tianditu, user_client):
    etag = user_client.get(tile_url())["ETag"]

    response = user_client.get(tile_url(), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert "max-age=86400" in response["Cache-Control"]

    other = user_client.get(tile_url(), HTTP_IF_NONE_MATCH='"something-else"')
    assert other.status_code == 200
    assert other["ETag"] == etag


@pytest.mark.parametrize(
    "path",
    [
        "/maps/basemap/tianditu/abc/3/1/1",
        "/maps/basemap/tianditu/VEC/3/1/1",
        "/maps/basemap/tianditu/vec_w/3/1/1",
        "/maps/basemap/tianditu/ter/3/1/1",
        "/maps/basemap/tianditu/vec/0/0/0",
        "/maps/basemap/tianditu/vec/19/0/0",
        "/maps/basemap/tianditu/vec/3/8/0",
        "/maps/basemap/tianditu/vec/3/0/8",
        "/maps/basemap/tianditu/vec/3/-1/0",
        "/maps/basemap/tianditu/vec/3/1/x",
        "/maps/basemap/tianditu/vec/3/1",
    ],
)
def test_layers_and_tiles_outside_the_allowlist_are_404(tianditu, user_client, path):
    assert user_client.get(path).status_code == 404
    assert tianditu.requests == []


def test_edge_tiles_of_a_zoom_are_served(tianditu, user_client):
    assert user_client.get("/maps/basemap/tianditu/vec/3/7/7").status_code == 200
    assert user_client.get("/maps/basemap/tianditu/vec/18/262143/0").status_code == 200


def test_tianditu_error_is_502_and_nothing_is_cached(tianditu, user_client):
    tianditu.mode = "error"
    response = user_client.get(tile_url())
    assert response.status_code == 502
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == "The base map tile could not be fetched from Tianditu."
    assert "no-store" in response["Cache-Control"]
    assert_no_key(response)
    assert not cache_file().exists()


def test_a_non_image_answer_is_502_not_a_tile(tianditu, user_client):
    tianditu.mode = "xml"
    response = user_client.get(tile_url())
    assert response.status_code == 502
    assert_no_key(response)
    assert not cache_file().exists()


def test_tianditu_slower_than_the_timeout_is_502(tianditu, settings, user_client):
    settings.MAP_TILE_TIMEOUT = 0.3
    tianditu.mode, tianditu.delay = "slow", 2.0
    started = time.monotonic()
    response = user_client.get(tile_url())
    assert time.monotonic() - started < 1.5
    assert response.status_code == 502
    assert_no_key(response)
    assert tianditu.hits() == 1


def test_tianditu_unreachable_is_502(tianditu, settings, user_client):
    # A port nothing listens on: the connection is refused.
    settings.MAP_TIANDITU_URL = "http://127.0.0.1:9/{layer}/{z}/{x}/{y}.png"
    response = user_client.get(tile_url())
    assert response.status_code == 502
    assert_no_key(response)


def test_without_a_key_the_proxy_is_503(tianditu, settings, user_client):
    settings.TIANDITU_KEY = "  "
    response = user_client.get(tile_url())
    assert response.status_code == 503
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "TIANDITU_KEY is not set" in response.content.decode()
    assert tianditu.requests == []


def test_anonymous_users_are_sent_to_log_in(tianditu, client):
    response = client.get(tile_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert tianditu.requests == []


def test_post_is_refused(tianditu, user_client):
    assert user_client.post(tile_url()).status_code == 405
    assert tianditu.requests == []


def test_the_key_is_never_logged(tianditu, settings, user_client, caplog):
    caplog.set_level(logging.DEBUG)
    settings.MAP_TILE_TIMEOUT = 0.3
    user_client.get(tile_url(x=1))
    for mode in ["error", "xml", "slow"]:
        tianditu.mode, tianditu.delay = mode, 1.0
        assert user_client.get(tile_url(x=2)).status_code == 502
    settings.MAP_TIANDITU_URL = "http://127.0.0.1:9/{layer}/{z}/{x}/{y}.png"
    assert user_client.get(tile_url(x=3)).status_code == 502
    assert caplog.records  # the failures were logged ...
    assert all(KEY not in record.getMessage() for record in caplog.records)  # ... keyless
    assert KEY not in caplog.text


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_leaflet_loads_tianditu_tiles_through_the_proxy(
    tianditu, page, live_server, regions, county_official
):
    from tests.factories import HouseholdFactory

    household = HouseholdFactory(village=regions["village1"])
    tile_responses = []
    page.on(
        "response",
        lambda r: (
            tile_responses.append((r.url, r.status)) if "/maps/basemap/tianditu/" in r.url else None
        ),
    )
    browser_login(page, live_server, county_official)
    page.goto(f"{live_server.url}/households/{household.pk}/")
    page.wait_for_function(
        "() => document.querySelectorAll('img.leaflet-tile-loaded').length >= 4", timeout=15000
    )

    assert KEY not in page.content()
    assert tile_responses
    assert all(status == 200 for _, status in tile_responses)
    layers = {url.split("/maps/basemap/tianditu/")[1].split("/")[0] for url, _ in tile_responses}
    assert layers == {"vec", "cva"}
    sizes = page.evaluate(
        "[...document.querySelectorAll('img.leaflet-tile-loaded')].map(i => i.naturalWidth)"
    )
    assert set(sizes) == {256}
    # The browser talked only to us; "Tianditu" got the key from the server.
    assert page.external_requests == []
    assert tianditu.requests
    assert all(query["tk"] == KEY for _, query in tianditu.requests)


def test_the_proxy_serves_only_when_tianditu_is_the_base_map(tianditu, settings, user_client):
    """A key set for later must not let signed-in users spend its quota meanwhile."""
    for basemap in ("", "https://tile.example.org/{z}/{x}/{y}.png"):
        settings.MAP_BASEMAP = basemap
        assert user_client.get(tile_url()).status_code == 404
    assert tianditu.requests == []
