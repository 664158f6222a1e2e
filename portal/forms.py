from django import forms

from enrollment.pki.keys import KEY_TYPES
from enrollment.pki.profiles import CERTIFICATE_TYPES


class CertificateRequestForm(forms.Form):
    key_type = forms.ChoiceField(choices=list(KEY_TYPES.items()), initial="rsa-3072")
    certificate_type = forms.ChoiceField(
        choices=list(CERTIFICATE_TYPES.items()),
        initial="sponsor-strict",
        help_text="Sponsor-validated names you and the organization; mailbox-validated names only your address.",
    )


class RevokeOwnForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[
            ("key_compromise", "My key is lost or someone else may have it"),
            ("superseded", "I no longer use this certificate"),
        ],
    )
    confirm = forms.BooleanField(label="I understand that revocation is final.")


class ReauthenticateForm(forms.Form):
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), strip=False)
