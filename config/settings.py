"""Anju settings. Everything that differs between machines comes from the environment.

Every variable read here is listed, with its default, in .env.example and README.md.
"""

from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONCE as CSP_NONCE
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from csp.constants import UNSAFE_INLINE as CSP_UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from whitenoise.compress import Compressor

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _basemap_image_sources(template: str) -> list[str]:
    """The CSP source of a remote XYZ tile template's host; none for no or our own tiles.

    A placeholder in the host (https://{s}.tile.example.org/..., https://t{s}.example.cn/...)
    becomes a wildcard for the labels under the fixed part: https://*.tile.example.org.
    """
    parts = urlsplit(template.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return []
    labels = parts.netloc.split(".")
    templated = [i for i, label in enumerate(labels) if "{" in label]
    if templated:
        labels = ["*", *labels[templated[-1] + 1 :]]
    return [f"{parts.scheme}://{'.'.join(labels)}"]


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

# --- security (HTTPS) ---------------------------------------------------------
# Production is served over HTTPS only. `make serve` (production settings on plain HTTP on
# 127.0.0.1) turns the three switches below off; nothing else should.
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    # Plain-HTTP requests are redirected to HTTPS (by the proxy too, ideally: see docs/deploy.md).
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # Browsers remember for this long to come back over HTTPS only (a year; 0: no HSTS header).
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=365 * 24 * 3600)
    # Subdomains of Anju's own host name, not of the parent (government) domain.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Behind a TLS-terminating proxy: the header the proxy sets to "https" (e.g. X-Forwarded-Proto)
