import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from enrollment.pki import keys


def test_key_types_catalogue():
    assert keys.KEY_TYPES == {
        "rsa-3072": "RSA 3072",
        "rsa-4096": "RSA 4096",
        "ec-p256": "ECDSA P-256",
        "ec-p384": "ECDSA P-384",
    }


@pytest.mark.parametrize("key_type", sorted(keys.KEY_TYPES))
def test_generated_keys_have_the_requested_type(subscriber_keys, key_type):
    key = subscriber_keys[key_type]
    assert keys.key_type_of(key) == key_type
    assert keys.key_type_of(key.public_key()) == key_type
    if key_type.startswith("rsa"):
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.private_numbers().public_numbers.e == 65537


def test_ec_generation_is_fresh_and_typed():
    a, b = keys.generate_private_key("ec-p256"), keys.generate_private_key("ec-p256")
    assert isinstance(a, ec.EllipticCurvePrivateKey) and isinstance(a.curve, ec.SECP256R1)
    assert a.private_numbers().private_value != b.private_numbers().private_value


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-3072"])
def test_der_round_trip(subscriber_keys, key_type):
    key = subscriber_keys[key_type]
    der = keys.private_key_to_der(key)
    assert der[:1] == b"\x30"
    restored = keys.private_key_from_der(der)
    assert restored.private_numbers() == key.private_numbers()
    assert keys.private_key_to_der(restored) == der


def test_unknown_key_type():
    with pytest.raises(ValueError, match="unknown key type 'rsa-1024'"):
        keys.generate_private_key("rsa-1024")


def test_descriptive_key_types_outside_the_catalogue():
    assert keys.key_type_of(rsa.generate_private_key(65537, 2048)) == "rsa-2048"
    assert keys.key_type_of(ec.generate_private_key(ec.SECP521R1())) == "ec-p521"


def test_private_key_from_der_rejects_garbage():
    with pytest.raises(ValueError):
        keys.private_key_from_der(b"\x30\x03\x02\x01\x00")
