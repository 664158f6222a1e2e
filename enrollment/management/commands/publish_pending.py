from django.core.management.base import BaseCommand, CommandError

from enrollment.directory.drain import publications_drain


class Command(BaseCommand):
    help = (
        "Publish to (or remove from) the directory the certificates whose attempt is due, over one "
        "connection. Exits non-zero with one line when the directory cannot be used. Run it from cron "
        "or a periodic task every few minutes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--all", action="store_true", help="Also attempt rows whose retry time has not come yet."
        )
        parser.add_argument("--limit", type=int, default=None, help="Attempt at most this many rows.")

    def handle(self, *args, **options):
        summary = publications_drain(include_not_due=options["all"], limit=options["limit"])
        if summary.unavailable:
            waiting = summary.due - summary.published - summary.removed - summary.superseded
            reason = " ".join(summary.unavailable.split())
            raise CommandError(f"directory unavailable, {waiting} publication(s) wait for the next run: {reason}")
        self.stdout.write(str(summary))
        for error in summary.errors:
            self.stdout.write(f"  {error}")
