"""The production server: gunicorn with config/gunicorn.conf.py, DEBUG=false, WhiteNoise, the
error handlers, the Content-Security-Policy header and `check --deploy`.

The gunicorn tests start a real server in a subprocess (one worker) on a free port, against a
SpatiaLite file migrated for it (whichever database the suite runs on: the server is another
process and cannot see the test transaction), with static files collected into a temporary
STATIC_ROOT as `make serve` and a deploy do.
"""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.test import RequestFactory
from django.urls import Resolver404
from django.utils import translation

from config.settings import _basemap_image_sources
from portal import errors
from tests.factories import HouseFactory, HouseholdFactory
from tests.live import free_port

# Subprocesses and a gunicorn server with a SpatiaLite file of their own: the same whatever
# the test database, so they run once (in the PostGIS run).
pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
PASSWORD = "serve-pass-123"


def production_env(**extra) -> dict:
    """The environment of a production process: the documented variables and nothing local."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "GUNICORN_", "CELERY_", "PYTEST", "MAP_"))
    }
    env.update(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        DJANGO_ALLOWED_HOSTS="anju.example.gov.cn",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://anju.example.gov.cn",
    )
    env.update(extra)
    return env


def manage(*args, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- check --deploy ------------------------------------------------------------------------


def test_check_deploy_is_clean_with_the_documented_production_settings():
    # The check only reads the cache's settings: no Redis is asked.
    env = production_env(DJANGO_CACHE_URL="redis://127.0.0.1:6379/1")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    # gis.W001 (GDAL) and security.W021 (HSTS preload), each with its reason in settings.py.
    assert "System check identified no issues (2 silenced)." in result.stdout


@pytest.mark.parametrize(
    "endpoint, source",
    [("http://minio.internal:9000", "http://minio.internal:9000"), ("", "https://*.amazonaws.com")],
)
def test_with_s3_storage_the_policy_lets_images_come_from_the_store(endpoint, source):
    """Photo pages redirect to presigned URLs on the store: without it in img-src, every
    photo would be blocked."""
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(' '.join(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']))"
    )
    env = production_env(AWS_STORAGE_BUCKET_NAME="anju", AWS_S3_ENDPOINT_URL=endpoint)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    result = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["'self'", "data:", "blob:", source]


def test_check_deploy_asks_for_a_shared_cache():
    """Without DJANGO_CACHE_URL each gunicorn worker keeps its own users' scopes."""
    env = production_env()
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 1
    assert "(anju.W001)" in result.stderr and "DJANGO_CACHE_URL" in result.stderr


def test_check_deploy_names_what_the_plain_http_switches_turn_off():
    """make serve's local switches are warnings in a deploy check, so none slips into one."""
    env = production_env(
        DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_SECURE_COOKIES="false", DJANGO_HSTS_SECONDS="0"
    )
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 1
    found = sorted(set(re.findall(r"\(security\.W\d+\)", result.stderr)))
    assert found == ["(security.W004)", "(security.W008)", "(security.W012)", "(security.W016)"]


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false" in result.stderr


# --- gunicorn ----------------------------------------------------------------------------


