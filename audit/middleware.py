"""Gives audit events recorded while a request is served the client's address.

Behind a reverse proxy REMOTE_ADDR is the proxy's. PORTAL_TRUSTED_PROXIES lists the proxies
(addresses or networks): only a request whose peer is one of them has its X-Forwarded-For
believed, read from the right and skipping further trusted proxies, so that a client can put
what it likes at the left of the header and still be recorded under its own address. The
middleware sets REMOTE_ADDR to that address (the peer is kept in PORTAL_PEER_ADDR), so the
lockout and the API throttles count the same source the audit log records; from anyone else
it drops X-Forwarded-Proto, which SECURE_PROXY_SSL_HEADER would otherwise believe.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

from .context import current_source_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    # Unparsable entries are reported by the system check portal.E115 and trusted by nobody here.
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as proxies write it: bare, "[v6]:port" or "v4:port"; None for anything else."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def _trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(getattr(settings, "PORTAL_TRUSTED_PROXIES", ())))


def client_address(meta) -> str | None:
    """The client's address for the request with this META (see the module's docstring)."""
    peer = meta.get("REMOTE_ADDR") or None
    networks = _trusted_networks()
    if peer is None or not _trusted(_address(peer), networks):
        return peer
    client = peer
    for hop in reversed(meta.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _address(hop)
        if address is None:
            break  # junk: the nearest trusted proxy is all that is known
        client = str(address)
        if not _trusted(address, networks):
            break
    return client


class AuditSourceMiddleware:
    """Makes the client's address available to audit events recorded during the request.

    First in MIDDLEWARE: what comes after (SecurityMiddleware's HTTPS redirect, the lockout,
    the throttles) sees the resolved address and only a trusted proxy's X-Forwarded-Proto.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        peer = request.META.get("REMOTE_ADDR") or None
        if peer is not None and _trusted(_address(peer), _trusted_networks()):
            address = client_address(request.META)
            request.META["PORTAL_PEER_ADDR"] = peer
            request.META["REMOTE_ADDR"] = address
        else:
            address = peer
            request.META.pop("HTTP_X_FORWARDED_PROTO", None)
        token = current_source_ip.set(address)
        try:
            return self.get_response(request)
        finally:
            current_source_ip.reset(token)
