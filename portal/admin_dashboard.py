"""The admin dashboard (admin:dashboard): counts and charts for PKI administrators and auditors.

Reads only, through the apps' dashboard selectors; every number links to the admin list of
the same rows (the list filters share the selectors' conditions). Who sees it: whoever may
view the certificate authorities (Auditors, PKI administrators, superusers); each panel
also needs the view permission of the list it links to, so an account sees no number it
could not open. Charts are inline SVG from core.charts, with a table of the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from audit.events import AuditAction
from audit.selectors import audit_log_visible_to
from audit.selectors_dashboard import audit_dashboard_summary
from core.charts import Bar, horizontal_bar_chart, vertical_bar_chart
from enrollment import selectors_dashboard as certificates
from escrow import selectors_dashboard as escrow

DASHBOARD_PERMISSION = "enrollment.view_certificateauthority"

# Tones of the states that need someone's attention.
_REQUEST_TONES = {"pending": "warn", "approved": "warn", "failed": "bad", "rejected": "muted"}
_RECOVERY_TONES = {"pending": "warn", "approved": "warn", "rejected": "muted", "withdrawn": "muted", "expired": "muted"}
_PUBLICATION_TONES = {"failed": "bad", "remove_failed": "bad", "pending": "warn", "remove_pending": "warn"}
_HEALTH_TONES = {"fresh": "good", "due": "warn", "renewing": "warn", "none": "warn", "expired": "bad", "missing": "bad"}


@dataclass(frozen=True)
class Row:
    label: str
    value: str
    href: str = ""
    tone: str = ""
    detail: str = ""


@dataclass
class Panel:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    chart: SafeString | None = None
    note: str = ""
    value_heading: str = "Count"


def _chart(draw, *, chart_id: str, title: str, rows: list[Row], description: str = "") -> SafeString:
    """A chart of the rows' numbers; core.charts escapes every text it writes, so the markup is safe."""
    bars = [Bar(label=row.label, value=int(row.value), tone=row.tone) for row in rows]
    return mark_safe(draw(chart_id=chart_id, title=title, bars=bars, description=description))


