"""How serial numbers are written: lower-case hex without separators or leading zeros.

People paste serials in other shapes: `openssl x509 -serial` prints upper case padded to
whole bytes (``0F17FC…``), browsers and `certutil` separate bytes with colons or spaces.
"""

from __future__ import annotations


def serial_text(serial_number: int) -> str:
    return format(serial_number, "x")


def compact_hex(text: str) -> str:
    """Hex as people paste it (colons, spaces, either case) as lower case without separators."""
    return "".join((text or "").split()).lower().replace(":", "")


def normalize_serial(text: str) -> str:
    """The stored form of a serial typed in any of the usual shapes; other text comes back cleaned only."""
    cleaned = compact_hex(text)
    if cleaned.startswith("0x"):
        cleaned = cleaned[2:]
    if cleaned and all(c in "0123456789abcdef" for c in cleaned):
        return cleaned.lstrip("0") or "0"
    return cleaned
