"""The approval queue's order (pending requests, the oldest first) from an index: (state, created_at, id)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('enrollment', '0012_enrollment_batches'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='certificaterequest',
            index=models.Index(fields=['state', 'created_at', 'id'], name='request_state_created'),
        ),
    ]
