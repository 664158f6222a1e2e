"""Names and mailboxes as certificates carry them (enrollment/pki/names.py): pure, no database."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enrollment.pki import names, profiles

# What the hostile-input run found accepted (issue 12, finding 4), and a few more of each kind.
HOSTILE = {
    "\u202e": "U+202E RIGHT-TO-LEFT OVERRIDE",
    "\u202d": "U+202D LEFT-TO-RIGHT OVERRIDE",
    "\u2067": "U+2067 RIGHT-TO-LEFT ISOLATE",
    "\u200f": "U+200F RIGHT-TO-LEFT MARK",
    "\u061c": "U+061C ARABIC LETTER MARK",
    "\u200b": "U+200B ZERO WIDTH SPACE",
    "\u200d": "U+200D ZERO WIDTH JOINER",
    "\u2060": "U+2060 WORD JOINER",
    "\ufeff": "U+FEFF ZERO WIDTH NO-BREAK SPACE",
    "\r": "U+000D CARRIAGE RETURN (CR)",
    "\n": "U+000A LINE FEED (LF)",
    "\t": "U+0009 CHARACTER TABULATION (TAB)",
    "\x07": "U+0007 ALERT (BEL)",
    "\x00": "U+0000 NULL (NUL)",
    "\x7f": "U+007F DELETE (DEL)",
    "\x85": "U+0085 NEXT LINE (NEL)",
    "\x9b": "U+009B CONTROL SEQUENCE INTRODUCER (CSI)",
    "\u2028": "U+2028 LINE SEPARATOR",
    "\u2029": "U+2029 PARAGRAPH SEPARATOR",
    "\ue000": "U+E000",  # private use: no name
    "\U000f0000": "U+F0000",
    "\ud800": "U+D800",  # a lone surrogate
    "\u0378": "U+0378",  # unassigned
    "\U0010ffff": "U+10FFFF",  # a noncharacter (Cn)
    "\u3164": "U+3164 HANGUL FILLER",
    "\u034f": "U+034F COMBINING GRAPHEME JOINER",
    "\ufe0f": "U+FE0F VARIATION SELECTOR-16",
}


def assert_readable(message: str) -> None:
    """A message a person can read anywhere: no control or invisible character, nothing unencodable."""
    assert message.isascii() and message.isprintable(), repr(message)
    message.encode("utf-8")


@pytest.mark.parametrize("char, label", sorted(HOSTILE.items()))
def test_a_refused_character_is_named_by_code_point_and_name_never_echoed(char, label):
    with pytest.raises(names.NameRefused) as refused:
        names.name_clean(f"Mal{char}lory", what="surname")

    message = str(refused.value)
    assert message.startswith(f"The surname contains {label} at position 4, ")
    assert char not in message
    assert_readable(message)


def test_the_message_counts_further_refused_characters():
    with pytest.raises(names.NameRefused, match=r"U\+000D CARRIAGE RETURN \(CR\) at position 4.*and 2 more characters"):
        names.name_clean("Bob\r\nSmith\u202e")


@pytest.mark.parametrize(
    "value",
    ["Jürgen", "Müller-Lüdenscheidt", "O'Brien", "Ελένη", "Александр", "山田", "やまだ たろう", "김민준", "José María"],
)
def test_real_names_in_any_one_script_are_accepted_without_a_warning(value):
    assert names.name_clean(value) == value
    assert names.script_warnings(value) == []


def test_names_are_nfc_normalized():
    decomposed = "Ju\u0308rgen"  # u + COMBINING DIAERESIS
    assert names.name_clean(decomposed) == "J\u00fcrgen"
    assert names.escaped(names.name_clean(decomposed)) == "J<U+00FC>rgen"


def test_a_cyrillic_look_alike_in_a_latin_name_is_a_warning_with_the_character_named():
    value = "P\u0430ypal"  # CYRILLIC SMALL LETTER A
    assert names.name_clean(value) == value  # not refused: mixed scripts can be real

    (warning,) = names.script_warnings(value, what="surname")

    assert warning.startswith("The surname mixes scripts (Latin, Cyrillic): P<U+0430>ypal;")
    assert "U+0430 CYRILLIC SMALL LETTER A looks like Latin 'a'" in warning
    assert_readable(warning)


def test_a_whole_script_look_alike_is_a_warning():
    value = "\u0410\u0440\u0440\u0435"  # Арре: Cyrillic letters that all look Latin
    (warning,) = names.script_warnings(value)
    assert "written in Cyrillic, but every letter looks like a Latin one" in warning


def test_japanese_may_mix_han_and_kana_and_latin_uts39_highly_restrictive():
    assert names.script_warnings("山田タロウ and たろう") == []
    assert names.script_warnings("Ελένη Smith") != []  # Greek and Latin is not in the list


def test_full_width_letters_are_flagged():
    (warning,) = names.script_warnings("\uff2a\uff41\uff4e\uff45")  # Ｊａｎｅ
    assert "compatibility characters" in warning and "usually written Jane" in warning


def test_escaped_shows_every_non_ascii_character_and_the_angle_brackets_themselves():
    assert names.escaped("A<b>\u00e9") == "A<U+003C>b<U+003E><U+00E9>"


# --- Mailboxes ------------------------------------------------------------------------------


def test_an_idn_domain_becomes_a_labels():
    assert names.mailbox_clean("jane@münchen.de") == "jane@xn--mnchen-3ya.de"
    assert names.mailbox_clean("jane@MÜNCHEN.de") == "jane@xn--mnchen-3ya.de"  # UTS #46 maps case
    assert names.mailbox_clean("Jane.Doe@Example.ORG") == "Jane.Doe@example.org"


def test_a_non_ascii_local_part_is_refused_smtputf8_mailboxes_are_not_issued():
    with pytest.raises(names.NameRefused) as refused:
        names.mailbox_clean("jürgen@example.org")
    message = str(refused.value)
    assert "SmtpUTF8Mailbox, RFC 8398" in message and "j<U+00FC>rgen@example.org" in message
    assert_readable(message)


def test_an_invalid_idn_domain_is_refused_clearly():
    with pytest.raises(names.NameRefused, match="not a valid internationalized domain name"):
        names.mailbox_clean("jane@\u2603\u2603.example")  # snowmen: not IDNA 2008


def test_a_look_alike_domain_is_a_warning_for_the_approver():
    mailbox = names.mailbox_clean("j@\u0430pple.com")
    review = names.name_review(given_name="J", surname="Doe", mailbox=mailbox)
    assert review.escaped["mailbox"] == f"j@<U+0430>pple.com ({mailbox})"
    (warning,) = review.warnings
    assert warning.startswith("The mail domain mixes scripts (Cyrillic, Latin)")
    assert "the organization's own domain" in warning


def test_the_builder_refuses_what_names_refuses_for_rows_from_before():
    with pytest.raises(ValueError, match="U\\+202E RIGHT-TO-LEFT OVERRIDE"):
        profiles._subject(
            "sponsor-strict",
            profiles.Subscriber("jane@example.com", "Jane", "Doe\u202eevil"),
            "jane@example.com",
            profiles.Organization(name="Example", organization_identifier="NTRUS+CA-1", country="US"),
        )
    with pytest.raises(ValueError, match="SmtpUTF8Mailbox"):
        profiles.validate_mailbox("jürgen@example.org")
    with pytest.raises(ValueError, match="A-labels"):
        profiles.validate_mailbox("jane@münchen.de")


# --- Properties -----------------------------------------------------------------------------

# Every category (surrogates included), and the hostile characters more often than chance would.
any_char = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs"]),
    st.sampled_from(sorted(HOSTILE)),
    st.sampled_from("aAeé\u0430\u0435\u03bf\u00fc\u0308 -'."),
)
any_text = st.text(any_char, max_size=40)


@given(any_text)
@settings(max_examples=500, deadline=None)
def test_name_clean_raises_nothing_but_its_own_refusal_and_it_is_readable(value):
    try:
        cleaned = names.name_clean(value, what="given name")
    except names.NameRefused as refused:
        assert_readable(str(refused))
        assert any(names.name_problem(char) for char in value)
        return
    assert cleaned == unicodedata.normalize("NFC", cleaned)
    assert names.name_problem(cleaned) == ""
    # What the approver sees of an accepted name never fails and is plain ASCII.
    for text in [names.escaped(cleaned), *names.script_warnings(cleaned)]:
        assert_readable(text)


@given(any_text, st.text(any_char, max_size=20), st.text(any_char, max_size=20))
@settings(max_examples=300, deadline=None)
def test_mailbox_clean_raises_nothing_but_its_own_refusal(local, domain_label, tld):
    value = f"{local}@{domain_label}.{tld}"
    try:
        cleaned = names.mailbox_clean(value)
    except names.NameRefused as refused:
        assert_readable(str(refused))
        return
    assert cleaned.isascii()
    try:
        mailbox = profiles.validate_mailbox(cleaned)
    except ValueError as invalid:
        assert invalid.args  # the builder says why
        return
    review = names.name_review(mailbox=mailbox)
    for text in [*review.escaped.values(), *review.warnings]:
        assert_readable(text)


@pytest.mark.parametrize("value", ["-", ".", " : ", "&amp;", "Smith&lt;", "&#x41;"])
def test_placeholders_and_html_references_are_refused_as_pkilint_would(value):
    with pytest.raises(names.NameRefused) as refused:
        names.name_clean(value, what="surname")
    assert_readable(str(refused.value))
    assert names.name_clean("Smith & Sons") == "Smith & Sons"
