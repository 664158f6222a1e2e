"""The Celery application: `celery -A portal worker` and `celery -A portal beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _issuance_sweep_schedule(sender, **kwargs) -> None:
    """Beat re-queues issuances whose task was lost (a worker died): approved for long, not issued."""
    from django.conf import settings

    every = float(getattr(settings, "PORTAL_ISSUANCE_SWEEP_SECONDS", 300.0))
    sender.conf.beat_schedule.setdefault("issuance-sweep", {"task": "enrollment.issuance_sweep", "schedule": every})
