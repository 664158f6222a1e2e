from django.core.management.base import BaseCommand, CommandError

from ...outbox import mail_outbox_drain


class Command(BaseCommand):
    help = (
        "Send the mail in the outbox that is due: messages that could not be sent after their step "
        "committed (mail server down) and whose backoff is over. Prints one summary line; exits non-zero "
        "when every attempt failed. Run it every few minutes from cron (Celery beat runs it without cron)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="Attempt at most this many messages.")

    def handle(self, *args, limit=None, **options):
        summary = mail_outbox_drain(limit=limit)
        if summary.failed and not summary.sent:
            raise CommandError(f"No mail sent: {summary} (the mail server refused or did not answer; retried later)")
        self.stdout.write(str(summary))
