"""The admin home's approval box: how many certificate requests wait, linking to the queue."""

from __future__ import annotations

from django import template
from django.urls import reverse

from ..selectors import requests_pending

register = template.Library()


@register.inclusion_tag("admin/enrollment/_pending_requests_box.html", takes_context=True)
def pending_requests_box(context) -> dict:
    """For those who may see the requests; the count is the queue's (selectors.requests_pending)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("enrollment.view_certificaterequest"):
        return {"show": False}
    count = requests_pending().count()
    return {
        "show": True,
        "count": count,
        "may_decide": user.has_perm("enrollment.approve_certificaterequest"),
        "queue_url": reverse("admin:enrollment_certificaterequest_changelist") + "?state__exact=pending",
    }
