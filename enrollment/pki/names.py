"""Names and mailboxes as certificates carry them: normalized, refused, or flagged for the approver.

Pure (no Django). Three outcomes for a name:
- refused (`NameRefused`, a ValueError): a character that is never part of a person's name,
  named by code point and Unicode name, never echoed raw: controls (Cc: CR, LF, TAB, BEL, C1),
  format characters (Cf: bidirectional overrides and isolates, zero-width characters, the
  BOM), private use (Co), surrogates (Cs), unassigned code points (Cn), line and paragraph
  separators (Zl, Zp), and the other default-ignorable (invisible) code points of Unicode's
  DerivedCoreProperties (Hangul fillers, variation selectors, the combining grapheme joiner);
- accepted and NFC-normalized (a composed "ü", never "u" + U+0308), so one name has one
  encoding in the certificate, the database and the directory;
- accepted with a warning for the approver (`script_warnings`): scripts mixed beyond what
  UTS #39 "highly restrictive" allows, or a name in another script whose every letter looks
  like a Latin one. A warning, not a refusal: "Александр" is a real name. `escaped` renders a
  name with every non-ASCII character visible as <U+XXXX>.

Mailboxes (`mailbox_clean`): the local part stays ASCII (this CA issues no SmtpUTF8Mailbox,
RFC 8398: a non-ASCII local part is refused, saying so); an internationalized domain is
converted to A-labels (IDNA 2008 with the UTS #46 mapping), as RFC 5280 7.5 / RFC 9549
require in an rfc822Name, so the certificate's rfc822Name and emailAddress stay ASCII.

Script data: `confusable_homoglyphs` (Unicode's Scripts.txt and confusables.txt, UTS #39).
"""

from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass

import idna
from confusable_homoglyphs import categories, confusables

# General categories that never belong in a name (see the module docstring).
REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Co": "a private-use character",
    "Cs": "a surrogate code point (not a character)",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}

_BIDI_CONTROLS = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_ZERO_WIDTH = {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF}

# Default_Ignorable_Code_Point outside Cf and Cn (Unicode 15 DerivedCoreProperties.txt):
# Other_Default_Ignorable_Code_Point and the variation selectors. Invisible, so refused too.
_OTHER_IGNORABLE = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180D), (0x180F, 0x180F),
    (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF),
)

# Control characters have no Unicode name; these are their NameAliases.txt names (and abbreviations).
_C0 = (
    "NULL NUL|START OF HEADING SOH|START OF TEXT STX|END OF TEXT ETX|END OF TRANSMISSION EOT|ENQUIRY ENQ|"
    "ACKNOWLEDGE ACK|ALERT BEL|BACKSPACE BS|CHARACTER TABULATION TAB|LINE FEED LF|LINE TABULATION VT|"
    "FORM FEED FF|CARRIAGE RETURN CR|SHIFT OUT SO|SHIFT IN SI|DATA LINK ESCAPE DLE|DEVICE CONTROL ONE DC1|"
    "DEVICE CONTROL TWO DC2|DEVICE CONTROL THREE DC3|DEVICE CONTROL FOUR DC4|NEGATIVE ACKNOWLEDGE NAK|"
    "SYNCHRONOUS IDLE SYN|END OF TRANSMISSION BLOCK ETB|CANCEL CAN|END OF MEDIUM EM|SUBSTITUTE SUB|ESCAPE ESC|"
    "INFORMATION SEPARATOR FOUR FS|INFORMATION SEPARATOR THREE GS|INFORMATION SEPARATOR TWO RS|"
    "INFORMATION SEPARATOR ONE US"
)
_C1 = (
    "PADDING CHARACTER PAD|HIGH OCTET PRESET HOP|BREAK PERMITTED HERE BPH|NO BREAK HERE NBH|INDEX IND|"
    "NEXT LINE NEL|START OF SELECTED AREA SSA|END OF SELECTED AREA ESA|CHARACTER TABULATION SET HTS|"
    "CHARACTER TABULATION WITH JUSTIFICATION HTJ|LINE TABULATION SET VTS|PARTIAL LINE FORWARD PLD|"
    "PARTIAL LINE BACKWARD PLU|REVERSE LINE FEED RI|SINGLE SHIFT TWO SS2|SINGLE SHIFT THREE SS3|"
    "DEVICE CONTROL STRING DCS|PRIVATE USE ONE PU1|PRIVATE USE TWO PU2|SET TRANSMIT STATE STS|"
    "CANCEL CHARACTER CCH|MESSAGE WAITING MW|START OF GUARDED AREA SPA|END OF GUARDED AREA EPA|"
    "START OF STRING SOS|SINGLE GRAPHIC CHARACTER INTRODUCER SGC|SINGLE CHARACTER INTRODUCER SCI|"
    "CONTROL SEQUENCE INTRODUCER CSI|STRING TERMINATOR ST|OPERATING SYSTEM COMMAND OSC|PRIVACY MESSAGE PM|"
    "APPLICATION PROGRAM COMMAND APC"
)


