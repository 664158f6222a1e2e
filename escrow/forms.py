from django import forms

from portal.forms import Pkcs12DownloadForm

__all__ = ["OwnKeyRecoveryForm", "Pkcs12DownloadForm"]

ALL_KEYS = "all"


class OwnKeyRecoveryForm(forms.Form):
    """An employee asks for their own key(s) back."""

    certificate = forms.ChoiceField(label="Key")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        help_text="E.g. lost laptop, reinstalled mail client. Approvers read it.",
    )

    def __init__(self, *args, certificates=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [
            (c.serial, f"{c.serial} ({c.not_before:%Y-%m-%d} – {c.not_after:%Y-%m-%d}, {c.status})") for c in certificates
        ]
        if len(choices) > 1:
            choices.append((ALL_KEYS, "All my escrowed keys (key history, to read old mail)"))
        self.fields["certificate"].choices = choices
