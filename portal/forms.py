from django import forms

from enrollment.pki.keys import KEY_TYPES
from enrollment.pki.pkcs12 import MIN_PASSPHRASE_LENGTH, PKCS12_FORMATS
from enrollment.pki.profiles import CERTIFICATE_TYPES


class CertificateRequestForm(forms.Form):
    key_type = forms.ChoiceField(choices=list(KEY_TYPES.items()), initial="rsa-3072")
    certificate_type = forms.ChoiceField(
        choices=list(CERTIFICATE_TYPES.items()),
        initial="sponsor-strict",
        help_text="Sponsor-validated names you and the organization; mailbox-validated names only your address.",
    )


class Pkcs12DownloadForm(forms.Form):
    passphrase = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        min_length=MIN_PASSPHRASE_LENGTH,
        strip=False,
        help_text=f"At least {MIN_PASSPHRASE_LENGTH} characters. It protects the file; you type it when you import it.",
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


class RevokeOwnForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[
            ("key_compromise", "My key is lost or someone else may have it"),
            ("superseded", "I no longer use this certificate"),
        ],
    )
    confirm = forms.BooleanField(label="I understand that revocation is final.")
