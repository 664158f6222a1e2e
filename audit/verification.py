"""The hash chain's verified point (AuditChainState): how far the chain is known to verify.

Three checks move it, each continuing from the stored point and its hash, so that none
re-hashes what was verified before:
- the admin's changelist: at most `limit` events after the point, on each view (bounded);
- the periodic job `audit.chain_verify`: every event after the point, up to the head;
- the full check (`audit.chain_verify_full`, daily, and `manage.py verify_audit_log`): every
  event from the genesis, which catches an OLD event edited after it was verified.

A break stays recorded until a full check finds the chain intact again: the admin shows it
and verifies nothing after it. Only this table is written: the audit table stays append-only.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from .chain import AnchorError, AuditAnchor, AuditVerification, audit_chain_continue, audit_verify
from .keys import ChainKeyring
from .models import AuditChainState, AuditEvent

CHAIN_STATE_PK = 1
_CHUNK = 2000


def chain_state() -> AuditChainState:
    """The stored point, or the genesis (nothing verified yet) before the first check wrote it."""
    return AuditChainState.objects.filter(pk=CHAIN_STATE_PK).first() or AuditChainState(pk=CHAIN_STATE_PK)


def _store(before: AuditChainState, changes: dict) -> bool:
    """Write `changes` if nobody moved the point since `before` was read (else their result stands)."""
    if before._state.adding:
        try:
            with transaction.atomic():
                AuditChainState.objects.create(pk=CHAIN_STATE_PK, **changes)
            return True
        except IntegrityError:  # another check wrote the first row meanwhile
            return False
    return bool(
        AuditChainState.objects.filter(
            pk=CHAIN_STATE_PK, verified_through_id=before.verified_through_id, broken_id=before.broken_id
        ).update(**changes)
    )


def _event(pk: int | None) -> AuditEvent | None:
    return AuditEvent.objects.filter(pk=pk).first() if pk is not None else None


def audit_chain_advance(*, limit: int | None) -> AuditChainState:
    """Verify the events after the stored point (at most `limit`; None: up to the head) and store how far."""
    state = chain_state()
    if state.broken_id is not None:
        return state  # nothing after a break verifies; the full check re-checks it
    now = timezone.now()
    start = state.verified_through_id
    if start and AuditEvent.objects.filter(pk=start).values_list("hash", flat=True).first() != state.verified_through_hash:
        changes = dict(
            broken_id=start, broken_unverifiable=False, broken_found_at=now,
            broken_reason="the event the chain was verified through is gone or has another hash (deleted or edited since)",
        )  # fmt: skip
        _store(state, changes)
        return chain_state()
    events = AuditEvent.objects.filter(id__gt=start).order_by("id")
    if limit is None:
        batch, at_head = events.iterator(chunk_size=_CHUNK), True
    else:
        batch = list(events[:limit])
        at_head = len(batch) < limit
    progress = audit_chain_continue(
        batch, start_hash=state.verified_through_hash, keyed=state.keyed,
        first_unsealed=_event(state.unsealed_from_id), at_head=at_head,
    )  # fmt: skip
    changes: dict = {}
    if progress.last is not None:
        changes.update(
            verified_through_id=progress.last.pk, verified_through_hash=progress.last.hash, keyed=progress.keyed,
            unsealed_from_id=progress.first_unsealed.pk if progress.first_unsealed is not None else None,
        )  # fmt: skip
    if progress.last is not None or state.verified_at is None:
        changes["verified_at"] = now
    if progress.broken is not None:
        changes.update(
            broken_id=progress.broken.pk, broken_reason=progress.reason, broken_unverifiable=progress.unverifiable,
            broken_found_at=now,
        )  # fmt: skip
    if changes and _store(state, changes):
        for name, value in changes.items():
            setattr(state, name, value)
    return state


def audit_chain_verify_full(
    *,
    anchors: Iterable[tuple[int, AuditAnchor | AnchorError]] = (),
    keyring: ChainKeyring | None = None,
) -> AuditVerification:
    """Re-verify the whole chain from the genesis (and the anchors), and store the verdict and the point."""
    started = timezone.now()
    result = audit_verify(AuditEvent.objects.order_by("id").iterator(chunk_size=_CHUNK), anchors=anchors, keyring=keyring)
    audit_chain_record_full_check(result=result, at=started)
    return result


def _point(result: AuditVerification) -> dict:
    last = result.verified_through
    return dict(
        verified_through_id=last.pk if last is not None else 0,
        verified_through_hash=last.hash if last is not None else AuditChainState().verified_through_hash,
        keyed=result.keyed,
        unsealed_from_id=result.first_unsealed.pk if result.first_unsealed is not None else None,
    )


@transaction.atomic
def audit_chain_record_full_check(*, result: AuditVerification, at=None) -> AuditChainState:
    """Store a full check's verdict. A break it found replaces the point; an intact chain clears the
    breaks up to where it read and moves the point forward (never back behind a shorter check's)."""
    at = at or timezone.now()
    state = AuditChainState.objects.select_for_update().filter(pk=CHAIN_STATE_PK).first()
    if state is None:
        try:
            with transaction.atomic():
                state = AuditChainState.objects.create(pk=CHAIN_STATE_PK)
        except IntegrityError:
            state = AuditChainState.objects.select_for_update().get(pk=CHAIN_STATE_PK)
    intact = result.broken is None
    changes: dict = dict(full_check_at=at, full_check_events=result.count, full_check_intact=intact, verified_at=at)
    if not intact:
        changes.update(
            _point(result), broken_id=result.broken.pk, broken_reason=result.reason,
            broken_unverifiable=result.unverifiable, broken_found_at=at,
        )  # fmt: skip
    else:
        head = result.verified_through.pk if result.verified_through is not None else 0
        if state.broken_id is not None and state.broken_id <= head:
            changes.update(_point(result), broken_id=None, broken_reason="", broken_unverifiable=False, broken_found_at=None)
        elif state.broken_id is None and state.verified_through_id <= head:
            changes.update(_point(result))
    for name, value in changes.items():
        setattr(state, name, value)
    state.save()
    return state
