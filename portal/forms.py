from django import forms

from enrollment.pki.keys import KEY_TYPES
from enrollment.pki.profiles import CERTIFICATE_TYPES

# What each key type means for the mail clients (templates/portal/install.html, "Key types").
_EC_LIMITS = (
    "not usable in Evolution, KMail/Kleopatra (gpgsm 2.2) or openssl smime; in Outlook for Windows only on "
    "recent builds"
)
KEY_TYPE_LABELS: dict[str, str] = {
    "rsa-3072": "RSA 3072 (recommended): works in every mail client",
    "rsa-4096": "RSA 4096: works in every mail client",
    "ec-p256": f"ECDSA P-256: {_EC_LIMITS}",
    "ec-p384": f"ECDSA P-384: {_EC_LIMITS}",
}


class CertificateRequestForm(forms.Form):
    key_type = forms.ChoiceField(
        choices=[(key, KEY_TYPE_LABELS.get(key, label)) for key, label in KEY_TYPES.items()],
        initial="rsa-3072",
        help_text="RSA unless you know that you and everyone who writes to you use clients that handle EC keys: "
        "senders must encrypt to your key too.",
    )
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
