"""Picking a person from the directory on the employee admin's "Add employee" page.

A search box on the add page itself (GET `?find=...`, so the add permission decides who may
search and no extra URL exists) lists the people the directory finds; each one the portal may
add links back to the add page with the form's fields in the query string (the admin's own
way to fill in initial values), so it works without JavaScript. Saving is the add form as
ever: employee_create, the mail-domain rule, the audit event. Nothing here writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django import forms
from django.urls import reverse
from django.utils.http import urlencode

from core.exceptions import ConfigurationError, PortalError, error_message

from .directory.config import DirectoryConfig
from .directory.people import (
    MAX_TEXT_LENGTH,
    DirectoryNotConfigured,
    DirectoryPerson,
    DirectorySearchRefused,
    directory_people_in_portal,
    directory_people_search,
)
from .models import Employee
from .services.employees import mail_domain_error

logger = logging.getLogger(__name__)

SEARCH_PARAMETER = "find"
# Marks an add page filled in from the directory (the entry's DN is in directory_dn).
PICKED_PARAMETER = "from_directory"
# The admin's own query parameters that a pick keeps (a popup stays a popup).
KEPT_PARAMETERS = ("_popup", "_to_field", "_changelist_filters")
RESULT_LIMIT = 20


class DirectorySearchForm(forms.Form):
    find = forms.CharField(
        label="Find in the directory",
        max_length=MAX_TEXT_LENGTH,
        help_text="Part of a name, mailbox or log-in name; every word must match.",
    )


@dataclass(frozen=True)
class DirectoryMatch:
    person: DirectoryPerson
    # The add page with this person's details filled in; empty: not offered (see `reason`).
    pick_url: str = ""
    reason: str = ""
    employee: Employee | None = None
    existing_account: str = ""


def _directory_configured() -> bool:
    try:
        return DirectoryConfig.from_settings() is not None
    except ConfigurationError:
        return True  # configured, but wrongly: the search says how


class DirectoryPickMixin:
    """For EmployeeAdmin: the directory search above the add form."""

    def add_view(self, request, form_url="", extra_context=None):
        if self.has_add_permission(request):
            extra_context = {**(extra_context or {}), "directory_pick": self.directory_pick_context(request)}
        return super().add_view(request, form_url, extra_context)

    def directory_pick_context(self, request) -> dict:
        kept = {name: request.GET[name] for name in KEPT_PARAMETERS if name in request.GET}
        context = {
            "configured": _directory_configured(),
            "error": "",
            "matches": [],
            "truncated": False,
            "searched": False,
            "kept": kept,
            "picked": request.method == "GET" and PICKED_PARAMETER in request.GET,
            "picked_dn": request.GET.get("directory_dn", ""),
        }
        if request.method != "GET" or SEARCH_PARAMETER not in request.GET or not context["configured"]:
            context["form"] = DirectorySearchForm()
            return context
        form = context["form"] = DirectorySearchForm(request.GET)
        if not form.is_valid():
            return context
        try:
            found = directory_people_search(text=form.cleaned_data["find"], limit=RESULT_LIMIT)
        except DirectoryNotConfigured:  # settings changed under us
            context["configured"] = False
            return context
        except DirectorySearchRefused as exc:
            form.add_error("find", exc.message)
            return context
        except PortalError as exc:
            # Directory down, bind refused, broken settings: said on the page, never an error page.
            logger.warning("Directory search on the employee add page failed: %s", exc.message)
            context["error"] = error_message(exc)
            return context
        in_portal = directory_people_in_portal(found.people)
        context.update(
            searched=True,
            truncated=found.truncated,
            matches=[self._directory_match(person, in_portal.get(person.dn), kept) for person in found.people],
        )
        return context

    def _directory_match(self, person: DirectoryPerson, known, kept: dict) -> DirectoryMatch:
        if known is not None and known.employee is not None:
            return DirectoryMatch(person=person, reason="Already an employee", employee=known.employee)
        if not person.mail:
            return DirectoryMatch(person=person, reason="No mailbox in the directory entry")
        if domain_error := mail_domain_error(person.mail):
            return DirectoryMatch(person=person, reason=domain_error)
        existing = known.existing_account if known is not None else ""
        values = {
            "given_name": person.given_name,
            "surname": person.surname,
            "mail": person.mail,
            "department": person.department,
            "directory_dn": person.dn,
            # An account of that name exists already: linking it is typed, never picked.
            "username": "" if existing else person.login_name,
            PICKED_PARAMETER: "1",
            **kept,
        }
        url = reverse("admin:enrollment_employee_add") + "?" + urlencode(values)
        return DirectoryMatch(person=person, pick_url=url, existing_account=existing)
