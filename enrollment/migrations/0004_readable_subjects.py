"""Rewrite stored subjects with readable attribute names (GN=, SN=, organizationIdentifier=, emailAddress=)."""

from cryptography import x509
from django.db import migrations

from enrollment.pki.profiles import name_text

BATCH = 1000


def readable_subjects(apps, schema_editor):
    Certificate = apps.get_model("enrollment", "Certificate")
    batch = []
    for certificate in Certificate.objects.only("pk", "der", "subject").iterator(chunk_size=BATCH):
        subject = name_text(x509.load_der_x509_certificate(bytes(certificate.der)).subject)
        if subject != certificate.subject:
            certificate.subject = subject
            batch.append(certificate)
        if len(batch) >= BATCH:
            Certificate.objects.bulk_update(batch, ["subject"])
            batch = []
    Certificate.objects.bulk_update(batch, ["subject"])


class Migration(migrations.Migration):
    dependencies = [("enrollment", "0003_lifecycle")]

    operations = [migrations.RunPython(readable_subjects, migrations.RunPython.noop)]
