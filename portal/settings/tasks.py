"""Settings: the task queue (Celery), its periodic jobs and issuance on workers; uploads.

Read after directory.py (whose settings it may use); portal/settings/__init__.py collects them all.
"""

from .directory import *  # noqa: F403 - the settings so far

# --- Task queue (Celery on Redis) ----------------------------------------------------------
# With PORTAL_BROKER_URL (e.g. redis://127.0.0.1:6379/0) tasks go to `celery -A portal worker`
# and `celery -A portal beat` runs the periodic jobs below. Without it, tasks run in the web
# process right after the commit that asked for them, and the periodic jobs are the
# management commands (publish_pending, refresh_crl, expire_certificates, notify_expiring,
# purge_expired_pickups, send_pending_mail) run from cron. Nothing depends on a task arriving: the database
# keeps what is due.
CELERY_BROKER_URL = env.str("PORTAL_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# A broker that is down must not hold up the request that queues a task.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# The queue the portal's tasks go to and its workers consume: a Redis shared by two portals (or a
# test run) gives each its own.
CELERY_TASK_DEFAULT_QUEUE = env.str("PORTAL_TASK_QUEUE", default="celery")
# Redis: a message a worker took and never acknowledged (the worker was killed, or its machine
# lost) goes back to its queue once it is PORTAL_BROKER_VISIBILITY_TIMEOUT seconds old; a live
# worker looks for such messages every PORTAL_BROKER_RESTORE_SECONDS. The timeout must outlast
# the longest task plus the longest retry countdown (a countdown is waited out unacknowledged):
# a message restored while still held runs twice (harmless, the tasks are idempotent, but
# wasted). Issuance does not wait for it: `issuance-sweep` re-queues what stays approved.
PORTAL_BROKER_VISIBILITY_TIMEOUT = env.int("PORTAL_BROKER_VISIBILITY_TIMEOUT", default=3600)
PORTAL_BROKER_RESTORE_SECONDS = env.int("PORTAL_BROKER_RESTORE_SECONDS", default=60)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": PORTAL_BROKER_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": PORTAL_BROKER_RESTORE_SECONDS,
    "unacked_restore_throttle": 1,  # every interval scans (kombu's default: every tenth)
}
CELERY_BEAT_SCHEDULE = {
    "directory-publications-drain": {"task": "enrollment.directory_publications_drain", "schedule": 300.0},
    "crls-refresh": {"task": "enrollment.crls_refresh", "schedule": 3600.0},
    "certificates-expire": {"task": "enrollment.certificates_expire", "schedule": 3600.0},
    "expiry-notices-send": {"task": "enrollment.expiry_notices_send", "schedule": 6 * 3600.0},
    "pickup-copies-purge": {"task": "escrow.pickup_copies_purge_expired", "schedule": 3600.0},
    "audit-checkpoint": {"task": "audit.checkpoint", "schedule": float(PORTAL_AUDIT_CHECKPOINT_SECONDS)},
    "audit-chain-verify": {"task": "audit.chain_verify", "schedule": 300.0},
    "audit-chain-verify-full": {"task": "audit.chain_verify_full", "schedule": 24 * 3600.0},
    "recoveries-expire": {"task": "escrow.recoveries_expire", "schedule": 3600.0},
    "mail-outbox-drain": {"task": "notifications.mail_outbox_drain", "schedule": 300.0},
}

# Uploads (a key recovery agent's PKCS#12) stay in memory and never touch the disk; a file
# over FILE_UPLOAD_MAX_MEMORY_SIZE is dropped, and the form says the file is missing.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# Issuance on workers (enrollment/tasks.py): attempts of a failing issuance, the first retry's delay
# (doubling each time, at most 10 minutes), and after how long an approved request no worker took is
# queued again by the sweep.
PORTAL_ISSUANCE_ATTEMPTS = env.int("PORTAL_ISSUANCE_ATTEMPTS", default=5)
PORTAL_ISSUANCE_RETRY_SECONDS = env.float("PORTAL_ISSUANCE_RETRY_SECONDS", default=10.0)
PORTAL_ISSUANCE_STUCK_SECONDS = env.int("PORTAL_ISSUANCE_STUCK_SECONDS", default=600)
# How often beat runs that sweep (`issuance-sweep`, portal/celery.py).
PORTAL_ISSUANCE_SWEEP_SECONDS = env.float("PORTAL_ISSUANCE_SWEEP_SECONDS", default=300.0)
