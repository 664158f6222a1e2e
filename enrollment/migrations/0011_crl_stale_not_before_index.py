"""Issue 13, hot paths: a CA's CRL marked stale by revocations (reissued once per batch), and
an index for the certificates' default ordering (newest first).

`crl_stale_since`: a revocation no longer re-signs the whole CRL in its own transaction (a
department's offboarding was quadratic); it marks the CRL stale, and the next CRL served,
the periodic job or the directory publication signs one CRL for every revocation since.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("enrollment", "0010_robustness_constraints"),
    ]

    operations = [
        migrations.AddField(
            model_name="certificateauthority",
            name="crl_stale_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="certificate",
            index=models.Index(fields=["not_before", "id"], name="certificate_not_before"),
        ),
    ]
