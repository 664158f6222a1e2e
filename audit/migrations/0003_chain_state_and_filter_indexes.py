"""The chain checks' stored point (AuditChainState, audit/verification.py) and the admin filters' indexes.

A table of its own for the state: the audit table's append-only triggers (audit/sql.py) stay
as they are and the runtime role needs no UPDATE on it. The indexes (action, id) and
(object_type, id) replace the index on action alone; adding or dropping an index fires no row trigger.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_auditevent_key_id'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditChainState',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('verified_through_id', models.BigIntegerField(default=0)),
                ('verified_through_hash', models.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
                ('verified_at', models.DateTimeField(blank=True, null=True)),
                ('keyed', models.BooleanField(default=False)),
                ('unsealed_from_id', models.BigIntegerField(blank=True, null=True)),
                ('broken_id', models.BigIntegerField(blank=True, null=True)),
                ('broken_reason', models.TextField(blank=True)),
                ('broken_unverifiable', models.BooleanField(default=False)),
                ('broken_found_at', models.DateTimeField(blank=True, null=True)),
                ('full_check_at', models.DateTimeField(blank=True, null=True)),
                ('full_check_events', models.BigIntegerField(default=0)),
                ('full_check_intact', models.BooleanField(default=False)),
            ],
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(max_length=64),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['action', 'id'], name='auditevent_action_id'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['object_type', 'id'], name='auditevent_object_type_id'),
        ),
    ]
