"""Settings of the example project used by e2e tests and the benchmark.

Production-like on purpose (DEBUG off) and without a database, so it runs
from a read-only checkout with nothing but Debian's python3-django.
"""

SECRET_KEY = "gouwsgi-example-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = []
MIDDLEWARE = []
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
DATABASES = {}

USE_I18N = False
USE_TZ = True
DEFAULT_CHARSET = "utf-8"

# With DEBUG off Django's default logging only mails admins: send request
# errors (tracebacks of /boom) to stderr, which the server logs.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
}