def _alias_table() -> dict[int, str]:
    table = {}
    for start, names in ((0x00, _C0), (0x80, _C1)):
        for offset, entry in enumerate(names.split("|")):
            name, abbreviation = entry.rsplit(" ", 1)
            table[start + offset] = f"{name} ({abbreviation})"
    table[0x7F] = "DELETE (DEL)"
    return table


_CONTROL_NAMES = _alias_table()

# UTS #39 5.2 "highly restrictive": one script, or Latin with one of these CJK combinations.
_HIGHLY_RESTRICTIVE = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
_NO_SCRIPT = {"COMMON", "INHERITED"}


class NameRefused(ValueError):
    """A name or mailbox that no certificate may carry; the message is safe to show as it is."""


def character_label(char: str) -> str:
    """'U+202E RIGHT-TO-LEFT OVERRIDE': a character named without showing it."""
    code_point = ord(char)
    name = _CONTROL_NAMES.get(code_point) or unicodedata.name(char, "")
    return f"U+{code_point:04X} {name}".rstrip()


def _is_other_ignorable(code_point: int) -> bool:
    return any(low <= code_point <= high for low, high in _OTHER_IGNORABLE)


def _why_refused(char: str) -> str:
    """Why `char` may not be in a name, or ""."""
    category = unicodedata.category(char)
    code_point = ord(char)
    if category == "Cf":
        if code_point in _BIDI_CONTROLS:
            return "a bidirectional control character (it reorders the text around it)"
        if code_point == 0xFEFF:
            return "a byte order mark (an invisible zero-width no-break space)"
        if code_point in _ZERO_WIDTH:
            return "an invisible zero-width character"
    if category in REFUSED_CATEGORIES:
        return REFUSED_CATEGORIES[category]
    if _is_other_ignorable(code_point):
        return "an invisible (default-ignorable) character"
    return ""


def name_problem(value: str, *, what: str = "name") -> str:
    """Why `value` may not be in a certificate ("" when it may); names the first bad character.

    Beyond the characters: a value with no letter or digit ("-", ".": SBR 7.1.4.2 forbids such
    placeholders, pkilint's cabf.insignificant_attribute_value_present) and an HTML character
    reference ("&amp;", pkilint's cabf.name.attribute_value_contains_html_entity).
    """
    refused = [(index, char, why) for index, char in enumerate(value) if (why := _why_refused(char))]
    if not refused:
        if value.strip() and not any(unicodedata.category(char)[0] in "LN" for char in value):
            return f"The {what} has no letter or digit: {escaped(value)} is not a name (leave it empty instead)."
        if html.unescape(value) != value:
            return (
                f"The {what} contains an HTML character reference (such as &amp;): {escaped(value)}; "
                "write the character itself."
            )
        return ""
    index, char, why = refused[0]
    more = len(refused) - 1
    others = f" (and {more} more character{'s' if more > 1 else ''} that may not be in a name)" if more else ""
    return f"The {what} contains {character_label(char)} at position {index + 1}, {why}{others}; remove it."


def name_clean(value: str, *, what: str = "name") -> str:
    """`value` in NFC, or NameRefused with a readable message (`what`: "given name", "surname", ...)."""
    if not isinstance(value, str):
        raise NameRefused(f"The {what} must be text.")
    # Refuse before normalizing: NFC keeps these characters anyway, and a lone surrogate
    # would make the message itself unencodable if it were echoed.
    if problem := name_problem(value, what=what):
        raise NameRefused(problem)
    return unicodedata.normalize("NFC", value)


def script_of(char: str) -> str:
    """The Unicode script of `char` as confusable_homoglyphs spells it: 'LATIN', 'CYRILLIC', 'COMMON', ..."""
    return categories.aliases_categories(char)[0]


def scripts(value: str) -> list[str]:
    """The scripts of the letters of `value`, in order of first use (Common and Inherited left out)."""
    seen: dict[str, None] = {}
    for char in value:
        script = script_of(char)
        if script not in _NO_SCRIPT and script != "Unknown":
            seen.setdefault(script, None)
    return list(seen)


def escaped(value: str) -> str:
    """`value` with every character other than printable ASCII shown as <U+XXXX> ('J<U+00FC>rgen')."""
    return "".join(
        char if " " <= char <= "~" and char not in "<>" else f"<U+{ord(char):04X}>" for char in value
    )


def _latin_look_alikes(value: str) -> list[str]:
    """'U+0430 CYRILLIC SMALL LETTER A looks like Latin a' for each non-Latin letter with a Latin homoglyph."""
    found = confusables.is_confusable(value, greedy=True, preferred_aliases=["latin"]) or []
    notes = {}
    for entry in found:
        char = entry["character"]
        if not unicodedata.category(char).startswith("L") or script_of(char) == "LATIN":
            continue
        glyphs = [h["c"] for h in entry["homoglyphs"] if h["c"].isascii() and h["c"].isalpha()]
        if glyphs:
            notes.setdefault(char, f"{character_label(char)} looks like Latin {glyphs[0]!r}")
    return list(notes.values())


