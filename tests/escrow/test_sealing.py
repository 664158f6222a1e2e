import pytest

from escrow import sealing

KEK = sealing.derive_kek("a long random pickup secret from the environment")
AD = b"certificate:0x1234abcd"


def test_round_trip():
    plaintext = b"\x30\x82 PKCS#8 bytes \x00\xff"
    sealed = sealing.seal(plaintext=plaintext, kek=KEK, associated_data=AD)
    assert sealed[0] == sealing.VERSION
    assert len(sealed) == 1 + 12 + len(plaintext) + 16
    assert plaintext not in sealed
    assert sealing.unseal(sealed=sealed, kek=KEK, associated_data=AD) == plaintext


def test_nonces_are_random():
    a = sealing.seal(plaintext=b"same", kek=KEK, associated_data=AD)
    b = sealing.seal(plaintext=b"same", kek=KEK, associated_data=AD)
    assert a[1:13] != b[1:13] and a != b


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_tampering_is_detected(position):
    sealed = bytearray(sealing.seal(plaintext=b"secret key", kek=KEK, associated_data=AD))
    sealed[position] ^= 0x01
    with pytest.raises(sealing.SealError):
        sealing.unseal(sealed=bytes(sealed), kek=KEK, associated_data=AD)


def test_truncation_is_detected():
    sealed = sealing.seal(plaintext=b"secret key", kek=KEK, associated_data=AD)
    for length in (0, 1, 13, 28, len(sealed) - 1):
        with pytest.raises(sealing.SealError):
            sealing.unseal(sealed=sealed[:length], kek=KEK, associated_data=AD)


def test_wrong_kek():
    sealed = sealing.seal(plaintext=b"secret key", kek=KEK, associated_data=AD)
    with pytest.raises(sealing.SealError, match="wrong key"):
        sealing.unseal(sealed=sealed, kek=sealing.derive_kek("another secret"), associated_data=AD)


def test_wrong_associated_data():
    sealed = sealing.seal(plaintext=b"secret key", kek=KEK, associated_data=AD)
    with pytest.raises(sealing.SealError):
        sealing.unseal(sealed=sealed, kek=KEK, associated_data=b"certificate:0x1234abce")


def test_derive_kek():
    assert len(KEK) == 32
    assert sealing.derive_kek("a long random pickup secret from the environment") == KEK
    assert sealing.derive_kek(b"a long random pickup secret from the environment") == KEK
    assert sealing.derive_kek("a long random pickup secret from the environment!") != KEK
    with pytest.raises(ValueError):
        sealing.derive_kek("")


def test_kek_must_be_32_bytes():
    with pytest.raises(ValueError, match="32 bytes"):
        sealing.seal(plaintext=b"x", kek=b"short", associated_data=AD)
    with pytest.raises(ValueError, match="32 bytes"):
        sealing.unseal(sealed=b"\x01" + b"\x00" * 40, kek=b"short", associated_data=AD)
