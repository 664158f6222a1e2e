"""Names that pki.names accepts make certificates pkilint accepts, as UTF8String (property-based)."""

from __future__ import annotations

import pytest
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from enrollment.pki import lint, names, profiles

# Letters of several scripts, marks, spacing and punctuation people's names have, and the hostile
# characters names refuses (those examples are thrown away: they never reach the builder).
name_char = st.one_of(
    st.characters(categories=["L", "M", "Nd", "Pd", "Zs"]),
    st.characters(exclude_categories=()),
    st.sampled_from("\u00e9\u00fc\u0430\u0435\u03bb\u5c71\u305f\u202e\u200b\r\t"),
)
name_text = st.text(name_char, min_size=1, max_size=28)


def accepted(value: str) -> str:
    try:
        cleaned = names.name_clean(value)
    except names.NameRefused:
        assume(False)
    assume(cleaned.strip())
    return cleaned


@given(given_name=name_text, surname=name_text)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_accepted_names_are_utf8strings_and_pass_pkilint(ec_pki, subscriber_keys, subscriber_builder, given_name, surname):
    given_name, surname = accepted(given_name), accepted(surname)
    try:
        builder = subscriber_builder(
            ec_pki,
            subscriber_keys["ec-p256"].public_key(),
            subscriber=profiles.Subscriber("jane.doe@example.com", given_name, surname),
        )
    except ValueError as refused:  # too long as a commonName, say: refused readably
        assert str(refused).isprintable()
        return
    certificate = ec_pki.backend.sign_certificate(builder)

    for oid in (NameOID.GIVEN_NAME, NameOID.SURNAME, NameOID.COMMON_NAME):
        (attribute,) = certificate.subject.get_attributes_for_oid(oid)
        assert attribute._type == _ASN1Type.UTF8String
    (given_attribute,) = certificate.subject.get_attributes_for_oid(NameOID.GIVEN_NAME)
    assert given_attribute.value == given_name.strip()
    findings = lint.findings_at_or_above(lint.lint_smime_certificate(certificate), "WARNING")
    assert findings == [], (given_name, surname, findings)


@pytest.mark.parametrize(
    "given_name, surname",
    [("Jürgen", "Müller"), ("Александр", "Пушкин"), ("P\u0430ypal", "Doe"), ("太郎", "山田"), ("Ελένη", "Παπαδοπούλου")],
)
def test_non_ascii_names_issue_as_utf8string_and_pass_pkilint(ec_pki, subscriber_keys, subscriber_builder, given_name, surname):
    certificate = ec_pki.backend.sign_certificate(
        subscriber_builder(
            ec_pki,
            subscriber_keys["ec-p256"].public_key(),
            subscriber=profiles.Subscriber("jane.doe@example.com", given_name, surname),
        )
    )
    (attribute,) = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert attribute._type == _ASN1Type.UTF8String and attribute.value == f"{given_name} {surname}"
    assert lint.findings_at_or_above(lint.lint_smime_certificate(certificate), "WARNING") == []


def test_an_idn_mailbox_issues_as_a_labels_and_passes_pkilint(ec_pki, subscriber_keys, subscriber_builder):
    mailbox = names.mailbox_clean("jane@münchen.de")
    for certificate_type in profiles.CERTIFICATE_TYPES:
        certificate = ec_pki.backend.sign_certificate(
            subscriber_builder(
                ec_pki,
                subscriber_keys["ec-p256"].public_key(),
                certificate_type,
                subscriber=profiles.Subscriber(mailbox, "Jane", "Doe"),
            )
        )
        (email,) = certificate.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
        assert email.value == "jane@xn--mnchen-3ya.de" and email._type == _ASN1Type.IA5String
        assert lint.findings_at_or_above(lint.lint_smime_certificate(certificate), "WARNING") == []
