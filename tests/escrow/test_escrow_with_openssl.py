"""An agent recovers an escrowed key outside the portal with `openssl cms -decrypt`."""

import subprocess

from cryptography.hazmat.primitives import serialization
from portal_testing import require_tool

from enrollment.pki.keys import private_key_from_der


def test_stored_escrow_envelope_decrypts_with_the_openssl_binary(pki, issued, tmp_path):
    material = pki["material"]
    envelope = tmp_path / "escrow.der"
    envelope.write_bytes(bytes(issued.escrow.envelope_der))
    agent_cert = tmp_path / "agent.pem"
    agent_cert.write_bytes(material.kra.public_bytes(serialization.Encoding.PEM))
    agent_key = tmp_path / "agent.key"
    agent_key.write_bytes(
        material.kra_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    result = subprocess.run(
        [require_tool("openssl"), "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(envelope),
         "-recip", str(agent_cert), "-inkey", str(agent_key)],
        capture_output=True, check=True,
    )

    recovered = private_key_from_der(result.stdout)
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert recovered.public_key().public_bytes(*spki) == issued.x509.public_key().public_bytes(*spki)
    printed = subprocess.run(
        [require_tool("openssl"), "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(envelope)],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "aes-256-cbc" in printed
