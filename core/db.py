"""Writing transactions: the one lock order, retries on deadlock, and "only one" constraints as 409s.

The lock order
==============
Every service transaction that writes takes its locks in this order, and never a lock
earlier in the list once it holds a later one:

1. the owner: the user (`auth_user`), then the employee;
2. the certificate request;
3. the certificate (the one revoked, renewed, expired or recovered);
4. the certificate authority (its CRL number);
5. escrow rows (recovery requests, pickup copies, escrow records);
6. the audit chain's advisory lock (`audit.services.audit_record`) - always last.

Why the chain is last: it is one lock for every writer in the portal. A transaction that
holds it and then waits for a row waits, in effect, for every transaction that holds that
row and wants to append an event - and every writing transaction appends one. With business
rows first, a transaction that reaches the chain lock already holds every row it will lock,
so whoever holds the chain never waits for a row (finding 1 of issue 12: the revocation
locked the certificate, then waited for the chain; the renewal held the chain and then
waited for the certificate - PostgreSQL aborted the revocation as a deadlock).

Why rows are locked FOR NO KEY UPDATE (`select_for_update(no_key=True)`), not FOR UPDATE:
Django creates PostgreSQL foreign keys DEFERRABLE INITIALLY DEFERRED, so each row inserted
with a foreign key checks its target at COMMIT, taking a FOR KEY SHARE lock on it - after
the chain lock, whatever the order in the code. FOR KEY SHARE conflicts with FOR UPDATE
but not with FOR NO KEY UPDATE; our services never change a primary key, so NO KEY UPDATE
is all they need, and the commit-time checks of an issuance (employee, CA, request) never
wait for a revocation or a CRL run that holds those rows.

Where a service needs "at most one" of something that does not exist yet (one pending
request per employee), it locks the existing row that owns it (the employee): locking an
empty queryset locks nothing. The database backs every such rule with a partial unique
index; `unique_conflicts` turns a violation into `AlreadyExists` (409) with the
constraint's readable message.

Retries
=======
`retry_on_conflict` reruns a service's whole transaction when PostgreSQL aborts it as a
deadlock or serialization failure (or SQLite's writer lock times out), a few times with a
short random pause; then the caller gets `TryAgain` (503), never a bare 500. It only
retries the outermost transaction: called inside another atomic block it runs once and
lets the error reach the outer service, whose transaction is the one to redo.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import DatabaseError, IntegrityError, connection, models, transaction

from .exceptions import AlreadyExists, TryAgain

logger = logging.getLogger(__name__)

# deadlock_detected, serialization_failure, lock_not_available
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
DEFAULT_ATTEMPTS = 4
TRY_AGAIN_MESSAGE = "The portal is busy with a conflicting change to the same records. Try again in a moment."


def is_conflict(exc: BaseException) -> bool:
    """Whether a database error is a transaction the database aborted for a concurrent one (worth a retry)."""
    if not isinstance(exc, DatabaseError):
        return False
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    return connection.vendor == "sqlite" and "database is locked" in str(exc)


def retry_on_conflict(
    func: Callable | None = None,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    message: str = TRY_AGAIN_MESSAGE,
    log: logging.Logger | None = None,
    log_level: int = logging.WARNING,
):
    """Decorate a service (outside its `@transaction.atomic`) to rerun it on deadlock or serialization failure.

    After `attempts` aborted runs it raises `TryAgain(message)`; `log`/`log_level` say how
    loudly each abort is reported (revocation: ERROR).
    """

    def decorate(service: Callable) -> Callable:
        report = log or logging.getLogger(service.__module__)

        @functools.wraps(service)
        def wrapper(*args, **kwargs):
            if connection.in_atomic_block:
                return service(*args, **kwargs)  # the outermost transaction retries, not this one
            for attempt in range(1, attempts + 1):
                try:
                    return service(*args, **kwargs)
                except DatabaseError as exc:
                    if not is_conflict(exc):
                        raise
                    report.log(
                        log_level,
                        "%s aborted by a concurrent transaction (attempt %d of %d): %s",
                        service.__qualname__, attempt, attempts, str(exc).strip().splitlines()[0] if str(exc) else exc,
                    )
                    if attempt == attempts:
                        raise TryAgain(message) from exc
                    time.sleep(random.uniform(0.01, 0.05) * attempt)
            raise AssertionError("unreachable")  # pragma: no cover

        return wrapper

    return decorate(func) if func is not None else decorate


# --- "Only one" constraints -----------------------------------------------------------------------


def _violated(exc: IntegrityError, model: type[models.Model], constraint: models.UniqueConstraint) -> bool:
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name == constraint.name
    # SQLite names the columns, not the index: "UNIQUE constraint failed: table.a, table.b".
    table = model._meta.db_table
    columns = ", ".join(f"{table}.{model._meta.get_field(name).column}" for name in constraint.fields)
    return str(exc).strip() == f"UNIQUE constraint failed: {columns}"


@contextmanager
def unique_conflicts(*model_classes: type[models.Model]) -> Iterator[None]:
    """Run the block in a savepoint; a violated UniqueConstraint of these models becomes `AlreadyExists` (409).

    The message is the constraint's `violation_error_message`; any other IntegrityError passes unchanged.
    """
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        for model in model_classes:
            for constraint in model._meta.constraints:
                if isinstance(constraint, models.UniqueConstraint) and constraint.fields and _violated(exc, model, constraint):
                    raise AlreadyExists(constraint.get_violation_error_message()) from exc
        raise
