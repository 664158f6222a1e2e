"""The portal's settings (DJANGO_SETTINGS_MODULE=portal.settings), read from the environment.

In four parts, each read after the one before: base.py (Django, pages, API, HTTPS and the
browser's policies), authority.py (the organization, its CA and keys), directory.py (LDAP,
log-in, lockout) and tasks.py (Celery and the periodic jobs). Parsing only: whether the values
make sense is decided by the system checks in portal/checks.py.
"""

from .tasks import *  # noqa: F403 - every part, in order
