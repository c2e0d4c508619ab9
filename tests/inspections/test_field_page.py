"""The field page, its service worker and its manifest, as the server renders them."""

import json
import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.utils import translation

from accounts.models import Role
from inspections.field_views import FIELD_STATIC, _strings
from inspections.models import AppraisalRule, RequiredPhotoSlot

pytestmark = pytest.mark.django_db


@pytest.fixture
def inspector(make_user, regions):
    return make_user(Role.INSPECTOR, [regions["village1"]], username="inspector1")


@pytest.fixture
def inspector_client(client, inspector):
    client.force_login(inspector)
    return client


def blob(html: str, element_id: str):
    found = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S
    )
    assert found, f"no #{element_id} in the page"
    return json.loads(found[1])


class Links(HTMLParser):
    """Every URL the page would load or send to: src, href, action."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in {"src", "href", "action", "poster", "srcset"} and value:
                self.urls.append(value)


def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/field/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/field/"


def test_inspector_gets_the_page_with_its_configuration(inspector_client, inspector):
    RequiredPhotoSlot.objects.create(kind="progress", stage="during", angle="front")
    RequiredPhotoSlot.objects.create(kind="progress", stage="during", angle="structure")

    response = inspector_client.get("/field/")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "no-cache, private"
    html = response.content.decode()
    assert '<link rel="manifest" href="/field/manifest.webmanifest">' in html
    config = blob(html, "field-config")
    assert config["user"] == {"id": inspector.pk, "name": "inspector1"}
    assert config["urls"]["service_worker"] == "/field/sw.js"
    assert config["urls"]["scope"] == "/field/"
    assert config["urls"]["nearby"] == "/api/households/nearby/"
    # No rule in the database (tests skip migrations): the defaults of migration 0002.
    assert config["rule"] == {
        "name": "default-2026",
        "d_members": ["foundation", "load_bearing_walls", "columns_beams"],
        "site_hazard_makes_d": True,
    }
    assert [m["code"] for m in config["members"]] == [
        "foundation",
        "load_bearing_walls",
        "columns_beams",
        "roof_structure",
        "floors_slabs",
        "envelope",
    ]
    assert [r["code"] for r in config["ratings"]] == [
        "sound",
        "damaged",
        "dangerous",
        "not_present",
    ]
    assert config["slots"] == {
        "appraisal": [],
        "progress": [
            {
                "stage": "during",
                "angle": "front",
                "stage_label": "During works",
                "angle_label": "Front",
            },
            {
                "stage": "during",
                "angle": "structure",
                "stage_label": "During works",
                "angle_label": "Structural detail",
            },
        ],
        "completion": [],
    }
    assert len(config["csrf_token"]) == 64
    strings = blob(html, "field-strings")
    assert strings == _strings()
    assert strings["distance_km"] == "%(distance)s km"


def test_the_page_carries_the_active_grade_rule(inspector_client):
    AppraisalRule.objects.create(
        name="county-2027", d_members=["foundation"], site_hazard_makes_d=False
    )
    config = blob(inspector_client.get("/field/").content.decode(), "field-config")
    assert config["rule"] == {
        "name": "county-2027",
        "d_members": ["foundation"],
        "site_hazard_makes_d": False,
    }


def test_the_page_loads_nothing_from_outside(inspector_client):
    html = inspector_client.get("/field/").content.decode()
    parser = Links()
    parser.feed(html)
    assert parser.urls, "the page links its own CSS and JS"
    assert [url for url in parser.urls if not url.startswith("/")] == []
    assert [url for url in parser.urls if url.startswith("//")] == []
    assert "http://" not in html
    assert "https://" not in html
    assert "/static/field/field.js" in parser.urls
    assert "/static/field/queue.js" in parser.urls
    assert "/static/css/anju.css" in parser.urls


def test_every_file_the_worker_precaches_exists():
    assert [path for path in FIELD_STATIC if finders.find(path) is None] == []


def test_the_worker_precaches_every_file_the_page_and_its_manifest_load(inspector_client):
    """Offline, the page has only what the worker kept: every static file it links (scripts,
    styles, icon), the manifest and the manifest's icons, and the CSS's own url()s."""
    html = inspector_client.get("/field/").content.decode()
    parser = Links()
    parser.feed(html)
    loaded = {url for url in parser.urls if url.startswith("/static/")}
    manifest_url = re.search(r'<link rel="manifest" href="([^"]+)"', html)[1]
    manifest = inspector_client.get(manifest_url).json()
    loaded |= {icon["src"] for icon in manifest["icons"]}
    for path in FIELD_STATIC:
        if path.endswith(".css"):
            with open(finders.find(path), encoding="utf-8") as handle:
                assert "url(" not in handle.read(), f"{path} loads a file: precache it"
    script = inspector_client.get("/field/sw.js").content.decode()
    precached = set(json.loads(re.search(r"const PRECACHE = (\[.*?\]);", script)[1]))
    assert {"/static/field/villages.js", "/field/", manifest_url} <= precached
    assert loaded - precached == set()


def test_service_worker_is_javascript_scoped_to_the_field_page(client):
    # Anonymous on purpose: the browser re-checks the worker without the page's help.
    response = client.get("/field/sw.js")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    assert response["Service-Worker-Allowed"] == "/field/"
    assert response["Cache-Control"] == "no-cache"
    body = response.content.decode()
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", body)[1])
    assert precache == [
        "/field/",
        "/field/manifest.webmanifest",
        "/static/css/anju.css",
        "/static/field/field.css",
        "/static/field/common.js",
        "/static/field/queue.js",
        "/static/field/villages.js",
        "/static/field/field.js",
        "/static/field/icon-192.png",
        "/static/field/icon-512.png",
    ]
    assert 'const PAGE = "/field/";' in body
    assert 'const PHOTO_SLOTS = "/api/photo-slots/";' in body
    assert re.search(r'const VERSION = "[0-9a-f]{16}";', body)
    assert "http://" not in body and "https://" not in body


def test_service_worker_version_follows_the_files_it_keeps(client, settings, tmp_path):
    first = client.get("/field/sw.js").content.decode()
    # A changed field.js (found first in an extra static folder) is a new worker.
    (tmp_path / "field").mkdir()
    (tmp_path / "field" / "field.js").write_text("/* changed */")
    settings.STATICFILES_DIRS = [tmp_path, *settings.STATICFILES_DIRS]
    finders.get_finder.cache_clear()
    try:
        second = client.get("/field/sw.js").content.decode()
    finally:
        finders.get_finder.cache_clear()
    version = re.compile(r'const VERSION = "([0-9a-f]{16})";')
    assert version.search(first)[1] != version.search(second)[1]


def test_manifest_describes_an_installable_field_app(client):
    response = client.get("/field/manifest.webmanifest")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json; charset=utf-8"
    manifest = json.loads(response.content)
    assert manifest["start_url"] == "/field/"
    assert manifest["scope"] == "/field/"
    assert manifest["display"] == "standalone"
    assert manifest["name"] == "Anju field inspections"
    assert [icon["src"] for icon in manifest["icons"]] == [
        "/static/field/icon-192.png",
        "/static/field/icon-512.png",
    ]


def test_the_page_is_translated_into_chinese(inspector_client):
    response = inspector_client.get("/field/", HTTP_ACCEPT_LANGUAGE="zh-hans")

    html = response.content.decode()
    assert '<html lang="zh-hans">' in html
    assert "<title>" in html and "· 安居</title>" in html
    assert '<button type="submit" class="button">搜索</button>' in html
    assert '<label for="notes">备注</label>' in html
    config = blob(html, "field-config")
    assert config["language"] == "zh-hans"
    # The JavaScript's sentences are translated in the view, in the request's language.
    with translation.override("zh-hans"):
        expected = _strings()
    assert blob(html, "field-strings") == expected


def test_auditor_is_told_the_page_is_not_for_them(client, make_user, regions):
    auditor = make_user(Role.AUDITOR, [regions["county"]], username="auditor")
    client.force_login(auditor)

    response = client.get("/field/")

    assert response.status_code == 403
    html = response.content.decode()
    assert "<h1>The field page is for inspectors</h1>" in html
    assert (
        "Inspections are recorded by inspectors, township and county officials and "
        "administrators. Your role (Auditor) reads the records but does not make them."
    ) in html
    assert 'href="/households/"' in html
    assert 'id="field-config"' not in html
    assert "field.js" not in html


@pytest.mark.parametrize("role", [Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMINISTRATOR])
def test_other_field_roles_get_the_page(client, make_user, regions, role):
    client.force_login(make_user(role, [regions["county"]]))
    assert client.get("/field/").status_code == 200
