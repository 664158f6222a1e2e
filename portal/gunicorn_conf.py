"""gunicorn's settings for the portal: `gunicorn -c portal/gunicorn_conf.py` (make serve, deploy/systemd).

Read from the environment, with defaults for a small machine (README, "Production topology"):

PORTAL_WEB_BIND     where to listen; default 127.0.0.1:8000 (the reverse proxy on the same host).
                    Prefer TCP: gunicorn believes X-Forwarded-Proto from any UNIX-socket peer.
PORTAL_WEB_WORKERS  processes; default the number of cores (at most 8). The portal's requests are
                    CPU-bound where they matter (PKCS#12 with the pickup key, signing), so more
                    processes than cores only queue on them.
PORTAL_WEB_THREADS  threads per process (gthread worker); default 4, for requests waiting on the
                    database or the directory. Database connections: at most workers x threads per
                    machine (each thread keeps one for PORTAL_DB_CONN_MAX_AGE seconds).
PORTAL_WEB_TIMEOUT  seconds before a silent worker is restarted; default 60 (an RSA-4096 issuance in
                    the request stays well below it).
PORTAL_WEB_MAX_REQUESTS  requests before a worker is replaced; default 100,000 (below).

The proxy: gunicorn takes X-Forwarded-Proto only from PORTAL_TRUSTED_PROXIES, the same list the
settings give the portal's middleware (audit/middleware.py), not from gunicorn's own default
(127.0.0.1): with no proxy configured, a local client cannot claim https.

Every gunicorn setting can still be overridden on the command line or with GUNICORN_CMD_ARGS.
"""

from __future__ import annotations

import ipaddress
import os

from portal.environment import PortalEnv

env = PortalEnv()

wsgi_app = "portal.wsgi:application"
proc_name = "smime-portal"

bind = env.list("PORTAL_WEB_BIND", default=["127.0.0.1:8000"])
workers = env.int("PORTAL_WEB_WORKERS", default=min(os.cpu_count() or 2, 8))
threads = env.int("PORTAL_WEB_THREADS", default=4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = env.int("PORTAL_WEB_TIMEOUT", default=60)
graceful_timeout = 30
keepalive = 5  # behind a proxy that keeps connections open to us
# Workers are replaced after this many requests (with jitter, not all at once): a slow leak stays small.
# Not fewer: OCSP answers hundreds a second per worker, and a new worker spends a second or more
# loading Django and the responder key (2,000 restarted each worker every few seconds under load).
max_requests = env.int("PORTAL_WEB_MAX_REQUESTS", default=100_000)
max_requests_jitter = max_requests // 10


def _networks(entries: list[str]) -> list[str]:
    """PORTAL_TRUSTED_PROXIES as gunicorn wants it (networks with host bits cleared); what does not
    parse is left out here, as the middleware leaves it out, and reported by the system check portal.E115."""
    networks = []
    for entry in entries:
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            continue
    return networks


forwarded_allow_ips = ",".join(_networks(env.list("PORTAL_TRUSTED_PROXIES", default=[])))
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# The access log, to stdout (journald): peer, time, method, path without the query string (a
# token in a link would land in the log), status, bytes, duration, user agent. Never the query,
# the Referer (another page's query), cookies or the Authorization header.
accesslog = env.str("PORTAL_WEB_ACCESS_LOG", default="-")
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = env.str("PORTAL_WEB_LOG_LEVEL", default="info")
# Django's own logging (settings.LOGGING) goes to stderr as well.
capture_output = False

# No control socket (gunicorn 25.1+ makes one in $HOME or $XDG_RUNTIME_DIR): systemd controls the
# service (reload: HUP), the home directory is off limits to it (ProtectHome), and two instances on
# one host would fight over the one default path.
control_socket_disable = True
