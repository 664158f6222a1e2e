"""The limitations test_matrix_*.py assert are the ones the install pages state (issue 14)."""

from __future__ import annotations

import re

import pytest
from django.template.loader import get_template


def page_text(name: str) -> str:
    source = get_template(name).template.source
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", source))


@pytest.mark.parametrize(
    ("page", "statement"),
    [
        # test_matrix_nss.py: test_alice_encrypts_to_bob, test_bob_decrypts_what_openssl_encrypted_to_him
        (
            "portal/install.html",
            "Evolution (NSS 3.87) cannot encrypt to EC recipients nor decrypt messages sent to an EC key.",
        ),
        # test_matrix_gpgsm.py: test_import (EC), test_encrypt_and_decrypt, test_root_trust_then_crl_checks
        (
            "portal/install.html",
            "KMail and Kleopatra (gpgsm 2.2) cannot import an EC key from a PKCS#12 file nor "
            "encrypt to EC recipients, and cannot check the CRL of a CA with an ECDSA key.",
        ),
        # test_matrix_openssl.py: test_alice_encrypts_to_bob
        (
            "portal/install.html",
            "openssl smime (Mutt and scripts) cannot encrypt to EC recipients nor decrypt "
            "messages sent to an EC key; openssl cms can.",
        ),
        # test_matrix_openssl.py: test_validation_as_signer_and_recipient
        (
            "portal/install.html",
            "openssl verify -purpose smimeencrypt refuses an EC certificate (“unsuitable certificate purpose”",
        ),
        # test_matrix_gpgsm.py: test_import (modern)
        (
            "portal/install/kmail.html",
            "gpgsm 2.2 reads only the “Compatible” PKCS#12 file; with the “Modern” one it "
            'fails with encryptedData error at "pkcs5PBES2-params".',
        ),
        # test_matrix_nss.py: test_import_then_trust_the_root
        ("portal/install/thunderbird.html", "“issuer has been marked as not trusted”"),
        ("portal/install/evolution.html", "“issuer has been marked as not trusted”"),
        ("portal/install/kmail.html", "trustlist.txt"),
    ],
)
def test_the_install_page_states_the_limitation(page, statement):
    assert statement in page_text(page)
