"""Issue 13, bulk enrollment: a batch per run of `manage.py enroll` or per uploaded CSV, and each
request's link to the batch that filed it (none for requests filed one by one)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("enrollment", "0011_crl_stale_not_before_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="EnrollmentBatch",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("started_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "source_kind",
                    models.CharField(
                        choices=[("csv", "CSV file"), ("directory_group", "directory group")],
                        default="csv",
                        max_length=16,
                        verbose_name="source",
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        help_text="The CSV file's name, or the directory group's DN.",
                        max_length=500,
                        verbose_name="file or group",
                    ),
                ),
                (
                    "via",
                    models.CharField(
                        choices=[("command", "manage.py enroll"), ("admin", "admin upload"), ("api", "API upload")],
                        default="command",
                        max_length=16,
                    ),
                ),
                (
                    "key_type",
                    models.CharField(
                        choices=[
                            ("rsa-3072", "RSA 3072"),
                            ("rsa-4096", "RSA 4096"),
                            ("ec-p256", "ECDSA P-256"),
                            ("ec-p384", "ECDSA P-384"),
                        ],
                        default="rsa-3072",
                        help_text="For rows that name none.",
                        max_length=16,
                    ),
                ),
                (
                    "certificate_type",
                    models.CharField(
                        choices=[
                            ("sponsor-strict", "Sponsor-validated (strict)"),
                            ("mailbox-strict", "Mailbox-validated (strict)"),
                        ],
                        default="sponsor-strict",
                        help_text="For rows that name none.",
                        max_length=32,
                    ),
                ),
                (
                    "approved_by_policy",
                    models.BooleanField(
                        default=False,
                        help_text="PORTAL_ENROLLMENT_AUTO_APPROVE was on: its requests were approved at once.",
                    ),
                ),
                ("rows", models.PositiveIntegerField(default=0)),
                (
                    "created",
                    models.PositiveIntegerField(
                        default=0, help_text="Requests filed (new employees and existing ones)."
                    ),
                ),
                ("employees_created", models.PositiveIntegerField(default=0)),
                ("skipped", models.PositiveIntegerField(default=0, help_text="Rows of people already enrolled.")),
                ("failed", models.PositiveIntegerField(default=0)),
                ("failures", models.JSONField(blank=True, default=list)),
                (
                    "started_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="enrollment_batches",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "enrollment batch",
                "verbose_name_plural": "enrollment batches",
                "ordering": ["-started_at", "-id"],
            },
        ),
        migrations.AddField(
            model_name="certificaterequest",
            name="batch",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                help_text="The bulk enrollment that filed this request.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="requests",
                to="enrollment.enrollmentbatch",
            ),
        ),
    ]
