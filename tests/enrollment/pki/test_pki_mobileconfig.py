"""The pure download helpers: the Apple profile builder and the device advice (no database)."""

from __future__ import annotations

import plistlib
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from enrollment.pki import ca, keys, mobileconfig, pkcs12, profiles
from enrollment.pki.backends import InMemoryKeyBackend
from enrollment.pki.pkcs12_clients import CLIENT_ADVICE, client_from_user_agent

ORG = profiles.Organization("Example Widgets Inc.", "NTRUS+CA-1234567", "US")
PASSPHRASE = "a passphrase long enough"


@pytest.fixture(scope="module")
def material():
    root_key = keys.generate_private_key("ec-p256")
    root = ca.create_root_certificate(key=root_key, subject=ca.ca_subject(common_name="Profile Root", organization=ORG))
    issuing_key = keys.generate_private_key("ec-p256")
    issuing = InMemoryKeyBackend(root_key).sign_certificate(
        ca.issuing_ca_builder(
            public_key=issuing_key.public_key(),
            subject=ca.ca_subject(common_name="Profile Issuing CA", organization=ORG),
            issuer=profiles.IssuerInfo(root, "http://pki.example.com/r.crl", "http://pki.example.com/r.cer"),
        )
    )
    key = keys.generate_private_key("ec-p256")
    certificate = InMemoryKeyBackend(issuing_key).sign_certificate(
        profiles.smime_certificate_builder(
            certificate_type="sponsor-strict",
            subscriber=profiles.Subscriber("jane.doe@example.com", "Jane", "Doe"),
            organization=ORG,
            issuer=profiles.IssuerInfo(issuing, "http://pki.example.com/i.crl", "http://pki.example.com/i.cer"),
            public_key=key.public_key(),
            not_before=datetime.now(timezone.utc) - timedelta(minutes=1),
        )
    )
    bundle = pkcs12.pkcs12_bundle(
        key=key, certificate=certificate, chain=[issuing, root], friendly_name="Jane", passphrase=PASSPHRASE,
        fmt="compatible",
    )
    return bundle, [issuing, root], certificate


def _profile(material, **overrides) -> bytes:
    bundle, chain, _ = material
    arguments = dict(
        pkcs12_der=bundle, chain=chain, identifier="com.example.pki.smime.01ab", display_name="S/MIME jane",
        organization="Example Widgets Inc.", description="test", pkcs12_filename="jane.p12",
    )
    return mobileconfig.mobileconfig_profile(**{**arguments, **overrides})


def test_profile_structure(material):
    bundle, (issuing, root), certificate = material
    profile = plistlib.loads(_profile(material))
    assert profile["PayloadType"] == "Configuration"
    assert [p["PayloadType"] for p in profile["PayloadContent"]] == [
        "com.apple.security.pkcs12", "com.apple.security.pkcs1", "com.apple.security.root",
    ]
    identity, intermediate, root_payload = profile["PayloadContent"]
    assert "Password" not in identity  # the device asks
    assert pkcs12.load_pkcs12(identity["PayloadContent"], PASSPHRASE).cert.certificate == certificate
    assert intermediate["PayloadContent"] == issuing.public_bytes(Encoding.DER)
    assert root_payload["PayloadContent"] == root.public_bytes(Encoding.DER)
    assert plistlib.loads(_profile(material, password=PASSPHRASE))["PayloadContent"][0]["Password"] == PASSPHRASE


def test_profile_refuses_a_chain_without_its_root_or_a_bad_identifier(material):
    _, (issuing, _root), _ = material
    with pytest.raises(ValueError, match="root"):
        _profile(material, chain=[issuing])
    with pytest.raises(ValueError, match="identifier"):
        _profile(material, identifier="has spaces")


@pytest.mark.parametrize(
    "user_agent, key",
    [
        # iPadOS 13+ asks for the desktop site as a Mac: the Mac advice names the iPad.
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15",
         "apple-macos"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 12_5 like Mac OS X) AppleWebKit/605.1.15", "apple-ios"),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", "other"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.0", "thunderbird"),
        ("Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko", "windows-old"),
        ("curl/8.5.0", "other"),
    ],
)
def test_device_advice(user_agent, key):
    assert client_from_user_agent(user_agent).key == key


def test_every_advice_names_a_downloadable_file():
    assert {advice.fmt for advice in CLIENT_ADVICE} <= {"mobileconfig", *pkcs12.PKCS12_FORMATS}
    assert client_from_user_agent("").fmt == "compatible"
