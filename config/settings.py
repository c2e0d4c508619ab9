"""Anju settings. Everything that differs between machines comes from the environment.

Every variable read here is listed, with its default, in .env.example and README.md.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- core -------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=True)
_INSECURE_KEY = "django-insecure-local-development-only"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_INSECURE_KEY)
if not DEBUG and SECRET_KEY == _INSECURE_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false (production)."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

INSTALLED_APPS = [
    "accounts.apps.AnjuAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_gis",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "accounts",
    "housing",
    "inspections",
    "renovation",
    "audit",
    "reports",
    "maps",
    "portal",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Records the signed-in user on every history row written during a request.
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "housing:household_list"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------
# Unset: the embedded SpatiaLite file. postgis://user:pass@host:port/name: PostGIS.
(BASE_DIR / "var").mkdir(exist_ok=True)
DATABASE_URL = (
    env.str("DATABASE_URL", default="") or f"spatialite:///{BASE_DIR / 'var' / 'anju.sqlite3'}"
)
DATABASES = {"default": environ.Env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"].endswith("spatialite"):
    DATABASES["default"].setdefault("OPTIONS", {})
    # Imports and the seeder write in long transactions; wait rather than fail.
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 30)
# SpatiaLite tests run in memory, as Django would choose anyway, but named outright: pytest-django
# takes only the plain sqlite3 engine for SQLite, and under xdist would turn an unset name into
# "test_<file path>_gw0", a file in a folder that does not exist (pytest-django issue 477).
DATABASES["default"]["TEST"] = {
    "NAME": env.str(
        "TEST_DATABASE_NAME",
        default=":memory:" if DATABASES["default"]["ENGINE"].endswith("spatialite") else None,
    )
}
SPATIALITE_LIBRARY_PATH = env.str("SPATIALITE_LIBRARY_PATH", default="mod_spatialite")
if env.str("GDAL_LIBRARY_PATH", default=""):
    GDAL_LIBRARY_PATH = env.str("GDAL_LIBRARY_PATH")
if env.str("GEOS_LIBRARY_PATH", default=""):
    GEOS_LIBRARY_PATH = env.str("GEOS_LIBRARY_PATH")
# Debian 12 ships GDAL 3.6, which cannot sandbox SRS parsing (3.9+ can). Spatial files are
# read only by administrators' import commands, never from anonymous uploads.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- i18n -------------------------------------------------------------------
LANGUAGE_CODE = env.str("DJANGO_LANGUAGE_CODE", default="en")
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- files ------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=BASE_DIR / "media")

AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    # Any S3-compatible store (MinIO, Aliyun OSS, Tencent COS) through django-storages.
    AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default=None)
    AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default=None)
    AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default=None)
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    AWS_S3_FILE_OVERWRITE = False
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage"}
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- background work --------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
# With Redis, a task taken by a worker that dies (acks_late) goes back to the queue after
# this many seconds: it must be longer than the longest task (an export of a whole county).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}
# One task at a time per worker process: a long export does not hold others back unseen.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so that anonymous requests get 401 with WWW-Authenticate, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Lists filter through their selectors (region scoping first), not a generic backend.
    "DEFAULT_FILTER_BACKENDS": [],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    # Domain errors (refused steps, conflicts, rejected photos) become answers in one place.
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Anju API",
    "DESCRIPTION": "Rural housing safety and dilapidated-house renovation. "
    "Coordinates are WGS84 (EPSG:4326), longitude first.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- maps -------------------------------------------------------------------
# Base map under every map: empty = none (boundaries on a plain background, works offline);
# an XYZ URL template such as https://tile.example.org/{z}/{x}/{y}.png; or "tianditu".
MAP_BASEMAP = env.str("MAP_BASEMAP", default="")
MAP_BASEMAP_ATTRIBUTION = env.str("MAP_BASEMAP_ATTRIBUTION", default="")
# Datum of the base map's tiles: "wgs84" (OSM, Tianditu) or "gcj02" (AMap, Tencent).
MAP_BASEMAP_CRS = env.str("MAP_BASEMAP_CRS", default="wgs84")
# Tianditu's key. It stays on the server: browsers fetch Tianditu tiles through our own proxy
# (/maps/basemap/tianditu/...), which adds the key. Without it the proxy answers 503.
TIANDITU_KEY = env.str("TIANDITU_KEY", default="")
# Where the proxy fetches Tianditu tiles: {s} (subdomain 0-7), {layer}, {z}, {x}, {y} are
# filled in and tk=<key> appended. Change it only to point at a mirror (or, in tests, a stub).
MAP_TIANDITU_URL = env.str(
    "MAP_TIANDITU_URL",
    default="https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
    "&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}",
)
# Tiles the proxy has fetched are kept here, so maps still show places already seen when the
# internet drops; a relative path is under BASE_DIR. Empty: no cache (every tile is fetched).
MAP_TILE_CACHE_DIR = env.str("MAP_TILE_CACHE_DIR", default="var/tilecache").strip()
if MAP_TILE_CACHE_DIR:
    MAP_TILE_CACHE_DIR = str(BASE_DIR / MAP_TILE_CACHE_DIR)
# A cached tile older than this is fetched again (still served if Tianditu cannot be reached).
MAP_TILE_CACHE_DAYS = env.float("MAP_TILE_CACHE_DAYS", default=30)
# How long the proxy waits for Tianditu before answering 502 (seconds).
MAP_TILE_TIMEOUT = env.float("MAP_TILE_TIMEOUT", default=5.0)

# --- exports (reports app) ---------------------------------------------------
# The site's address as people reach it: printed in the QR code of every PDF page. Empty:
# the address the export was asked for from.
ANJU_PUBLIC_URL = env.str("ANJU_PUBLIC_URL", default="")
# Without a broker, run each export in a thread of the web process (the page answers at once
# and shows the job's progress) instead of inside the request.
ANJU_EXPORT_IN_THREAD = env.bool("ANJU_EXPORT_IN_THREAD", default=not CELERY_BROKER_URL)
# Where export jobs write their files before storing them (empty: the system's temp dir).
ANJU_EXPORT_TMP_DIR = env.str("ANJU_EXPORT_TMP_DIR", default="")
# A running export that reports no progress for this long is taken for dead: it may be
# retried, and a new delivery of its task starts it again.
ANJU_EXPORT_STALE_S = env.int("ANJU_EXPORT_STALE_S", default=300)
# How much of a file /verify/ reads looking for a document number when its hash is unknown.
ANJU_VERIFY_SCAN_BYTES = env.int("ANJU_VERIFY_SCAN_BYTES", default=64 * 1024 * 1024)
# Largest file /verify/ accepts.
ANJU_VERIFY_MAX_BYTES = env.int("ANJU_VERIFY_MAX_BYTES", default=512 * 1024 * 1024)

# --- field evidence --------------------------------------------------------
# A photo file larger than this is refused (bytes).
ANJU_PHOTO_MAX_BYTES = env.int("ANJU_PHOTO_MAX_BYTES", default=25 * 1024 * 1024)
# Images with more pixels than this are refused as decompression bombs.
ANJU_PHOTO_MAX_PIXELS = env.int("ANJU_PHOTO_MAX_PIXELS", default=60_000_000)
# A photo whose GPS is farther than this from the house is flagged (metres).
ANJU_PHOTO_MAX_DISTANCE_M = env.float("ANJU_PHOTO_MAX_DISTANCE_M", default=150.0)
# Slack around the inspection's start and end for the photo's capture time (minutes).
ANJU_PHOTO_TIME_TOLERANCE_MIN = env.int("ANJU_PHOTO_TIME_TOLERANCE_MIN", default=30)
# Perceptual-hash distance (bits of 64) at or under which two photos look the same.
ANJU_PHASH_MAX_DISTANCE = env.int("ANJU_PHASH_MAX_DISTANCE", default=8)

# --- renovation cases --------------------------------------------------------
# How long a public notice (公示) must stand before the township may check the case (days).
ANJU_NOTICE_DAYS = env.int("ANJU_NOTICE_DAYS", default=7)
# A passed completion check unpaid for longer than this is overdue (days).
ANJU_PAYMENT_DUE_DAYS = env.int("ANJU_PAYMENT_DUE_DAYS", default=30)

# --- demo -------------------------------------------------------------------
# Password seed_demo gives every demo user (printed by make run). Never used in production.
ANJU_DEMO_PASSWORD = env.str("ANJU_DEMO_PASSWORD", default="anju-demo-2026")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
