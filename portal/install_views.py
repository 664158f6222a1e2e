"""Install instructions, one page per mail client, and a chooser first (issue 14, finding 6).

Each client names the download to pick (PKCS#12 "Modern" or "Compatible", or the Apple
configuration profile), the step that makes it trust the organization's root CA where it needs
one, and what it cannot do with EC keys. Public pages: nothing here is secret, and people read
them before they log in.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.exceptions import PortalError
from enrollment import selectors
from enrollment.pki.pkcs12_clients import ClientAdvice

MODERN = "PKCS#12 “Modern”"
COMPATIBLE = "PKCS#12 “Compatible”"
MOBILECONFIG = "Apple configuration profile (.mobileconfig)"


@dataclass(frozen=True)
class MailClient:
    slug: str
    name: str
    platform: str
    download: str  # what to pick on the download page
    ec: str  # what the client does with EC (ECDSA/ECDH) keys; "" when nothing is known to fail
    admin_first: str = ""  # an organization administrator's step before employees can start

    @property
    def template(self) -> str:
        return f"portal/install/{self.slug}.html"


EXCHANGE_FIRST = (
    "Exchange Online: the CA certificates in the tenant's certificate collection and a CRL reachable from the internet."
)
GOOGLE_FIRST = "Google Workspace: S/MIME turned on, the root certificate uploaded in the Admin console."

CLIENTS: tuple[MailClient, ...] = (
    MailClient(
        "outlook-windows",
        "Outlook for Windows",
        "Windows 10/11",
        f"{MODERN} (Windows 10 1709 or later); {COMPATIBLE} for Windows Server 2016 and older",
        "Elliptic-curve S/MIME needs a recent Microsoft 365 Apps build; older Outlook versions (2016, 2019) may "
        "not sign or decrypt with EC keys. Not verified here: choose RSA.",
        EXCHANGE_FIRST + " (Exchange Online mailboxes only)",
    ),
    MailClient(
        "outlook-mac",
        "Outlook for Mac",
        "macOS",
        f"{COMPATIBLE} (imports on every macOS release; some releases refuse the Modern file as a wrong password)",
        "Not verified here: choose RSA.",
        EXCHANGE_FIRST + " (Exchange Online mailboxes only)",
    ),
    MailClient(
        "outlook-web",
        "Outlook on the web (Exchange Online)",
        "Windows with Microsoft Edge or Google Chrome",
        f"{MODERN}, installed in Windows first (as for Outlook for Windows)",
        "Not verified here: choose RSA.",
        EXCHANGE_FIRST,
    ),
    MailClient(
        "outlook-mobile",
        "Outlook for iOS and Android",
        "iPhone, iPad, Android",
        f"{COMPATIBLE}",
        "Not verified here: choose RSA.",
        EXCHANGE_FIRST,
    ),
    MailClient(
        "apple-mail",
        "Apple Mail",
        "macOS",
        f"{COMPATIBLE}, or the {MOBILECONFIG}",
        "",
    ),
    MailClient(
        "ios-mail",
        "iOS Mail",
        "iPhone, iPad",
        f"the {MOBILECONFIG} (it brings the root CA along); {COMPATIBLE} otherwise",
        "",
    ),
    MailClient(
        "samsung-email",
        "Samsung Email",
        "Android",
        f"{COMPATIBLE}",
        "Not verified here: choose RSA.",
    ),
    MailClient(
        "gmail",
        "Gmail (Google Workspace)",
        "Gmail on the web; the Gmail apps then use what you uploaded",
        f"{COMPATIBLE} or {MODERN} (which one Gmail's upload takes is not verified here: {COMPATIBLE} if in doubt)",
        "Google accepts P-256 and P-384 keys; RSA is the safe choice for the people you write to.",
        GOOGLE_FIRST,
    ),
    MailClient(
        "thunderbird",
        "Thunderbird",
        "Windows, macOS, Linux",
        f"{MODERN} (current Thunderbird reads {COMPATIBLE} too)",
        "",
    ),
    MailClient(
        "evolution",
        "Evolution",
        "Linux (GNOME)",
        f"{MODERN}",
        "Evolution (NSS 3.87, Debian 12) cannot encrypt to EC recipients nor decrypt messages sent to an EC key: "
        "choose RSA.",
    ),
    MailClient(
        "kmail",
        "KMail and Kleopatra (gpgsm)",
        "Linux (KDE), Windows (Gpg4win)",
        f"{COMPATIBLE} (gpgsm 2.2 cannot read the Modern file: “pkcs5PBES2-params” error)",
        "gpgsm 2.2 (Debian 12, Ubuntu 22.04) cannot import an EC key from a PKCS#12 file, cannot encrypt to EC "
        "recipients, and cannot check a CRL signed by an ECDSA CA, so every certificate of an EC CA fails there, "
        "RSA ones included: choose RSA.",
    ),
)
CLIENTS_BY_SLUG = {client.slug: client for client in CLIENTS}

# The install page for the device a browser names (enrollment.pki.pkcs12_clients); a device with
# several usual clients (Linux, an unknown one) gets the chooser.
_PAGE_FOR_DEVICE = {
    "apple-ios": "ios-mail",
    "apple-macos": "apple-mail",
    "windows": "outlook-windows",
    "windows-old": "outlook-windows",
    "android": "outlook-mobile",
    "thunderbird": "thunderbird",
}


def install_page_for(advice: ClientAdvice) -> MailClient | None:
    """The mail client whose instructions suit the device `advice` is for, or None: let the employee choose."""
    return CLIENTS_BY_SLUG.get(_PAGE_FOR_DEVICE.get(advice.key, ""))


def _ca_context() -> dict:
    """The root CA employees trust (link and fingerprint to compare), or nothing before `init_ca`."""
    try:
        issuing = selectors.issuing_ca()
    except PortalError:
        return {"root_ca": None, "root_fingerprint": "", "single_tier": False}
    chain = issuing.chain()
    root = chain[-1]
    fingerprint = root.certificate.fingerprint(hashes.SHA256()).hex().upper()
    return {
        "root_ca": root,
        "root_fingerprint": ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)),
        "single_tier": len(chain) < 2,
    }


@require_GET
def install_help(request):
    return render(request, "portal/install.html", {"clients": CLIENTS, **_ca_context()})


@require_GET
def install_client(request, client: str):
    mail_client = CLIENTS_BY_SLUG.get(client)
    if mail_client is None:
        raise Http404("No instructions for this mail client")
    return render(
        request,
        mail_client.template,
        {"client": mail_client, "clients": CLIENTS, **_ca_context()},
    )
