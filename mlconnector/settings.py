"""Settings come only from the environment (and a local .env written by `make run`)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# ENV_FILE (default .env in the project root) lets `make run` and its tests keep the file elsewhere.
environ.Env.read_env(BASE_DIR / env.str("ENV_FILE", default=".env"), overwrite=False)

DEFAULT_SECRET = "insecure-dev-only-change-me"

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEFAULT_SECRET)
# Previous SECRET_KEYs (comma list): sessions, password-reset links and signed values made with them
# stay valid while they expire. Stored credentials do not depend on SECRET_KEY (FERNET_KEYS below).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# FERNET_KEYS: first key encrypts, every key decrypts (rotation: prepend a new key, run
# `manage.py rotate_keys`, drop the old key). Each is a Fernet key or a 32+ character random string;
# see connectors/crypto.py. Independent of SECRET_KEY.
DEFAULT_FERNET_KEY = "dev-only-fernet-key"
FERNET_KEYS = env.list("FERNET_KEYS", default=[DEFAULT_FERNET_KEY])
ALLOW_PRIVATE_NETWORKS = env.bool("ALLOW_PRIVATE_NETWORKS", default=False)
# CIDR networks that count as public for the SSRF guard although they are not (an on-premises ERP
# reached over a VPN), without opening every private network as ALLOW_PRIVATE_NETWORKS does.
OUTBOUND_ALLOWED_NETWORKS = env.list("OUTBOUND_ALLOWED_NETWORKS", default=[])
SANDBOX_URL = env.str("SANDBOX_URL", default="")
OUTBOUND_PROXY = env.str("OUTBOUND_PROXY", default="")  # e.g. http://proxy:3128 for egress through a proxy
PRODUCTION = env.bool("PRODUCTION", default=not DEBUG)

if PRODUCTION and (SECRET_KEY == DEFAULT_SECRET or len(SECRET_KEY) < 32 or not FERNET_KEYS
                   or any(key == DEFAULT_FERNET_KEY or len(key.strip()) < 32 for key in FERNET_KEYS)):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "Production settings need SECRET_KEY (32+ random characters) and FERNET_KEYS (each a Fernet key or "
        "32+ random characters) set in the environment; set DEBUG=1 for local development."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_q",
    "tenants",
    "connectors",
    "syncs",
    "onboarding",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mlconnector.urls"
WSGI_APPLICATION = "mlconnector.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.tenant",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web app, the sandbox-driven workers and the cluster read while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 30,
         "transaction_mode": "IMMEDIATE"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ml-connector <noreply@localhost>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiTokenAuthentication",  # hashed keys, revocable in the portal
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {"TITLE": "ml-connector API", "VERSION": "0.1.0", "SERVE_INCLUDE_SCHEMA": False}

REDIS_URL = env.str("REDIS_URL", default="")
# Login throttling counts failures in the cache: shared across processes and hosts only with Redis.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
Q_CLUSTER = {
    "name": "mlconnector",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=3600),
    "retry": env.int("Q_RETRY", default=3700),
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 0.5,
    "label": "Tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Load balancers and Prometheus may probe a host over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

# Sync engine
# A run's heartbeat thread beats every SYNC_HEARTBEAT_SECONDS; a claim without one for
# SYNC_CLAIM_STALE_SECONDS (4 beats) is a dead or frozen host's. A holder killed on the claiming host
# itself is noticed at once (its pid is gone), see syncs/claims.py.
SYNC_HEARTBEAT_SECONDS = env.int("SYNC_HEARTBEAT_SECONDS", default=15)
SYNC_CLAIM_STALE_SECONDS = env.int("SYNC_CLAIM_STALE_SECONDS", default=60)
# A run yields its worker after this many seconds (at a page boundary, cursor committed) and the flow
# is due again at once: a 100,000-record first sync cannot keep other tenants waiting for hours.
RUN_TIME_SLICE_S = env.float("RUN_TIME_SLICE_S", default=300)
SYNC_DISPATCH_LIMIT = env.int("SYNC_DISPATCH_LIMIT", default=100)  # flows claimed per dispatcher tick
if Q_CLUSTER["timeout"] < 2 * RUN_TIME_SLICE_S + 300 or Q_CLUSTER["retry"] <= Q_CLUSTER["timeout"]:
    # past the slice a run only finishes its page in flight; a q2 timeout near the slice would kill
    # healthy runs, and a retry inside the timeout would start a second copy of a running task
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"Q_TIMEOUT ({Q_CLUSTER['timeout']} s) must be at least 2 × RUN_TIME_SLICE_S + 300 s "
        f"({2 * RUN_TIME_SLICE_S + 300:.0f} s), and Q_RETRY ({Q_CLUSTER['retry']} s) above Q_TIMEOUT.")
SYNC_PIPEDRIVE_CONCURRENCY = env.int("SYNC_PIPEDRIVE_CONCURRENCY", default=4)
SYNC_MAX_AUTO_ATTEMPTS = env.int("SYNC_MAX_AUTO_ATTEMPTS", default=5)
PIPEDRIVE_BUDGET_RESERVE = env.float("PIPEDRIVE_BUDGET_RESERVE", default=0.02)
# Retries of a failed Pipedrive call: full-jitter backoff from this base (tests with workers in other
# processes shorten it through the environment).
PIPEDRIVE_RETRY_BASE_S = env.float("PIPEDRIVE_RETRY_BASE_S", default=0.5)
# Calls to ERPs and Pipedrive give up after these (a timed-out write is "ambiguous": looked for, not resent)
HTTP_CONNECT_TIMEOUT_S = env.float("HTTP_CONNECT_TIMEOUT_S", default=5.0)
HTTP_READ_TIMEOUT_S = env.float("HTTP_READ_TIMEOUT_S", default=60.0)

# Webhooks: Pipedrive must reach /hooks/pipedrive/<connection uuid>/ at this public origin
# (e.g. https://connector.example.com); registration refuses to run without it.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="")
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)

# /metrics: a bearer token; when empty, only loopback requests that no proxy forwarded may read it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"urllib3": {"level": "WARNING"}},
}
