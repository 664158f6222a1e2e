"""The "compatible" PKCS#12 file never hits gpgsm 2.2's key-derivation defect (KMail, Kleopatra).

gpgsm 2.2.40 refused about 1 compatible file in 60 with "possibly bad passphrase" for the right
passphrase: its PKCS#12 KDF drops a leading zero byte when it updates I (the salt and passphrase
blocks), and the salt is random. The vectors below are the salts of two files gpgsm refused
(`encryptedData error ... possibly bad passphrase` for the certificate bag of the first, `error at
"bag.data"` for the key bag of the second) and of their other bag, which it read.
"""

import pytest

from enrollment.pki import pkcs12

PASSPHRASE = "Tr0ub4dor & 3 staples"


@pytest.mark.parametrize(
    "salt, refused_by_gpgsm",
    [("80a7f0afcf588ce8", True), ("9bfa9fb1d57b71bb", True), ("a42777a7baf98643", False), ("5df9d39280a81075", False)],
)
def test_the_prediction_matches_what_gpgsm_did_with_these_salts(salt, refused_by_gpgsm):
    predicted = pkcs12.gpgsm_misderives_3des_key(salt=bytes.fromhex(salt), passphrase=PASSPHRASE, iterations=20000)
    assert predicted is refused_by_gpgsm


@pytest.fixture(scope="module")
def subscriber(ec_pki, subscriber_keys, subscriber_builder):
    key = subscriber_keys["ec-p256"]
    return key, ec_pki.backend.sign_certificate(subscriber_builder(ec_pki, key.public_key()))


def _bundle(subscriber, fmt: str) -> bytes:
    key, certificate = subscriber
    return pkcs12.pkcs12_bundle(
        key=key, certificate=certificate, chain=[], friendly_name="Jane", passphrase=PASSPHRASE, fmt=fmt
    )


def test_the_parameters_of_both_bags_are_found(subscriber):
    parameters = pkcs12.pbe_3des_parameters(_bundle(subscriber, "compatible"))
    assert len(parameters) == 2  # the certificate bag and the key bag
    assert all(len(salt) == 8 and iterations >= 2048 for salt, iterations in parameters)
    assert parameters[0][0] != parameters[1][0]
    assert pkcs12.pbe_3des_parameters(_bundle(subscriber, "modern")) == []


def test_a_file_gpgsm_would_misread_is_serialized_again_with_fresh_salts(subscriber, monkeypatch):
    serialized: list[bytes] = []
    real_serialize = pkcs12.pkcs12.serialize_key_and_certificates

    def recording_serialize(*args):
        serialized.append(real_serialize(*args))
        return serialized[-1]

    def first_file_is_misread(*, salt, passphrase, iterations):
        return salt in {s for s, _ in pkcs12.pbe_3des_parameters(serialized[0])}

    monkeypatch.setattr(pkcs12.pkcs12, "serialize_key_and_certificates", recording_serialize)
    monkeypatch.setattr(pkcs12, "gpgsm_misderives_3des_key", first_file_is_misread)

    data = _bundle(subscriber, "compatible")

    assert len(serialized) == 2
    assert data == serialized[1] != serialized[0]
    loaded = pkcs12.load_pkcs12(data, PASSPHRASE)
    assert loaded.cert.certificate == subscriber[1]


def test_the_modern_file_is_serialized_once(subscriber, monkeypatch):
    monkeypatch.setattr(pkcs12, "gpgsm_misderives_3des_key", lambda **_: pytest.fail("checked a modern file"))
    assert pkcs12.load_pkcs12(_bundle(subscriber, "modern"), PASSPHRASE).key is not None