# for HTTPS requests. Set it only when the proxy always sets or overwrites that header: a
# client could otherwise claim HTTPS. Empty: trust no header (gunicorn's forwarded_allow_ips
# does the same job for the proxies it trusts; see config/gunicorn.conf.py).
_PROXY_SSL_HEADER = env.str("DJANGO_SECURE_PROXY_SSL_HEADER", default="").strip()
if _PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https")

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
    # Counts failed logins on every login path and locks out (AXES_* below).
    "axes",
    # Content-Security-Policy (CONTENT_SECURITY_POLICY below); its system checks need the app.
    "csp",
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
    # Static files straight from STATIC_ROOT (DEBUG=false) or the finders (DEBUG=true), before
    # sessions and the rest: a stylesheet needs none of them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, with request.user the user read along with the session (accounts.sessions).
    "accounts.middleware.AuthenticationMiddleware",
    # Records the signed-in user on every history row written during a request.
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
# axes first: it refuses a locked-out login before the password is even checked.
# accounts.backends.ModelBackend is Django's, with the signed-in user of each request read
# along with its session by one precompiled statement (SESSION_ENGINE, accounts.sessions).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.ModelBackend",
]
SESSION_ENGINE = "accounts.sessions"
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
# Seconds a database connection is kept for the next request (0: one per request). Behind
# gunicorn set it (docs/deploy.md): a new PostgreSQL connection costs more than a map tile.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("postgis"):
    # The statements every request runs (the session with its user, a map tile) are prepared
    # once per connection after 5 runs (accounts.statements); Django's own cursors bind on the
    # client and are never prepared. Off behind PgBouncer in transaction mode before 1.21.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = (
        5 if env.bool("DJANGO_DB_PREPARED_STATEMENTS", default=True) else None
    )
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
SILENCED_SYSTEM_CHECKS = [
    # Debian 12 ships GDAL 3.6, which cannot sandbox SRS parsing (3.9+ can). Spatial files
    # are read only by administrators' import commands, never from anonymous uploads.
    "gis.W001",
    # HSTS preloading commits the whole registrable domain (often a government's, with many
    # sites) and needs HSTS served on that domain itself: the domain's owner decides it, not
    # one application on a subdomain. HSTS itself is on (DJANGO_HSTS_SECONDS).
    "security.W021",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        # The shortest password anyone may set (admin, seed_demo, user_create, password change).
        "OPTIONS": {"min_length": env.int("ANJU_PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# At least one letter and one digit, as China's graded protection (等保 2.0) assessments
# expect of a password's complexity; false leaves length and the common-password list.
if env.bool("ANJU_PASSWORD_LETTERS_AND_DIGITS", default=True):
    AUTH_PASSWORD_VALIDATORS.append({"NAME": "accounts.validators.LettersAndDigitsValidator"})

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
if DEBUG:
    # WhiteNoise looks there at start-up (and warns when it is missing) even where the files
    # come from the finders; in production collectstatic has made it.
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
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
    # Presigned URLs signed with SigV4: boto3 still signs them with the deprecated SigV2 in
    # us-east-1 and for custom endpoints, which newer regions and some stores refuse.
    AWS_S3_SIGNATURE_VERSION = "s3v4"
    # A file read through the storage is buffered whole: in memory up to this, then on disk.
    AWS_S3_MAX_MEMORY_SIZE = 16 * 1024 * 1024
    # django-storages' S3Storage whose failures are OSError, as a local disk's are.
    _default_storage = {"BACKEND": "config.storage.S3Storage"}
    # Photo pages redirect browsers to presigned URLs on the store: the CSP lets images come
    # from it (the endpoint's origin, or AWS's own bucket hosts).
    _S3_IMAGE_SOURCES = (
        _basemap_image_sources(AWS_S3_ENDPOINT_URL)
        if AWS_S3_ENDPOINT_URL
        else ["https://*.amazonaws.com"]
    )
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    _S3_IMAGE_SOURCES = []
STORAGES = {
    "default": _default_storage,
    # DEBUG=false: collectstatic writes content-hashed names (cached for a year by browsers and
    # the field page's service worker) and compressed copies that WhiteNoise serves. It needs
    # collectstatic first (`make serve` and deploys run it); `make run` and the tests do not.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Source maps (megabytes each, read only by developer tools) are not worth compressing: it
# would be most of collectstatic's time.
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")

# --- background work --------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
# With Redis, a task taken by a worker that dies (acks_late) goes back to the queue after
# this many seconds: it must be longer than the longest task (an export of a whole county).
# Photos do not wait for it: the photo sweep (CELERY_BEAT_SCHEDULE) queues a photo again
# after ANJU_PHOTO_REQUEUE_AFTER_S, and the late redelivery then finds it done.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # A broker that is down fails a publish (an upload queuing its photo) within seconds,
    # not after the system's TCP time-out: the upload still answers, the sweep re-queues.
    "socket_connect_timeout": 2,
}
# One task at a time per worker process: a long export does not hold others back unseen.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so that anonymous requests get 401 with WWW-Authenticate, not 403.
        # DRF's token authentication, but tokens expire (ANJU_TOKEN_TTL_HOURS).
        "accounts.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Rates: ANJU_API_ANON_RATE and ANJU_API_USER_RATE below, read on each request.
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttling.AnonRateThrottle",
        "accounts.throttling.UserRateThrottle",
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

# --- logins, API tokens and request rates ------------------------------------
# Failed logins (on /login/, /admin/login/ and /api/auth/token/ alike) within the cool-off
# time after which an account is locked out, from any address...
ANJU_LOGIN_FAILURE_LIMIT = env.int("ANJU_LOGIN_FAILURE_LIMIT", default=10)
# ...and after which an address is locked out, for any account: higher, because a township
# office or a mobile carrier puts many honest users behind one address (accounts/lockout.py).
ANJU_LOGIN_IP_FAILURE_LIMIT = env.int("ANJU_LOGIN_IP_FAILURE_LIMIT", default=30)
# A lockout lasts this long after the last failure; failures older than this are forgotten.
ANJU_LOGIN_COOLOFF_MINUTES = env.int("ANJU_LOGIN_COOLOFF_MINUTES", default=15)
# django-axes reads the three settings above through these (accounts/lockout.py).
AXES_FAILURE_LIMIT = "accounts.lockout.failure_limit"
AXES_COOLOFF_TIME = "accounts.lockout.cool_off"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each counted on its own
# Attempts during a lockout do not prolong it: a stranger cannot keep someone locked out
# for ever by trying their username every few minutes.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HANDLER = "accounts.lockout.LoginAttemptHandler"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.network.client_ip"
# Every login attempt already has its row; no extra log of each success and logout.
AXES_DISABLE_ACCESS_LOG = True
# No banner on every start of every process and management command.
AXES_VERBOSE = False
# Behind a reverse proxy: the proxies' addresses or networks (e.g. 10.0.0.5,10.1.0.0/16).
# Only for requests from these is the client's address read from ANJU_CLIENT_IP_HEADER,
# from the right, skipping these proxies. Empty: the connecting address is the client's
# (right without a proxy; behind one, every user would share the proxy's address).
ANJU_TRUSTED_PROXIES = env.list("ANJU_TRUSTED_PROXIES", default=[])
# The header those proxies put the client's address in (nginx: proxy_set_header
# X-Forwarded-For $proxy_add_x_forwarded_for; or X-Real-IP $remote_addr).
ANJU_CLIENT_IP_HEADER = env.str("ANJU_CLIENT_IP_HEADER", default="X-Forwarded-For")
# An API token stops working this long after it was issued (hours); a phone asks for a new
# one, which also revokes the old one. Logout and a password change revoke it at once.
ANJU_TOKEN_TTL_HOURS = env.int("ANJU_TOKEN_TTL_HOURS", default=168)
# DRF throttle rates ("<n>/second|minute|hour|day"; empty: no limit). Token requests per
# client address, whether the password is right or wrong:
ANJU_API_TOKEN_RATE = env.str("ANJU_API_TOKEN_RATE", default="20/minute")
# Anonymous API requests per address (only the schema and docs answer them anyway):
ANJU_API_ANON_RATE = env.str("ANJU_API_ANON_RATE", default="60/minute")
# API requests per signed-in user: far above what a phone replaying a day's queue needs.
ANJU_API_USER_RATE = env.str("ANJU_API_USER_RATE", default="1200/minute")
# The cache holds the throttles' counts (logins are counted in the database). With more than
# one app server it must be shared by all of them, e.g. redis://127.0.0.1:6379/1 (Django's
# own Redis cache); empty: each process keeps its own in memory (development, tests).
DJANGO_CACHE_URL = env.str("DJANGO_CACHE_URL", default="")
if DJANGO_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": DJANGO_CACHE_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

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

# --- content security policy (django-csp) -------------------------------------
# Scripts only from our own origin, or inline with the request's nonce (the folium maps'
# drawing code). Styles allow 'unsafe-inline': Leaflet and Swagger UI write style attributes
# into the markup they build, and our templates colour legend swatches with style="...".
# Images: ours, data:/blob: (photo previews, Leaflet and Swagger UI icons) and the base map's
# tile host when MAP_BASEMAP is a remote XYZ template (Tianditu goes through our own proxy).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF, CSP_NONCE],
        "style-src": [CSP_SELF, CSP_UNSAFE_INLINE],
        "img-src": [
            CSP_SELF,
            "data:",
            "blob:",
            *_basemap_image_sources(MAP_BASEMAP),
            *_S3_IMAGE_SOURCES,
        ],
        "connect-src": [CSP_SELF],
        "worker-src": [CSP_SELF],
        "manifest-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_SELF],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
    }
}

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
# Images with more pixels than this are refused as decompression bombs. 52 MP lets the
# 48 and 50 MP photos of current phones through.
ANJU_PHOTO_MAX_PIXELS = env.int("ANJU_PHOTO_MAX_PIXELS", default=52_000_000)
# Images whose decoded pixels would take more memory than this are refused from their header
# (width × height × bands, at least 3 bands, bytes): 150 MiB passes a 50 MP RGB photo (12 MP
# takes 36 MB) and refuses, say, a 7,745 × 7,745 PNG (180 MB or more) that would cost the
# worker most of a gigabyte once converted and scaled.
ANJU_PHOTO_MAX_DECODED_BYTES = env.int("ANJU_PHOTO_MAX_DECODED_BYTES", default=150 * 1024 * 1024)
# A photo still pending this long after its upload is queued for processing again (seconds):
# by the beat schedule above, or by `manage.py photos_requeue`. Longer than a photo task and
# its retries take (about 6 minutes at most).
ANJU_PHOTO_REQUEUE_AFTER_S = env.int("ANJU_PHOTO_REQUEUE_AFTER_S", default=600)
# Periodic work for `celery -A config beat` (or a worker started with -B); hosts without
# beat run `manage.py photos_requeue` from cron instead, as often. The sweep runs once per
# ANJU_PHOTO_REQUEUE_AFTER_S, so a pending photo gets at most one new task in that time.
CELERY_BEAT_SCHEDULE = {
    "photos-requeue": {
        "task": "inspections.tasks.photos_requeue",
        "schedule": float(ANJU_PHOTO_REQUEUE_AFTER_S),
    },
    # Expired sessions, once a day (hosts without beat: `manage.py clearsessions` from cron).
    "sessions-clear-expired": {
        "task": "accounts.tasks.sessions_clear_expired",
        "schedule": 24 * 3600.0,
    },
}
# A photo whose GPS is farther than this from the house is flagged (metres).
ANJU_PHOTO_MAX_DISTANCE_M = env.float("ANJU_PHOTO_MAX_DISTANCE_M", default=150.0)
# Slack around the inspection's start and end for the photo's capture time (minutes).
ANJU_PHOTO_TIME_TOLERANCE_MIN = env.int("ANJU_PHOTO_TIME_TOLERANCE_MIN", default=30)
# Perceptual-hash distance (bits of 64) at or under which two photos look the same.
ANJU_PHASH_MAX_DISTANCE = env.int("ANJU_PHASH_MAX_DISTANCE", default=8)

# --- input bounds ------------------------------------------------------------
# How far ahead of this server's clock a time sent by a phone or typed in a form may be
# (minutes): an inspection's start and end, a payment date. Further ahead is refused as in
# the future; so is anything before 1900 (housing/bounds.py).
ANJU_CLOCK_SKEW_MIN = env.int("ANJU_CLOCK_SKEW_MIN", default=10)
# The most vertices an imported boundary may have: more is refused, feature by feature,
# with a hint to simplify first. A county's published boundary has a few thousand; a
# million-vertex one made multi-megabyte map and API answers (and was silently dropped by
# SpatiaLite).
ANJU_BOUNDARY_MAX_VERTICES = env.int("ANJU_BOUNDARY_MAX_VERTICES", default=50_000)

# --- renovation cases --------------------------------------------------------
# How long a public notice (公示) must stand before the township may check the case (days).
ANJU_NOTICE_DAYS = env.int("ANJU_NOTICE_DAYS", default=7)
# A passed completion check unpaid for longer than this is overdue (days).
ANJU_PAYMENT_DUE_DAYS = env.int("ANJU_PAYMENT_DUE_DAYS", default=30)
# Separation of duties: the case's opener may not approve it, the completion appraiser may
# not pass the check, the official who passed it may not pay (renovation/workflow.py).
ANJU_SEPARATION_OF_DUTIES = env.bool("ANJU_SEPARATION_OF_DUTIES", default=True)

# --- demo -------------------------------------------------------------------
# Password seed_demo gives every demo user (printed by make run). Never used in production.
ANJU_DEMO_PASSWORD = env.str("ANJU_DEMO_PASSWORD", default="anju-demo-2026")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
