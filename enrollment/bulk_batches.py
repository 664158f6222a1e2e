"""A bulk enrollment's record: one EnrollmentBatch per run of `manage.py enroll` or upload.

`enrollment_batch_run` is what the edges call (the command, the admin's and the API's batches):
it plans the rows (enrollment/bulk.py), records the batch, writes its rows through the services
in groups, then its counts and failed rows. The start and the end are audited
(enrollment.batch_started / enrollment.batch_finished); every employee and request in between
by its own service, and with PORTAL_ENROLLMENT_AUTO_APPROVE every approval by policy with its batch.
Without the policy the approvers get one mail for the batch when it ends, not one per request.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from audit.events import AuditAction
from audit.services import audit_record
from core.exceptions import InvalidState, NotAllowed

from .bulk import bulk_apply, bulk_plan
from .bulk_file import MAX_RECORDED_FAILURES, BatchOutcome, BulkPlan, BulkRow, bulk_failures
from .models import EnrollmentBatch
from .notifications.services import notify_batch_pending
from .roles import is_pki_administrator
from .services.issuance import issuance_in_background


def enrollment_auto_approve_applies(*, actor) -> bool:
    """Whether the requests of a batch `actor` starts now are approved by policy (enrollment/bulk.py says why)."""
    return bool(settings.PORTAL_ENROLLMENT_AUTO_APPROVE) and actor.is_active and is_pki_administrator(actor)


def enrollment_batch_run(
    *,
    actor,
    rows: list[BulkRow],
    source: str,
    source_kind: str = EnrollmentBatch.Source.CSV,
    via: str = EnrollmentBatch.Via.COMMAND,
    key_type: str = "rsa-3072",
    certificate_type: str = "sponsor-strict",
    atomic: bool = False,
    dry_run: bool = False,
    in_process_issuance_limit: int | None = None,
    planned: Callable[[BulkPlan], None] = lambda plan: None,
    progress: Callable[[], None] = lambda: None,
) -> BatchOutcome:
    """Plan the rows, record the batch, write its rows through the services, then its counts and failures.

    Only an active PKI administrator starts a batch (NotAllowed). The batch is saved before its rows
    (committed in groups, so its progress shows while it runs); `finished_at` is set when every row
    has been tried. `planned(plan)` is called before any row is written, `progress()` after each.
    `in_process_issuance_limit` (the web edges): with the policy on and no broker, more rows than
    this are refused (InvalidState) before anything is written: this process would issue them all.
    """
    if not (actor.is_active and is_pki_administrator(actor)):
        raise NotAllowed(f"{actor.get_username()} is not an active PKI administrator: only they enroll employees.")
    plan = bulk_plan(rows, key_type=key_type, certificate_type=certificate_type)
    if dry_run:
        return BatchOutcome(plan=plan, written=0, batch=None)
    planned(plan)
    approve = enrollment_auto_approve_applies(actor=actor)
    todo = plan.count("create") + plan.count("request")
    limit = in_process_issuance_limit
    if approve and limit is not None and todo > limit and not issuance_in_background():
        raise InvalidState(
            f"{todo} requests would be approved by policy and, without a task queue (PORTAL_BROKER_URL), issued "
            f"in this web request; at most {limit} are. Use `manage.py enroll --csv FILE`, or run workers."
        )
    batch = EnrollmentBatch(
        started_by=actor,
        source=source[:500],
        source_kind=source_kind,
        via=via,
        key_type=key_type,
        certificate_type=certificate_type,
        approved_by_policy=approve,
        rows=len(plan.rows),
    )
    batch.full_clean()
    batch.save()
    audit_record(
        action=AuditAction.ENROLLMENT_BATCH_STARTED,
        actor=actor,
        obj=batch,
        details={"source": batch.source, "via": via, "rows": batch.rows, "approved_by_policy": approve},
    )
    written = 0
    if not (atomic and plan.bad_rows):
        written = bulk_apply(plan, actor=actor, atomic=atomic, progress=progress, batch=batch)
    batch.created = written
    batch.employees_created = sum(1 for row in plan.rows if row.action == "create" and not row.bad) if written else 0
    batch.skipped = plan.count("skip")
    batch.failed = len(plan.bad_rows)
    batch.failures = bulk_failures(plan)[:MAX_RECORDED_FAILURES]
    batch.finished_at = timezone.now()
    batch.save(update_fields=["created", "employees_created", "skipped", "failed", "failures", "finished_at"])
    audit_record(
        action=AuditAction.ENROLLMENT_BATCH_FINISHED,
        actor=actor,
        obj=batch,
        details={"created": written, "skipped": batch.skipped, "failed": batch.failed},
    )
    if not approve and written:
        notify_batch_pending(batch=batch)
    return BatchOutcome(plan=plan, written=written, batch=batch)
