"""The "only one" rules of certificate requests as partial unique indexes (issue 12).

One pending request per employee and certificate type; one live renewal (not rejected or
failed) per certificate. The races of issue 12 may have left duplicates behind; they are
resolved first, each one recorded in the request's reason:

- a second live renewal of a certificate that is still pending (or approved, not issued) is
  rejected; one that was issued keeps its certificate but no longer counts as *the* renewal
  (renewal_of emptied; the audit log's request.created event still names the certificate);
- a second pending request of one employee and certificate type is rejected (the oldest stays).

Nothing is issued or revoked here; the employee may ask again.
"""

from django.db import migrations, models
from django.db.models import Count
from django.utils import timezone

NOTE = "Closed by migration enrollment 0009 (issue 12): "
LIVE = ("pending", "approved", "issued")


def resolve_duplicates(apps, schema_editor):
    request_model = apps.get_model("enrollment", "CertificateRequest")
    now = timezone.now()
    resolved = []

    doubled = (
        request_model.objects.filter(renewal_of__isnull=False, state__in=LIVE)
        .values("renewal_of").annotate(n=Count("id")).filter(n__gt=1).values_list("renewal_of", flat=True)
    )
    for certificate_id in list(doubled):
        live = list(request_model.objects.filter(renewal_of_id=certificate_id, state__in=LIVE).order_by("id"))
        keep = next((request for request in live if request.state == "issued"), live[0])
        for request in live:
            if request.pk == keep.pk:
                continue
            note = f"a second renewal of certificate #{certificate_id}; request #{keep.pk} is its renewal."
            if request.state == "issued":
                request.renewal_of_id = None
                request.reason = (request.reason + "\n" if request.reason else "") + NOTE + note
                request.save(update_fields=["renewal_of", "reason"])
            else:
                request.state, request.decided_at, request.reason = "rejected", now, NOTE + note
                request.save(update_fields=["state", "decided_at", "reason"])
            resolved.append(request.pk)

    doubled = (
        request_model.objects.filter(state="pending")
        .values("employee", "certificate_type").annotate(n=Count("id")).filter(n__gt=1)
    )
    for group in list(doubled):
        pending = list(
            request_model.objects.filter(
                state="pending", employee_id=group["employee"], certificate_type=group["certificate_type"]
            ).order_by("id")
        )
        for request in pending[1:]:
            request.state, request.decided_at = "rejected", now
            request.reason = NOTE + f"a second pending request; request #{pending[0].pk} stays pending."
            request.save(update_fields=["state", "decided_at", "reason"])
            resolved.append(request.pk)

    if resolved:
        print(f"\n  enrollment 0009: resolved duplicate requests {', '.join(f'#{pk}' for pk in resolved)}")
    if schema_editor.connection.vendor == "postgresql":
        # The rows' deferred foreign-key checks now, or PostgreSQL refuses the indexes below
        # ("pending trigger events").
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ("enrollment", "0009_identity_change_requests"),
    ]

    operations = [
        migrations.RunPython(resolve_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="certificaterequest",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "pending")),
                fields=("employee", "certificate_type"),
                name="one_pending_request_per_employee_and_type",
                violation_error_message="There is a pending request for this employee and certificate type already.",
            ),
        ),
        migrations.AddConstraint(
            model_name="certificaterequest",
            constraint=models.UniqueConstraint(
                condition=models.Q(("renewal_of__isnull", False), models.Q(("state__in", ["rejected", "failed"]), _negated=True)),
                fields=("renewal_of",),
                name="one_renewal_per_certificate",
                violation_error_message="This certificate has been renewed already.",
            ),
        ),
    ]
