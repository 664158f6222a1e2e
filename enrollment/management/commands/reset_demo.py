"""`make clean-demo`: remove what `make run` made, so that the next run bootstraps a new demo.

Only the development defaults under the data directory (PORTAL_DATA_DIR, default var/): the
embedded SQLite database, the CA and OCSP keys, the audit anchors and the demo agent's
PKCS#12. Anything else is refused before a file is touched: production, a database that is
not that SQLite file (PostgreSQL above all), key or anchor locations moved elsewhere. The
generated development secrets stay: they protect nothing once the rest is gone.
"""

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def _demo_paths() -> list[Path]:
    """What to remove; a CommandError if any of it is not the development default."""
    if settings.ENVIRONMENT != "development":
        raise CommandError(
            f"reset_demo runs only with PORTAL_ENVIRONMENT=development (this is {settings.ENVIRONMENT}); "
            "it never removes a production database or CA keys."
        )
    data_dir = Path(settings.DATA_DIR)
    database = settings.DATABASES["default"]
    sqlite = data_dir / "portal.sqlite3"
    if database["ENGINE"] != "django.db.backends.sqlite3" or Path(str(database["NAME"])).resolve() != sqlite:
        raise CommandError(
            f"reset_demo removes only the demo's SQLite database {sqlite}; this portal uses "
            f"{database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']} (DATABASE_URL): nothing was removed."
        )
    moved = {
        "PORTAL_CA_KEY_DIR": (Path(settings.PORTAL_CA_KEY_DIR), data_dir / "ca"),
        "PORTAL_AUDIT_ANCHOR_FILE": (Path(settings.PORTAL_AUDIT_ANCHOR_FILE), data_dir / "audit-anchors.jsonl"),
    }
    for name, (configured, default) in moved.items():
        if configured.resolve() != default:
            raise CommandError(
                f"{name} is {configured}, not the demo's {default}: reset_demo removes only the development "
                "defaults; nothing was removed."
            )
    return [
        sqlite,
        *(sqlite.with_name(sqlite.name + suffix) for suffix in SQLITE_SIDE_FILES),
        data_dir / "ca",
        data_dir / "audit-anchors.jsonl",
        data_dir / "demo",
    ]


class Command(BaseCommand):
    help = "Remove the demo's database, CA keys, audit anchors and agent PKCS#12 (development only)."
    requires_system_checks: list[str] = []  # a reset must work while the demo is broken

    def handle(self, *args, **options):
        paths = _demo_paths()
        removed = []
        for path in paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            else:
                continue
            removed.append(str(path))
        if removed:
            self.stdout.write("Removed " + ", ".join(removed) + ". `make run` bootstraps a new demo.")
        else:
            self.stdout.write(f"No demo under {settings.DATA_DIR}: nothing to remove.")
