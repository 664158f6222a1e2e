"""Which file each mail client imports: the download page's advice, from the browser's User-Agent.

Pure (no Django). The facts behind each entry, checked here where an engine is on this
machine (tests/clients/) and otherwise from the vendors' and users' public reports:

- gpgsm 2.2 (KMail, Kleopatra) cannot read PBES2 (AES) PKCS#12 at all
  (`encryptedData error at "pkcs5PBES2-params"`): Linux desktops get "compatible".
- Apple's importers (Keychain Access, iOS/iPadOS Settings, Apple Configurator) on many
  released versions accept only the SHA-1 MAC and 3DES and then report a *wrong password*
  for the modern file; which releases are fixed is not verified here, so every Apple
  device gets "compatible" (and iPhone/iPad the configuration profile, which carries it).
- Windows 10 1709+/11 and Server 2019+ import AES-256/SHA-256; Windows 8.1/Server 2016 and
  older do not.
- Android's certificate installer on older releases and vendor mail apps (Samsung Email)
  reject the modern file; "compatible" imports on every release.
- NSS (Thunderbird, Firefox, Evolution) and OpenSSL 3 read both.

"compatible" imports in every client above, so an unknown browser gets it too: a file that
imports is worth more than the stronger file encryption (the passphrase protects both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ClientAdvice:
    key: str
    name: str
    fmt: str  # "compatible", "modern" or "mobileconfig" (Apple configuration profile)
    explanation: str


CLIENT_ADVICE: tuple[ClientAdvice, ...] = (
    ClientAdvice(
        "apple-ios",
        "iPhone or iPad (iOS/iPadOS Mail, Outlook for iOS)",
        "mobileconfig",
        "The configuration profile installs your key and certificate and the root CA in one step "
        "(Settings → Profile Downloaded → Install). Its PKCS#12 is the compatible one, the only one "
        "every iOS release reads. Then turn on S/MIME in Settings → Mail → Accounts → Advanced.",
    ),
    ClientAdvice(
        "apple-macos",
        "Mac (Apple Mail, Outlook for Mac)",
        "compatible",
        "Open the compatible file in Keychain Access (login keychain). Several macOS releases accept "
        "only its SHA-1 integrity check and call the modern file's passphrase wrong. The configuration "
        "profile works too (System Settings → Privacy & Security → Profiles) and also adds the root CA; "
        "on an iPad, which reports itself as a Mac, use the profile.",
    ),
    ClientAdvice(
        "windows",
        "Windows 10/11 (Outlook, Windows Mail)",
        "modern",
        "Windows 10 (1709 or later) and 11 import the modern file (AES-256, SHA-256): double-click it, "
        "store it under Current User. On Windows 8.1, Windows Server 2016 or older take the compatible file.",
    ),
    ClientAdvice(
        "windows-old",
        "Windows 8.1 or older, Windows Server 2016",
        "compatible",
        "These Windows releases cannot read the modern file (they report a wrong password); the "
        "compatible file imports.",
    ),
    ClientAdvice(
        "android",
        "Android (Samsung Email, Outlook for Android, Nine)",
        "compatible",
        "Install the compatible file under Settings → Security → Encryption & credentials → Install a "
        "certificate → VPN & app user certificate. Older Android releases and vendor mail apps reject "
        "the modern file.",
    ),
    ClientAdvice(
        "linux",
        "Linux (KMail/Kleopatra, Evolution, Thunderbird)",
        "compatible",
        "KMail and Kleopatra import through gpgsm, which cannot read the modern file at all; Evolution "
        "and Thunderbird (NSS) read both, so the compatible file suits every Linux mail client.",
    ),
    ClientAdvice(
        "thunderbird",
        "Thunderbird (any system)",
        "modern",
        "Thunderbird (NSS) reads both files: Settings → Privacy & Security → Manage Certificates → "
        "Your Certificates → Import. It keeps its own certificate store, apart from the system's.",
    ),
    ClientAdvice(
        "other",
        "Other or unknown device",
        "compatible",
        "The compatible file imports in every client we know of; the modern file only in Windows "
        "10/11, Thunderbird/Evolution (NSS) and OpenSSL-based clients.",
    ),
)

_BY_KEY = {advice.key: advice for advice in CLIENT_ADVICE}


def client_advice(key: str) -> ClientAdvice:
    return _BY_KEY[key]


_WINDOWS_NT = re.compile(r"Windows NT (\d+)\.")


def client_from_user_agent(user_agent: str) -> ClientAdvice:
    """The advice for the device a browser's User-Agent names; `other` when it names none we know.

    The order matters: iOS says "like Mac OS X", Android says "Linux", Thunderbird names its system.
    """
    ua = user_agent or ""
    if "Thunderbird/" in ua:
        return _BY_KEY["thunderbird"]
    if re.search(r"\b(iPhone|iPad|iPod)\b", ua):
        return _BY_KEY["apple-ios"]
    if "Android" in ua:
        return _BY_KEY["android"]
    if "Macintosh" in ua or "Mac OS X" in ua:
        return _BY_KEY["apple-macos"]
    if "CrOS" in ua:
        return _BY_KEY["other"]
    windows = _WINDOWS_NT.search(ua)
    if windows:
        return _BY_KEY["windows" if int(windows.group(1)) >= 10 else "windows-old"]
    if "Linux" in ua or "X11" in ua:
        return _BY_KEY["linux"]
    return _BY_KEY["other"]
