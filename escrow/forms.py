"""Forms of the key pages: the PKCS#12 download (issued and recovered keys) and asking for your own key back."""

from django import forms

from enrollment.pki.pkcs12 import MIN_PASSPHRASE_LENGTH, PKCS12_FORMATS

ALL_KEYS = "all"


class Pkcs12DownloadForm(forms.Form):
    passphrase = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        min_length=MIN_PASSPHRASE_LENGTH,
        strip=False,
        help_text=f"At least {MIN_PASSPHRASE_LENGTH} characters. It protects the file; you type it when you import it. "
        "KMail and Kleopatra (gpgsm) read at most 31.",
    )
    passphrase_again = forms.CharField(
        label="Passphrase (again)", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False
    )
    format = forms.ChoiceField(choices=list(PKCS12_FORMATS.items()), initial="modern", widget=forms.RadioSelect)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("passphrase") and cleaned.get("passphrase") != cleaned.get("passphrase_again"):
            self.add_error("passphrase_again", "The two passphrases differ.")
        return cleaned


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
        # Dates and state first: what the employee recognizes; the serial's start tells two apart.
        choices = [
            (c.serial, f"{c.not_before:%Y-%m-%d} – {c.not_after:%Y-%m-%d}, {c.status} (serial {c.serial[:12]}…)")
            for c in certificates
        ]
        if len(choices) > 1:
            choices.append((ALL_KEYS, "All my escrowed keys (key history, to read old mail)"))
        self.fields["certificate"].choices = choices
