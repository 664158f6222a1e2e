"""API throttles (DRF): requests per client address without credentials, and per account.

The rates come from PORTAL_API_THROTTLE_ANON and PORTAL_API_THROTTLE_USER, read on each
request (DRF's own classes read DEFAULT_THROTTLE_RATES once, at import); "off" turns one off.
Their counts live in Django's cache (per process with the default local-memory cache).
Guessing passwords and tokens is stopped by the lockout (portal/lockout.py); these keep one
client from flooding the API.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import throttling

OFF = "off"


def configured_rate(value: str | None) -> str | None:
    return None if value is None or value.strip().lower() == OFF else value.strip()


class AnonymousRateThrottle(throttling.AnonRateThrottle):
    def get_rate(self):
        return configured_rate(settings.PORTAL_API_THROTTLE_ANON)


class AccountRateThrottle(throttling.UserRateThrottle):
    def get_rate(self):
        return configured_rate(settings.PORTAL_API_THROTTLE_USER)
