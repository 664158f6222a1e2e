"""Fixtures for the mail-client engines (issue 14): the portal's output, made once per session.

For each CA key type (RSA, ECDSA) the portal's services issue alice and bob one certificate of
every subscriber key type, hand out both PKCS#12 formats and serve the CRLs after carol's
certificate is revoked, in one transaction that is rolled back at once: the tests get files
(what the engines read), nothing stays in the database, and the expensive part (RSA key
generation) happens once per session, not per test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from clients_testing import (
    CA_KEY_TYPES,
    Identity,
    PortalOutput,
    ca_hierarchy,
    ca_rows,
    download,
    issue,
    portal_user,
    require,
    run,
    subscriber_key_types,
)


def pytest_collection_modifyitems(items):
    """pytest-django sets up the test database only for a session with a test marked for it."""
    for item in items:
        if "portal_output" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.django_db)


_PORTAL_OUTPUTS: dict[str, PortalOutput] = {}


@pytest.fixture(scope="session", params=sorted(CA_KEY_TYPES))
def portal_output(request, django_db_setup, django_db_blocker, pki_material) -> PortalOutput:
    """What one CA hierarchy (RSA or ECDSA keys) issued: alice's and bob's certificates of every
    key type with both downloads, and the served CRL listing carol's revoked certificate.

    Made once per process: pytest sets a parametrized session fixture up again when the tests of
    its parameters interleave on one xdist worker, and the output (files only) does not change."""
    if request.param not in _PORTAL_OUTPUTS:
        _PORTAL_OUTPUTS[request.param] = _make_portal_output(request.param, django_db_blocker, pki_material)
    return _PORTAL_OUTPUTS[request.param]


def _make_portal_output(ca_type: str, django_db_blocker, pki_material) -> PortalOutput:
    from django.conf import settings
    from django.db import transaction
    from django.test import Client, override_settings

    from enrollment.revocation.services import certificate_revoke

    hierarchy = ca_hierarchy(ca_type=ca_type, pki_material=pki_material, key_dir=Path(settings.PORTAL_CA_KEY_DIR))
    identities = {}
    with django_db_blocker.unblock(), override_settings(PORTAL_KEY_SEPARATION=False), transaction.atomic():
        ca_rows(*hierarchy, kra=pki_material.kra)
        approver = portal_user("approver", approver=True)
        for username in ("alice", "bob"):
            user = portal_user(username)
            for key_type in subscriber_key_types():
                certificate = issue(user, approver, key_type)
                identities[(username, key_type)] = Identity(
                    username, key_type, certificate.serial, certificate.x509, download(user, certificate)
                )
        carol = portal_user("carol")
        certificate = issue(carol, approver, "ec-p256")
        identities[("carol", "ec-p256")] = Identity(
            "carol", "ec-p256", certificate.serial, certificate.x509, download(carol, certificate)
        )
        certificate_revoke(serial=certificate.serial, actor=None, reason="key_compromise")
        crls = {}
        for slug in ("issuing-ca", "root-ca"):
            served = Client().get(f"/pki/{slug}.crl")
            assert served.status_code == 200 and served["Content-Type"] == "application/pkix-crl"
            crls[slug] = served.content
        transaction.set_rollback(True)
    return PortalOutput(ca_type, hierarchy[0], hierarchy[2], crls, identities)


@pytest.fixture(scope="module")
def gnupg_homes():
    """Makes throw-away GnuPG homes (short paths: the agents' sockets live there); their agents
    and dirmngrs are stopped at the end of the module."""
    gpgsm = require("gpgsm")
    homes = []

    def make():
        import tempfile

        home = tempfile.mkdtemp(prefix="gs", dir="/tmp")
        os.chmod(home, 0o700)
        homes.append(home)
        return gpgsm, {**os.environ, "GNUPGHOME": home}

    yield make
    gpgconf = shutil.which("gpgconf")
    for home in homes:
        if gpgconf:
            run(gpgconf, "--kill", "all", env={**os.environ, "GNUPGHOME": home})
        shutil.rmtree(home, ignore_errors=True)