class Server:
    def __init__(self, url: str, database: Path, static_root: Path, log: Path):
        self.url = url
        self.database = database
        self.static_root = static_root
        self.log = log

    def get(self, path, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        return requests.get(self.url + path, timeout=30, **kwargs)

    def hashed(self, name: str) -> str:
        manifest = json.loads((self.static_root / "staticfiles.json").read_text())
        return "/static/" + manifest["paths"][name]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    database = tmp / "anju.sqlite3"
    static_root = tmp / "static"
    port = free_port()
    env = production_env(
        DATABASE_URL=f"spatialite:///{database}",
        DJANGO_STATIC_ROOT=str(static_root),
        DJANGO_MEDIA_ROOT=str(tmp / "media"),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}",
        # Plain HTTP on 127.0.0.1, as `make serve`.
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_COOKIES="false",
        DJANGO_HSTS_SECONDS="0",
        MAP_TILE_CACHE_DIR="",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS="2",
    )
    # Both at once: each takes tens of seconds on a busy machine.
    steps = [
        subprocess.Popen(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for args in (("migrate", "--noinput", "-v0"), ("collectstatic", "--noinput", "-v0"))
    ]
    for step in steps:
        out, _ = step.communicate(timeout=600)
        assert step.returncode == 0, out.decode()
    users = manage(
        "shell",
        "-c",
        "from accounts.models import Role, User; "
        f"User.objects.create_user('field1', password='{PASSWORD}', role=Role.INSPECTOR)",
        env=env,
    )
    assert users.returncode == 0, users.stderr
    log = tmp / "gunicorn.log"
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "-c", "config/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                requests.get(url + "/login/", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        yield Server(url, database, static_root, log)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def logged_in(server) -> requests.Session:
    session = requests.Session()
    session.get(server.url + "/login/", timeout=30)
    response = session.post(
        server.url + "/login/",
        data={
            "username": "field1",
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": server.url + "/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text
    return session


def test_gunicorn_serves_hashed_static_files_compressed_and_cached_for_a_year(server):
    path = server.hashed("vendor/leaflet/leaflet.js")
    assert re.fullmatch(r"/static/vendor/leaflet/leaflet\.[0-9a-f]{12}\.js", path)
    response = server.get(path, headers={"Accept-Encoding": "br"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "max-age=315360000, public, immutable"
    assert response.headers["Content-Encoding"] == "br"
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.content.startswith(b"/* @preserve\n * Leaflet")
    # The unhashed name still answers (for what names files by hand), with a short lifetime.
    plain = server.get("/static/vendor/leaflet/leaflet.js")
    assert plain.status_code == 200
    assert plain.headers["Cache-Control"] == "max-age=60, public"
    assert server.get("/static/vendor/leaflet/nothing.js").status_code == 404


def test_gunicorn_serves_the_field_page_and_its_worker_keeps_the_hashed_files(server):
    session = logged_in(server)
    page = session.get(server.url + "/field/", timeout=30)
    assert page.status_code == 200
    assert f'<script src="{server.hashed("field/field.js")}">' in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    worker = session.get(server.url + "/field/sw.js", timeout=30)
    assert worker.status_code == 200
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", worker.text).group(1))
    static = [url for url in precache if url.startswith("/static/")]
    assert server.hashed("field/queue.js") in static
    assert server.hashed("css/anju.css") in static
    for url in static:
        response = session.get(server.url + url, timeout=30)
        assert response.status_code == 200, url
        assert "immutable" in response.headers["Cache-Control"], url


def test_gunicorn_answers_json_for_an_api_url_that_matches_nothing(server):
    response = server.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"detail": "There is no API endpoint at /api/no-such-thing/."}


def test_gunicorn_answers_a_translated_html_page_for_other_urls_that_match_nothing(server):
    response = server.get("/no-such-page/")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Page not found</h1>" in response.text
    assert "There is no page at /no-such-page/" in response.text
    chinese = server.get("/no-such-page/", headers={"Accept-Language": "zh-hans"})
    assert '<html lang="zh-hans">' in chinese.text


def test_gunicorn_answers_400_for_a_host_it_does_not_serve(server):
    api = server.get("/api/households/", headers={"Host": "evil.example"})
    assert api.status_code == 400
    assert api.json() == {
        "detail": "The request could not be understood (malformed or suspicious)."
    }
    page = server.get("/households/", headers={"Host": "evil.example"})
    assert page.status_code == 400
    assert "The request could not be understood" in page.text


def test_gunicorn_answers_500_as_json_under_api_and_as_a_page_elsewhere(server):
    """A real failure: the database file goes away under the running server."""
    session = logged_in(server)
    away = server.database.with_name("away.sqlite3")
    server.database.rename(away)
    try:
        # SQLite opens an empty new file at the old path: every query fails (no such table).
        api = session.get(server.url + "/api/households/", timeout=30)
        page = session.get(server.url + "/households/", timeout=30)
    finally:
        server.database.unlink(missing_ok=True)
        away.rename(server.database)
    assert api.status_code == 500
    assert api.headers["Content-Type"] == "application/json"
    assert api.json() == {"detail": "A server error occurred."}
    assert page.status_code == 500
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Something went wrong on our side</h1>" in page.text
    assert server.hashed("css/anju.css") in page.text
    # Logged with its traceback, for whoever reads the server's log.
    assert "OperationalError: no such table" in server.log.read_text()
    # The database back, the server answers as before.
    assert session.get(server.url + "/api/households/", timeout=30).status_code == 200


# --- the handlers and the header, in-process (both databases) ----------------------------------


def test_the_500_page_renders_in_the_request_language_without_a_request_context():
    request = RequestFactory().get("/households/")
    request.LANGUAGE_CODE = "zh-hans"
    response = errors.server_error(request)
    assert response.status_code == 500
    assert '<html lang="zh-hans">' in response.content.decode()
    assert translation.get_language() == "en"  # only overridden while rendering


def test_a_403_outside_drf_under_api_is_json():
    response = errors.permission_denied(RequestFactory().get("/api/households/"), None)
    assert response.status_code == 403
    assert json.loads(response.content) == {
        "detail": "You do not have permission to perform this action."
    }


def test_a_404_raised_by_an_api_view_outside_drf_is_json_without_a_path():
    request = RequestFactory().get("/api/households/1/")
    response = errors.page_not_found(request, Exception())
    assert json.loads(response.content) == {"detail": "Not found."}
    resolver = errors.page_not_found(request, Resolver404({"path": "households/1/"}))
    assert json.loads(resolver.content) == {
        "detail": "There is no API endpoint at /api/households/1/."
    }


@pytest.mark.django_db
def test_a_403_page_says_what_to_do(client, make_user, regions):
    user = make_user(regions=[regions["village1"]])
    client.force_login(user)
    household = HouseholdFactory(village=regions["village1"])
    response = client.post(f"/households/{household.pk}/reveal-ids/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "<h1>You may not do this</h1>" in html
    assert "You are signed in as Inspector." in html


@pytest.mark.django_db
def test_every_page_carries_the_content_security_policy(client):
    policy = client.get("/login/")["Content-Security-Policy"]
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",  # and the nonce, on a page that uses it
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "connect-src": "'self'",
        "worker-src": "'self'",
        "manifest-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


@pytest.mark.django_db
def test_the_map_script_carries_the_nonce_of_its_response(client, township_official, regions):
    household = HouseholdFactory(village=regions["village1"])
    HouseFactory(household=household)
    client.force_login(township_official)
    response = client.get(f"/households/{household.pk}/")
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    html = response.content.decode()
    assert html.count("<script nonce=") == 1
    assert f'<script nonce="{nonce}">' in html
    assert client.get(f"/households/{household.pk}/")["Content-Security-Policy"].count(nonce) == 0


@pytest.mark.parametrize(
    ("template", "sources"),
    [
        ("", []),
        ("tianditu", []),
        (
            "https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png",
            ["https://*.tile.openstreetmap.org"],
        ),
        ("https://webrd0{s}.is.autonavi.com/appmaptile?x={x}", ["https://*.is.autonavi.com"]),
        ("http://tiles.example.org:8080/{z}/{x}/{y}.png", ["http://tiles.example.org:8080"]),
    ],
)
def test_the_base_map_tile_host_is_an_image_source(template, sources):
    assert _basemap_image_sources(template) == sources


@pytest.mark.django_db
def test_the_api_docs_start_up_script_is_served_not_inline(client):
    html = client.get("/api/docs/").content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"] == "application/javascript"
    assert "SwaggerUIBundle" in script.content.decode()
