"""Bulk enrollment batches: one row per run of `manage.py enroll`, or per CSV uploaded in the admin or the API.

A batch records who started it, when, from what (a CSV file's name or a directory group's DN),
the outcome of its rows (created, skipped as already enrolled, failed with the reasons) and
whether its requests were approved by policy. Its progress - how many of its requests are
pending, issuing, issued, failed... - is never stored: `EnrollmentBatchQuerySet.with_progress`
counts the requests' states when read, so it is right while workers issue.

Imported at the end of enrollment/models.py (it needs CertificateRequest's states); the request's
link to its batch is `CertificateRequest.batch`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Count, Q

from .models import CERTIFICATE_TYPE_CHOICES, KEY_TYPE_CHOICES, CertificateRequest

# The request states a batch's progress counts, in the order the pages show them.
PROGRESS_STATES = tuple(CertificateRequest.State.values)


class EnrollmentBatchQuerySet(models.QuerySet):
    def with_progress(self) -> EnrollmentBatchQuerySet:
        """Each batch with `progress_<state>` (its requests in that state) and `progress_total`: one query."""
        per_state = {
            f"progress_{state}": Count("requests", filter=Q(requests__state=state)) for state in PROGRESS_STATES
        }
        return self.annotate(progress_total=Count("requests"), **per_state)


class EnrollmentBatch(models.Model):
    class Source(models.TextChoices):
        CSV = "csv", "CSV file"
        DIRECTORY_GROUP = "directory_group", "directory group"

    class Via(models.TextChoices):
        COMMAND = "command", "manage.py enroll"
        ADMIN = "admin", "admin upload"
        API = "api", "API upload"

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="enrollment_batches"
    )
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When its rows were written (the requests exist); issuance may go on afterwards, on the workers.
    finished_at = models.DateTimeField(null=True, blank=True)
    source_kind = models.CharField("source", max_length=16, choices=Source.choices, default=Source.CSV)
    source = models.CharField(
        "file or group", max_length=500, help_text="The CSV file's name, or the directory group's DN."
    )
    via = models.CharField(max_length=16, choices=Via.choices, default=Via.COMMAND)
    key_type = models.CharField(
        max_length=16, choices=KEY_TYPE_CHOICES, default="rsa-3072", help_text="For rows that name none."
    )
    certificate_type = models.CharField(
        max_length=32, choices=CERTIFICATE_TYPE_CHOICES, default="sponsor-strict", help_text="For rows that name none."
    )
    approved_by_policy = models.BooleanField(
        default=False, help_text="PORTAL_ENROLLMENT_AUTO_APPROVE was on: its requests were approved at once."
    )
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="Requests filed (new employees and existing ones).")
    employees_created = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Rows of people already enrolled.")
    failed = models.PositiveIntegerField(default=0)
    # [{"where": "line 3" or a DN, "username", "mail", "field", "reason"}, ...] per row and reason.
    failures = models.JSONField(default=list, blank=True)

    objects = EnrollmentBatchQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "enrollment batch"
        verbose_name_plural = "enrollment batches"

    def __str__(self) -> str:
        return f"Batch #{self.pk} ({self.source})"

    def progress(self) -> dict[str, int]:
        """Requests per state (from `with_progress()` when annotated, else one query)."""
        if hasattr(self, "progress_total"):
            return {state: getattr(self, f"progress_{state}") for state in PROGRESS_STATES}
        counts = dict(self.requests.values_list("state").annotate(count=Count("pk")).order_by())
        return {state: counts.get(state, 0) for state in PROGRESS_STATES}
