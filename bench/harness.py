"""The benchmark suite's harness: a throwaway portal, interleaved timing, the table and the JSON.

Every figure is a ratio against a baseline measured in the same run on the same machine:
the raw `cryptography` work the portal cannot avoid. Baseline and portal alternate round
by round (raw, portal, raw, portal, ...) and each side's figure is the median of its
rounds, so a machine that is busy with other work slows both alike and the ratio holds.

ratio = portal operations per second / raw operations per second (1.0: the portal adds
nothing to the crypto; 0.05: it spends 20 times what the crypto needs).
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """One benchmark's figures: operations per second of each side, and their ratio."""

    name: str
    work: str
    raw_per_second: float
    portal_per_second: float
    rounds: int
    operations: int
    notes: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.portal_per_second / self.raw_per_second

    def as_json(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def interleaved(
    *, name: str, work: str, raw: Callable[[int], None], portal: Callable[[int], None], rounds: int, per_round: int
) -> Result:
    """Time `raw(i)` and `portal(i)` alternately, `per_round` calls each per round; medians of the rounds.

    A warm-up call of each comes first (imports, caches, the OCSP responder's certificate).
    Each call gets its own index, so a benchmark can hand each call fresh data.
    """
    index = 0

    def timed(function: Callable[[int], None]) -> float:
        nonlocal index
        started = time.perf_counter()
        for _ in range(per_round):
            function(index)
            index += 1
        return (time.perf_counter() - started) / per_round

    raw(index)
    portal(index + 1)
    index += 2
    raw_seconds, portal_seconds = [], []
    for _ in range(rounds):
        raw_seconds.append(timed(raw))
        portal_seconds.append(timed(portal))
    return Result(
        name=name,
        work=work,
        raw_per_second=1 / statistics.median(raw_seconds),
        portal_per_second=1 / statistics.median(portal_seconds),
        rounds=rounds,
        operations=per_round,
    )


def setup_django(workdir: Path) -> str:
    """Django on throwaway data: a temporary SQLite file, or a scratch database next to DATABASE_URL's.

    Returns the database vendor. The scratch database is Django's test database (created by
    `create_test_db`, dropped by `destroy_test_db`): with DATABASE_URL=.../portal_bench it is
    test_portal_bench, and the database DATABASE_URL names is only connected to, never written.
    """
    os.environ["PORTAL_DATA_DIR"] = str(workdir / "data")
    os.environ["PORTAL_CA_KEY_DIR"] = str(workdir / "data" / "ca")
    (workdir / "data" / "static").mkdir(parents=True)  # collectstatic's place: whitenoise looks for it
    os.environ.setdefault("PORTAL_LOG_LEVEL", "WARNING")
    os.environ["PORTAL_DEBUG"] = "false"  # DEBUG keeps every SQL query in memory: not what production does
    os.environ.pop("PORTAL_BROKER_URL", None)  # issuance in process, as the embedded default does
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    django.setup()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # no mail printed or sent
    # The audit sink's line per event still gets written (as to syslog in production), to nowhere.
    sink = logging.getLogger("portal.audit.events")
    sink.handlers = [logging.StreamHandler(open(os.devnull, "w"))]  # noqa: SIM115 - for the process's life
    sink.propagate = False
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database.setdefault("TEST", {})["NAME"] = str(workdir / "bench.sqlite3")
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:  # a throwaway file: no need to survive a crash
            cursor.execute("PRAGMA synchronous = OFF")
    return connection.vendor


def teardown_django() -> None:
    from django.conf import settings
    from django.db import connection

    connection.creation.destroy_test_db(settings.DATABASES["default"]["NAME"], verbosity=0)


def table(results: list[Result], *, title: str) -> str:
    lines = [title, ""]
    lines.append(f"{'benchmark':<34} {'raw /s':>10} {'portal /s':>10} {'ratio':>7}  work")
    for result in results:
        lines.append(
            f"{result.name:<34} {result.raw_per_second:>10,.1f} {result.portal_per_second:>10,.1f} "
            f"{result.ratio:>7.3f}  {result.work}"
        )
    return "\n".join(lines)
