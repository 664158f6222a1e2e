"""Draining the directory outbox: what is due (`manage.py publish_pending`, the periodic task)
and "retry now" for chosen rows (the admin action and the API), over one connection, in
batches (batch.py: a chunk of rows costs a few SQL statements and one search)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from core.exceptions import ConfigurationError, NotAllowed, NotFound, PortalError

from ..models import DirectoryPublication
from .batch import AttemptResult, BatchOutcome, publications_attempt
from .client import DirectoryClient
from .config import DirectoryConfig
from .services import DUE_STATES, NO_DIRECTORY, State, directory_config

# --- Draining what is due ----------------------------------------------------------------


@dataclass
class DrainSummary:
    due: int = 0
    published: int = 0
    removed: int = 0
    superseded: int = 0
    failed: int = 0
    # Set when the directory could not be used: the drain stopped there.
    unavailable: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.published + self.removed + self.superseded + self.failed

    def __str__(self) -> str:
        parts = [f"{self.published} published", f"{self.removed} removed"]
        if self.superseded:
            parts.append(f"{self.superseded} superseded")
        parts.append(f"{self.failed} failed")
        return f"{self.attempted} of {self.due} due publication(s) attempted: " + ", ".join(parts) + "."


def publications_due(*, now: datetime | None = None, include_not_due: bool = False):
    rows = DirectoryPublication.objects.filter(state__in=DUE_STATES)
    if not include_not_due:
        rows = rows.filter(next_attempt_at__lte=now or timezone.now())
    return rows.order_by("next_attempt_at", "pk")


def _attempts(pks: list[int], *, config: DirectoryConfig, actor=None, due_at: datetime | None = None) -> BatchOutcome:
    """Attempt the rows over one connection (network outside any transaction), in batches.

    Stops after an attempt that found the directory unusable (unreachable, TLS, bind refused):
    the others would fail alike, and stay as they were. Rows that no longer exist are passed over.
    """
    with DirectoryClient(config) as client:
        return publications_attempt(pks=pks, client=client, actor=actor, due_at=due_at)


def publications_drain(
    *, now: datetime | None = None, include_not_due: bool = False, limit: int | None = None
) -> DrainSummary:
    """Attempt every row that is due, over one connection; stop if the directory is unusable.

    When the directory cannot be reached (or refuses the bind), the row at hand records the
    failure and the drain stops: the others would fail alike, and stay due.
    """
    rows = list(publications_due(now=now, include_not_due=include_not_due).values_list("pk", flat=True)[:limit])
    summary = DrainSummary(due=len(rows))
    if not rows:
        return summary
    try:
        config = directory_config()
    except PortalError as exc:
        summary.unavailable = exc.message
        return summary
    if config is None:
        summary.unavailable = NO_DIRECTORY
        return summary
    outcome = _attempts(rows, config=config, due_at=None if include_not_due else (now or timezone.now()))
    for result in outcome.results:
        if result.skipped:
            summary.due -= 1
            continue
        if not result.ok:
            summary.failed += 1
            summary.errors.append(f"{result.publication.certificate.serial}: {result.error}")
            if result.unavailable:
                summary.unavailable = result.error
            continue
        state = result.publication.state
        if state == State.PUBLISHED:
            summary.published += 1
        elif state == State.SUPERSEDED:
            summary.superseded += 1
        else:
            summary.removed += 1
    return summary


# --- Retry now (the admin action and the API): chosen rows, due or not -------------------


class DirectoryNotConfigured(ConfigurationError):
    """PORTAL_LDAP_URI is empty: there is nothing to publish to."""


@dataclass
class RetryOutcome:
    # One result per row attempted, in id order (a result may be `skipped`: nothing to do).
    results: list[AttemptResult] = field(default_factory=list)
    # The ids left when an attempt found the directory unusable (its result says why).
    not_attempted: list[int] = field(default_factory=list)


def publications_retry(*, publication_ids: Iterable[int], actor) -> RetryOutcome:
    """Attempt the given directory publications now, whether due or not, over one connection.

    Each attempt is recorded on its row and audited with `actor` (publication_attempt); a failed
    attempt is an outcome, not an exception. When one finds the directory unusable the rest are
    not attempted (`not_attempted`). Raises NotAllowed without enrollment.retry_directorypublication,
    NotFound for an unknown id, DirectoryNotConfigured without PORTAL_LDAP_URI and
    ConfigurationError for directory settings that cannot work; then nothing is attempted.
    """
    if actor is not None and not (actor.is_active and actor.has_perm("enrollment.retry_directorypublication")):
        raise NotAllowed("You may not retry directory publications.")
    pks = sorted(set(publication_ids))
    missing = sorted(set(pks) - set(DirectoryPublication.objects.filter(pk__in=pks).values_list("pk", flat=True)))
    if missing:
        raise NotFound(f"There is no directory publication {', '.join(f'#{pk}' for pk in missing)}.")
    config = directory_config()
    if config is None:
        raise DirectoryNotConfigured(NO_DIRECTORY)
    attempted = _attempts(pks, config=config, actor=actor)
    return RetryOutcome(results=attempted.results, not_attempted=sorted(attempted.not_attempted))
