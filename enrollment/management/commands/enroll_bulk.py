"""`manage.py enroll_bulk FILE --actor USERNAME`: the older spelling of `manage.py enroll --csv FILE`."""

from pathlib import Path

from .enroll import Command as EnrollCommand


class Command(EnrollCommand):
    help = "The same as `manage.py enroll --csv FILE` (same options, output and exit statuses). " + EnrollCommand.help

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="The CSV file.")
        self.add_common_arguments(parser)

    def handle(self, *args, file: Path, **options):
        return super().handle(*args, csv=file, ldap_group=None, **options)