def script_warnings(
    value: str, *, what: str = "name", check: str = "this is how the person's name is written"
) -> list[str]:
    """What an approver should check before a certificate names `value` (UTS #39); [] when nothing.

    Mixed scripts beyond UTS #39 "highly restrictive", a single non-Latin script whose every
    letter has a Latin look-alike (a whole-script confusable), and compatibility characters
    (full-width letters, ligatures: the text differs from its NFKC form).
    """
    warnings = []
    used = scripts(value)
    label = ", ".join(script.title() for script in used)
    if len(used) > 1 and not any(set(used) <= allowed for allowed in _HIGHLY_RESTRICTIVE):
        look_alikes = _latin_look_alikes(value)
        detail = f"; {'; '.join(look_alikes)}" if look_alikes else ""
        warnings.append(f"The {what} mixes scripts ({label}): {escaped(value)}{detail}. Make sure {check}.")
    elif len(used) == 1 and used != ["LATIN"]:
        letters = {char for char in value if unicodedata.category(char).startswith("L")}
        if letters and len(_latin_look_alikes(value)) == len(letters):
            warnings.append(
                f"The {what} is written in {label}, but every letter looks like a Latin one: {escaped(value)}. "
                f"Make sure {check}."
            )
    if unicodedata.normalize("NFKC", value) != value:
        warnings.append(
            f"The {what} has compatibility characters (full-width or styled letters, ligatures): {escaped(value)}, "
            f"usually written {escaped(unicodedata.normalize('NFKC', value))}. Make sure {check}."
        )
    return warnings


# --- Mailboxes ------------------------------------------------------------------------------


def _domain_a_labels(domain: str, mailbox: str) -> str:
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True, std3_rules=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        raise NameRefused(
            f"The domain of the e-mail address {escaped(mailbox)} is not a valid internationalized domain name "
            "(IDNA 2008); give it as it is registered, or in its xn-- (A-label) form."
        ) from None


def mailbox_clean(value: str) -> str:
    """`value` with its domain in lower-case A-labels (xn--...), or NameRefused.

    Only what certificates need decided here: no invisible or control characters, an ASCII
    local part (no SmtpUTF8Mailbox, RFC 8398), an IDN domain converted to A-labels. The
    syntax itself is the e-mail validator's (Django's, and profiles.validate_mailbox).
    """
    if not isinstance(value, str):
        raise NameRefused("The e-mail address must be text.")
    if problem := name_problem(value, what="e-mail address"):
        raise NameRefused(problem)
    value = unicodedata.normalize("NFC", value)
    if "@" not in value:
        return value  # not an address at all: the syntax check says so
    local, domain = value.rsplit("@", 1)
    if not local.isascii():
        raise NameRefused(
            f"The e-mail address {escaped(value)} has non-ASCII characters before the @: this CA does not issue "
            "certificates for internationalized mailboxes (SmtpUTF8Mailbox, RFC 8398); use an ASCII address."
        )
    return f"{local}@{_domain_a_labels(domain, value)}"


def mailbox_display(mailbox: str) -> str:
    """The mailbox with its A-label domain decoded for people, escaped ('jane@<U+0431>...'); the mailbox if not IDN."""
    local, _, domain = mailbox.rpartition("@")
    if "xn--" not in domain.lower():
        return escaped(mailbox)
    try:
        unicode_domain = idna.decode(domain)
    except (idna.IDNAError, UnicodeError, ValueError):
        return escaped(mailbox)
    return f"{escaped(local)}@{escaped(unicode_domain)} ({mailbox})"


# --- For the approver -----------------------------------------------------------------------


@dataclass(frozen=True)
class NameReview:
    """The names of a certificate as an approver should read them."""

    escaped: dict[str, str]  # field -> escaped rendering
    warnings: list[str]

    @property
    def has_non_ascii(self) -> bool:
        return any("<U+" in value for value in self.escaped.values())


def name_review(*, given_name: str = "", surname: str = "", mailbox: str = "", department: str = "") -> NameReview:
    """The escaped renderings and the script warnings of an employee's names (UTS #39)."""
    fields = {"given_name": given_name, "surname": surname, "department": department}
    what = {"given_name": "given name", "surname": "surname", "department": "department"}
    rendered = {name: escaped(value) for name, value in fields.items() if value}
    warnings = [warning for name, value in fields.items() for warning in script_warnings(value, what=what[name])]
    if mailbox:
        rendered["mailbox"] = mailbox_display(mailbox)
        domain = mailbox.rpartition("@")[2]
        if "xn--" in domain.lower():
            try:
                unicode_domain = idna.decode(domain)
            except (idna.IDNAError, UnicodeError, ValueError):
                unicode_domain = ""
            for label in unicode_domain.split("."):
                warnings.extend(
                    script_warnings(label, what="mail domain", check="this is the organization's own domain")
                )
    return NameReview(escaped=rendered, warnings=warnings)
