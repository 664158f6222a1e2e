"""One open recovery (pending or approved) per keys and recipient, as partial unique indexes (issue 12).

A recovery is under dual control, so duplicates left by a race are not closed here: the
migration stops and names them, to be withdrawn by a person (the admin or the API) - or,
for approvals that ran out, expired by `manage.py expire_recoveries` - before it runs again.
"""

from django.db import migrations, models
from django.db.models import Count

OPEN = ("pending", "approved")


def refuse_duplicates(apps, schema_editor):
    recovery_model = apps.get_model("escrow", "RecoveryRequest")
    doubled = (
        recovery_model.objects.filter(status__in=OPEN)
        .values("employee", "certificate", "recipient").annotate(n=Count("id")).filter(n__gt=1)
    )
    groups = []
    for group in doubled:
        ids = recovery_model.objects.filter(
            status__in=OPEN, employee_id=group["employee"], certificate_id=group["certificate"],
            recipient_id=group["recipient"],
        ).order_by("id").values_list("id", flat=True)
        groups.append(" and ".join(f"#{pk}" for pk in ids))
    if groups:
        raise RuntimeError(
            "escrow 0006 cannot add the one-open-recovery rule: these recovery requests are open for the same keys "
            f"and recipient: {'; '.join(groups)}. Withdraw all but one of each (admin or API), or run "
            "`manage.py expire_recoveries` if their approvals ran out, then migrate again."
        )


class Migration(migrations.Migration):

    dependencies = [
        ("escrow", "0005_recovery_withdrawal_and_expiry"),
    ]

    operations = [
        migrations.RunPython(refuse_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="recoveryrequest",
            constraint=models.UniqueConstraint(
                condition=models.Q(("certificate__isnull", False), ("status__in", ["pending", "approved"])),
                fields=("employee", "certificate", "recipient"),
                name="one_open_recovery_per_certificate",
                violation_error_message="A recovery request for this key and this recipient is open already.",
            ),
        ),
        migrations.AddConstraint(
            model_name="recoveryrequest",
            constraint=models.UniqueConstraint(
                condition=models.Q(("certificate__isnull", True), ("status__in", ["pending", "approved"])),
                fields=("employee", "recipient"),
                name="one_open_recovery_of_all_keys",
                violation_error_message="A recovery request for these keys and this recipient is open already.",
            ),
        ),
    ]