def _changelist(model: str, **params) -> str:
    url = reverse(f"admin:{model.replace('.', '_')}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def dashboard_visible_to(user) -> bool:
    return user.is_active and user.has_perm(DASHBOARD_PERMISSION)


def _bars_panel(key: str, title: str, counts, *, model: str, param: str, tones: dict, note: str = "") -> Panel:
    rows = [
        Row(
            label=label,
            value=str(count),
            href=_changelist(model, **{param: value}),
            tone=tones.get(value, "") if count else "",
        )
        for value, label, count in counts
    ]
    chart = _chart(horizontal_bar_chart, chart_id=f"chart-{key}", title=title, rows=rows)
    return Panel(key=key, title=title, rows=rows, note=note, chart=chart)


def _certificate_panels(now, crls) -> tuple[list[Panel], int]:
    counts = certificates.certificate_counts(now=now, this_updates={crl.ca_id: crl.this_update for crl in crls})
    pickups = escrow.pickup_counts(now=now)
    model = "enrollment.certificate"
    weeks = [
        Row(
            label=f"{week:%d %b}",
            value=str(count),
            href=_changelist(model, issued_week=week.isoformat()),
            detail=f"week of {week:%d %b %Y}",
        )
        for week, count in counts.issued_by_week
    ]
    issued = Panel(
        key="issued",
        title="Certificates issued per week",
        rows=weeks,
        value_heading="Issued",
        note="The last 12 weeks, Monday to Sunday (UTC); the current week so far is the last.",
        chart=_chart(
            vertical_bar_chart,
            chart_id="chart-issued",
            title="Certificates issued per week, last 12 weeks",
            rows=weeks,
            description="Weeks start on Monday; the last is the current week.",
        ),
    )
    expiring = [
        Row(
            label=f"within {days} days",
            value=str(count),
            href=_changelist(model, expires_within=days),
            tone="warn" if days == 30 and count else "",
        )
        for days, count in counts.expiring.items()
    ]
    expiry = Panel(
        key="expiring",
        title="Valid certificates expiring",
        rows=expiring,
        note="Each window includes the shorter ones.",
        chart=_chart(
            horizontal_bar_chart,
            chart_id="chart-expiring",
            title="Valid certificates expiring within 30, 60 and 90 days",
            rows=expiring,
        ),
    )
    never = Panel(
        key="not-downloaded",
        title="Keys never downloaded",
        rows=[
            Row(
                label="download window open",
                value=str(pickups.waiting),
                href=_changelist(model, key_pickup=escrow.PICKUP_WAITING),
                tone="warn" if pickups.waiting else "",
            ),
            Row(
                label="download window closed",
                value=str(pickups.missed),
                href=_changelist(model, key_pickup=escrow.PICKUP_MISSED),
                tone="bad" if pickups.missed else "",
            ),
        ],
        note="Valid certificates whose pickup copy was never downloaded. Closed copies are deleted by the purge "
        "job; the audit log keeps who downloaded what.",
    )
    reasons = [
        Row(
            label=reason.replace("_", " "),
            value=str(count),
            href=_changelist(model, revocation_reason=reason),
            tone="bad" if reason == "key_compromise" else "",
        )
        for reason, count in counts.revoked_by_reason
    ]
    revoked = Panel(
        key="revocations",
        title="Revocations by reason",
        rows=reasons,
        value_heading="Revoked",
        note="" if reasons else "No certificate has been revoked.",
    )
    if reasons:
        revoked.chart = _chart(
            horizontal_bar_chart, chart_id="chart-revocations", title="Revoked certificates by reason", rows=reasons
        )
    return [issued, expiry, never, revoked], counts.revoked_after_crl


def _revocation_problems(revoked_after_crl: int, publications, user, *, now) -> Panel:
    not_done = certificates.revocation_failures_not_done(now=now)
    rows = [
        Row(
            label=f"revocation failed in the last {certificates.REVOCATION_FAILURE_DAYS} days, still valid",
            value=str(not_done),
            href=(
                _changelist("audit.auditevent", action__exact=AuditAction.CERTIFICATE_REVOCATION_FAILED.value)
                if audit_log_visible_to(user=user)
                else ""
            ),
            tone="bad" if not_done else "good",
            detail="revoke them again: each failure is in the audit log and was logged at ERROR" if not_done else "",
        ),
        Row(
            label="revoked, not yet on the CRL",
            value=str(revoked_after_crl),
            href=_changelist("enrollment.certificate", on_crl="no"),
            tone="bad" if revoked_after_crl else "good",
        ),
    ]
    if user.has_perm("enrollment.view_directorypublication"):
        failed = next(count for value, _, count in publications if value == "remove_failed")
        rows.append(
            Row(
                label="revoked, removal from the directory failed",
                value=str(failed),
                href=_changelist("enrollment.directorypublication", state__exact="remove_failed"),
                tone="bad" if failed else "good",
            )
        )
    return Panel(
        key="revocation-failures",
        title="Revocation problems",
        rows=rows,
        note=(
            "A revocation that fails is rolled back, logged at ERROR and audited (the caller is told to try "
            "again); what can lag behind a revocation that happened is counted here too."
        ),
    )


def _freshness_panel(crls, responders) -> Panel:
    rows = []
    for crl in crls:
        detail = (
            (
                f"CRL #{crl.crl_number}, signed {crl.this_update:%Y-%m-%d %H:%M}, next update "
                f"{crl.next_update:%Y-%m-%d %H:%M} UTC"
            )
            if crl.this_update and crl.next_update
            else "no CRL signed yet"
        )
        href = reverse("admin:enrollment_certificateauthority_change", args=[crl.ca_id])
        rows.append(
            Row(
                label=f"{crl.ca_name}: CRL",
                value=crl.state,
                href=href,
                tone=_HEALTH_TONES.get(crl.state, ""),
                detail=detail,
            )
        )
    for responder in responders:
        if responder.signer != "delegated":
            detail = "OCSP is disabled" if responder.signer == "disabled" else "answers signed by the CA key itself"
        elif responder.responder_not_after is None:
            detail = "no responder certificate yet: issued at the first OCSP request"
        else:
            detail = f"responder certificate valid until {responder.responder_not_after:%Y-%m-%d %H:%M} UTC"
        href = reverse("admin:enrollment_certificateauthority_change", args=[responder.ca_id])
        rows.append(
            Row(
                label=f"{responder.ca_name}: OCSP",
                value=responder.state,
                href=href,
                tone=_HEALTH_TONES.get(responder.state, ""),
                detail=detail,
            )
        )
    return Panel(
        key="freshness",
        title="CRL and OCSP freshness",
        rows=rows,
        value_heading="State",
        note=(
            "A CRL is reissued daily (by the periodic job or the next fetch): older is due, past its next update expired."
        ),
    )


def _audit_panel() -> Panel:
    summary = audit_dashboard_summary()
    chain, checkpoint = summary.chain, summary.checkpoint
    url = _changelist("audit.auditevent")
    last = f"newest event {summary.last_event_at:%Y-%m-%d %H:%M} UTC" if summary.last_event_at else "no events"
    rows = [
        Row(
            label="hash chain",
            value="intact" if chain.intact else "broken",
            href=url,
            tone="good" if chain.intact else "bad",
            detail=f"{chain}; {last}",
        )
    ]
    if checkpoint.anchor is not None:
        anchor = checkpoint.anchor
        detail = f"{anchor.timestamp}: event #{anchor.last_id}, {anchor.count} events"
        detail += f"; {checkpoint.problem}" if checkpoint.problem else ""
    else:
        detail = checkpoint.problem
    rows.append(
        Row(
            label="newest checkpoint",
            value="holds" if checkpoint.holds else "not verified",
            href=url,
            tone="good" if checkpoint.holds else ("bad" if checkpoint.anchor else "warn"),
            detail=detail,
        )
    )
    return Panel(
        key="audit",
        title="Audit chain",
        rows=rows,
        value_heading="Status",
        note=(
            "Checked here: the newest events and the newest anchor. manage.py verify_audit_log --anchors checks all."
        ),
    )


def dashboard_panels(user) -> list[Panel]:
    now = timezone.now()
    panels: list[Panel] = []
    crls, responders = certificates.revocation_health(now=now)
    revoked_after_crl = 0
    if user.has_perm("enrollment.view_certificate"):
        certificate_panels, revoked_after_crl = _certificate_panels(now, crls)
        panels += certificate_panels
    if user.has_perm("enrollment.view_certificaterequest"):
        panels.append(
            _bars_panel(
                "requests",
                "Certificate requests by state",
                certificates.requests_by_state(),
                model="enrollment.certificaterequest",
                param="state__exact",
                tones=_REQUEST_TONES,
            )
        )
    if user.has_perm("escrow.view_recoveryrequest"):
        panels.append(
            _bars_panel(
                "recoveries",
                "Key recoveries by status",
                escrow.recoveries_by_status(),
                model="escrow.recoveryrequest",
                param="status__exact",
                tones=_RECOVERY_TONES,
                note="Approved recoveries wait for a key recovery agent.",
            )
        )
    publications = []
    if user.has_perm("enrollment.view_directorypublication"):
        publications = certificates.publications_by_state()
        panels.append(
            _bars_panel(
                "directory",
                "Directory publication",
                publications,
                model="enrollment.directorypublication",
                param="state__exact",
                tones=_PUBLICATION_TONES,
                note="Failed operations are retried automatically.",
            )
        )
    if user.has_perm("enrollment.view_certificate"):
        panels.append(_revocation_problems(revoked_after_crl, publications, user, now=now))
    panels.append(_freshness_panel(crls, responders))
    if audit_log_visible_to(user=user):
        panels.append(_audit_panel())
    return panels


def dashboard_view(request, *, site):
    if not dashboard_visible_to(request.user):
        raise PermissionDenied
    context = {
        **site.each_context(request),
        "title": "Dashboard",
        "panels": dashboard_panels(request.user),
        "generated_at": timezone.now(),
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
