"""The recovery admin's forms: pick a certificate, an employee or a recipient by name, never by id.

"Request a key recovery" (the administrators' recoveries and the auditors' legal holds) names
what to recover with searchable selects (Django's select2 autocomplete) that show people as
"Name <mail>" and certificates with their serial and validity. The choices come from the
picker endpoint of the recovery admin (`pickers_search`), open to those who may request a
recovery; the service still decides whether this request is allowed.
"""

from __future__ import annotations

from django import forms
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.urls import reverse

from enrollment.models import Certificate, Employee
from enrollment.pki.serials import normalize_serial

from .models import RecoveryRequest

PICKER_PAGE = 20
MAX_ID_DIGITS = 18  # a bigint primary key: a longer "id" names nothing (and overflows PostgreSQL)


# --- What each picker offers, and how it reads -------------------------------------------------


def certificate_label(certificate: Certificate) -> str:
    employee = certificate.employee
    return (
        f"{employee.display_name} <{certificate.mailbox}> — serial {certificate.serial} "
        f"({certificate.get_status_display().lower()}, expires {certificate.not_after:%Y-%m-%d})"
    )


def employee_label(employee: Employee) -> str:
    return f"{employee.display_name} <{employee.mail}> ({employee.user.get_username()})"


def user_label(user) -> str:
    employee = getattr(user, "employee", None)  # the directory's names where the account is an employee's
    name = (employee.display_name if employee else "") or user.get_full_name() or user.get_username()
    return f"{name} <{user.email}> ({user.get_username()})" if user.email else f"{name} ({user.get_username()})"


def _escrowed_certificates() -> QuerySet[Certificate]:
    # Only keys that can be recovered: a signing key was never escrowed.
    return (
        Certificate.objects.filter(escrow__isnull=False)
        .select_related("employee__user")
        .order_by("employee__surname", "employee__given_name", "-not_before", "pk")
    )


def _employees_with_escrow() -> QuerySet[Employee]:
    return (
        Employee.objects.filter(pk__in=Certificate.objects.filter(escrow__isnull=False).values("employee"))
        .select_related("user")
        .order_by("surname", "given_name", "pk")
    )


def _active_users() -> QuerySet:
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .select_related("employee")
        .order_by("employee__surname", "last_name", "first_name", "username")
    )


def _words_match(queryset: QuerySet, term: str, fields: list[str]) -> QuerySet:
    for word in term.split()[:5]:
        condition = Q()
        for field in fields:
            condition |= Q(**{f"{field}__icontains": word})
        serial = normalize_serial(word)
        if serial and "serial" in fields:
            condition |= Q(serial__startswith=serial)
        queryset = queryset.filter(condition)
    return queryset


PICKERS = {
    # field name: (choices, searched fields, label)
    "certificate": (
        _escrowed_certificates,
        ["serial", "mailbox", "employee__given_name", "employee__surname"],
        certificate_label,
    ),
    "employee": (_employees_with_escrow, ["mail", "given_name", "surname", "user__username"], employee_label),
    "recipient": (
        _active_users,
        ["username", "email", "first_name", "last_name", "employee__given_name", "employee__surname"],
        user_label,
    ),
}


def pickers_search(*, kind: str, term: str, page: int) -> dict | None:
    """One page of a picker's choices matching `term`, as select2 reads them (None: no such picker)."""
    if kind not in PICKERS:
        return None
    choices, fields, label = PICKERS[kind]
    start = (max(page, 1) - 1) * PICKER_PAGE
    found = list(_words_match(choices(), term[:100], fields)[start : start + PICKER_PAGE + 1])
    return {
        "results": [{"id": str(obj.pk), "text": label(obj)} for obj in found[:PICKER_PAGE]],
        "pagination": {"more": len(found) > PICKER_PAGE},
    }


# --- Widgets and fields ---------------------------------------------------------------------------


class PickerSelect(AutocompleteSelect):
    """Django's autocomplete select, asking the recovery admin's picker instead of the remote model's admin
    (which would offer every certificate, escrowed or not, by its bare serial)."""

    def __init__(self, *, kind: str, admin_site):
        super().__init__(RecoveryRequest._meta.get_field(kind), admin_site)
        self.kind = kind

    def get_url(self):
        return reverse(f"{self.admin_site.name}:escrow_recoveryrequest_picker", args=[self.kind])

    def optgroups(self, name, value, attr=None):
        # A tampered value ("abc", 30 digits) re-shown after a form error must not reach the query.
        value = [v for v in value if str(v).isdigit() and len(str(v)) <= MAX_ID_DIGITS]
        return super().optgroups(name, value, attr)


class PickerField(forms.ModelChoiceField):
    def __init__(self, kind: str, **kwargs):
        self.kind = kind
        choices, _fields, self.label_function = PICKERS[kind]
        super().__init__(queryset=choices(), required=False, **kwargs)

    def label_from_instance(self, obj) -> str:
        return self.label_function(obj)

    def to_python(self, value):
        if value not in self.empty_values and not (str(value).isdigit() and len(str(value)) <= MAX_ID_DIGITS):
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class RequestRecoveryForm(forms.Form):
    certificate = PickerField(
        "certificate",
        help_text="One escrowed key: search by name, mailbox or serial. Or leave it empty and pick an employee.",
    )
    employee = PickerField("employee", help_text="All of the employee's escrowed keys (their key history).")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    purpose = forms.ChoiceField(choices=[("", "(by your role)"), *RecoveryRequest.Purpose.choices], required=False)
    recipient = PickerField(
        "recipient",
        help_text="Who receives the keys (default: the owner; for legal hold always you).",
    )

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        for name in PICKERS:
            self.fields[name].widget = PickerSelect(kind=name, admin_site=admin_site)
            self.fields[name].widget.choices = self.fields[name].choices

    def service_arguments(self) -> dict:
        """What recovery_request_create takes: the service looks the names up again and decides."""
        data = self.cleaned_data
        return {
            "reason": data["reason"],
            "purpose": data["purpose"],
            "serial": data["certificate"].serial if data["certificate"] else "",
            "employee_username": data["employee"].user.get_username() if data["employee"] else "",
            "recipient_username": data["recipient"].get_username() if data["recipient"] else "",
        }


class DecisionCommentForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, required=False)


class RejectCommentForm(forms.Form):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, help_text="Why the recovery is rejected."
    )


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, help_text="Why the recovery is withdrawn."
    )


class CompleteRecoveryForm(forms.Form):
    """The agent's PKCS#12 and passphrase; the file may be the one kept from the last try (admin_uploads)."""

    agent_pkcs12 = forms.FileField(
        label="Agent PKCS#12",
        help_text="Your key recovery agent file (.p12), used in memory for this request only.",
    )
    passphrase = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "off"}), strip=False)

    def __init__(self, *args, file_kept: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if file_kept:
            self.file_kept()

    def file_kept(self) -> None:
        """No file needed (nor `required` in the page: the browser would insist on one): the kept one serves."""
        field = self.fields["agent_pkcs12"]
        field.required = False
        field.help_text = (
            "Your file from the last try is kept (sealed, for a few minutes): choose one only to use another."
        )
