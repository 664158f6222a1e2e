import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

# manage.py runs the system checks before it serves; a WSGI server (gunicorn) does not, so a
# bad setting (e.g. PORTAL_OCSP_SIGNER=bogus) would otherwise serve until the first request
# that reads it.
from portal.checks_deploy import settings_problems  # noqa: E402 - needs the app registry set up above

if problems := settings_problems():
    raise ImproperlyConfigured("; ".join(str(problem) for problem in problems))
