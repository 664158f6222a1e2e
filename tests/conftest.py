"""Fixtures for the Django side: a test CA and key recovery agent, demo-like users.

Keys are generated once per session (RSA is slow on two cores); the database rows that
point at them are created per test, so transactional tests (live server, browser) work too.

Passwords are hashed with Django's MD5 hasher in the whole suite (the production PBKDF2 costs
about a third of a second per hash, and every user created and every log-in hashes once);
tests/portal/test_production_hasher.py keeps the configured hashers and logs in with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from portal_testing import PASSWORD, TEST_BASE_URL

FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PRODUCTION_PASSWORD_HASHERS = pytest.StashKey[list]()
_PASSWORD_HASHERS_OVERRIDE = pytest.StashKey[object]()


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """The fast hasher for the whole run, before any fixture creates a user (live-server threads
    share these settings; subprocesses read the settings module and keep the production hasher).
    The configured hashers are kept on the config for the one test that logs in with them."""
    from django.conf import settings
    from django.test.utils import override_settings

    config.stash[PRODUCTION_PASSWORD_HASHERS] = list(settings.PASSWORD_HASHERS)
    override = override_settings(PASSWORD_HASHERS=FAST_PASSWORD_HASHERS)
    override.enable()  # sends setting_changed: Django drops its cached hashers
    config.stash[_PASSWORD_HASHERS_OVERRIDE] = override


def pytest_unconfigure(config):
    override = config.stash.get(_PASSWORD_HASHERS_OVERRIDE, None)
    if override is not None:
        override.disable()
        del config.stash[_PASSWORD_HASHERS_OVERRIDE]


@pytest.fixture(scope="session", autouse=True)
def worker_temporary_directory(request, tmp_path_factory):
    """Under pytest-xdist each worker gets a temporary directory of its own (TMPDIR and Python's
    tempfile), below its own base temp: the files the tests, the portal and the programs they run
    (pkilint, openssl, chromium) leave in the temporary directory are the worker's alone, and tests
    that compare the temporary directory before and after see no other worker's files."""
    if not hasattr(request.config, "workerinput"):
        yield
        return
    import os
    import tempfile

    directory = tmp_path_factory.mktemp("tmp", numbered=False)
    previous = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(directory)
    tempfile.tempdir = str(directory)
    try:
        yield
    finally:
        if previous[0] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = previous[0]
        tempfile.tempdir = previous[1]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite the test database is a file (one per xdist worker, in its base temp), as the
    portal's own SQLite database is, rather than Django's default shared-cache in-memory database.

    In shared-cache mode SQLite locks tables and fails at once ("database table is locked") when two
    connections meet, with no busy timeout: the in-process Celery worker thread of
    tests/directory/test_task_queue.py has a connection of its own and lost its writes whenever the
    test thread was reading. A file gives the usual locking with a busy timeout; WAL lets readers
    and the writer pass each other, IMMEDIATE transactions take the write lock when they begin
    (so two read-then-write transactions wait for each other instead of failing), and no fsync
    (synchronous=OFF: the database is thrown away after the run) keeps it as fast as memory.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        return
    database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.getbasetemp() / "test-portal.sqlite3")
    options = database.setdefault("OPTIONS", {})
    options.setdefault("transaction_mode", "IMMEDIATE")
    options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF")


@pytest.fixture
def production_password_hashers(request) -> list[str]:
    """PASSWORD_HASHERS as the project's settings configure them (before the suite's override)."""
    return list(request.config.stash[PRODUCTION_PASSWORD_HASHERS])


@pytest.fixture(autouse=True)
def api_throttles_start_afresh():
    """Every test starts with no API request counted by the throttles (portal/throttling.py).

    Their counts live in the cache, which outlives a test (the lockout's counts are database rows,
    rolled back with it): without this, the requests of earlier tests from 127.0.0.1 would count."""
    from django.core.cache import cache

    cache.clear()
    yield


class _EveryName:
    def __contains__(self, username) -> bool:
        return True


@pytest.fixture(autouse=True)
def second_factor_exemption_as_for_the_demo_accounts(monkeypatch):
    """Every account of the suite is exempt from the second factor as `make run`'s demo accounts are
    (in development, while PORTAL_DEMO_2FA is off), whatever its name, so that the tests of other
    features log in as they did. The second factor's own tests turn PORTAL_DEMO_2FA on, which ends
    the exemption for everyone, and test the exemption's real list of names
    (tests/portal/test_second_factor.py, tests/api/test_second_factor_api.py)."""
    monkeypatch.setattr("portal.second_factor.DEMO_USERNAMES", _EveryName())


def pkilint_run(tool: str, *pems: bytes, args: tuple[str, ...] = ()) -> tuple[int, str]:
    """A pkilint linter's command line on PEM/DER data: (exit code, output); see tests/pkilint_testing.py."""
    import tempfile

    from pkilint_testing import pkilint_in_process

    directory = Path(tempfile.mkdtemp())
    paths = []
    for index, pem in enumerate(pems):
        path = directory / f"{index}.pem"
        path.write_bytes(pem)
        paths.append(str(path))
    result = pkilint_in_process(tool, *args, *paths)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture
def pkilint():
    """Runs a pkilint linter on PEM data; returns (exit code, output). See pkilint_run."""
    return pkilint_run


@dataclass
class PkiMaterial:
    root_key: object
    root: x509.Certificate
    root_key_path: str
    issuing_key: object
    issuing: x509.Certificate
    issuing_key_path: str
    kra_key: object
    kra: x509.Certificate


@pytest.fixture(scope="session")
def pki_material(tmp_path_factory) -> PkiMaterial:
    from django.conf import settings

    from enrollment.pki import ca as pki_ca
    from enrollment.pki.backends import EncryptedFileKeyBackend, InMemoryKeyBackend
    from enrollment.pki.keys import generate_private_key
    from enrollment.pki.profiles import IssuerInfo
    from enrollment.services.authorities import organization_from_settings

    key_dir = tmp_path_factory.mktemp("ca-keys")
    settings.PORTAL_CA_KEY_DIR = key_dir
    passphrase = settings.PORTAL_CA_PASSPHRASE.encode()
    organization = organization_from_settings()
    root_key = generate_private_key("rsa-3072")
    root = pki_ca.create_root_certificate(
        key=root_key, subject=pki_ca.ca_subject(common_name="Test Root CA", organization=organization)
    )
    issuing_key = generate_private_key("rsa-3072")
    root_info = IssuerInfo(
        certificate=root, crl_url=f"{TEST_BASE_URL}/pki/root-ca.crl", ca_issuers_url=f"{TEST_BASE_URL}/pki/root-ca.crt"
    )
    issuing = InMemoryKeyBackend(root_key).sign_certificate(
        pki_ca.issuing_ca_builder(
            public_key=issuing_key.public_key(),
            subject=pki_ca.ca_subject(common_name="Test S/MIME CA", organization=organization),
            issuer=root_info,
        )
    )
    issuing_info = IssuerInfo(
        certificate=issuing,
        crl_url=f"{TEST_BASE_URL}/pki/issuing-ca.crl",
        ca_issuers_url=f"{TEST_BASE_URL}/pki/issuing-ca.crt",
    )
    kra_key = generate_private_key("rsa-3072")
    kra = InMemoryKeyBackend(issuing_key).sign_certificate(
        pki_ca.kra_certificate_builder(
            public_key=kra_key.public_key(),
            subject=pki_ca.ca_subject(common_name="Test Key Recovery Agent", organization=organization),
            issuer=issuing_info,
        )
    )
    root_path = key_dir / "root-ca.key.pem"
    issuing_path = key_dir / "issuing-ca.key.pem"
    EncryptedFileKeyBackend.store(path=root_path, key=root_key, passphrase=passphrase)
    EncryptedFileKeyBackend.store(path=issuing_path, key=issuing_key, passphrase=passphrase)
    return PkiMaterial(root_key, root, str(root_path), issuing_key, issuing, str(issuing_path), kra_key, kra)


@pytest.fixture
def pki(db, pki_material):
    """The test CA hierarchy and one active key recovery agent, as database rows."""
    from enrollment.models import CertificateAuthority
    from escrow.models import KeyRecoveryAgent

    root = CertificateAuthority.objects.create(
        slug="root-ca",
        common_name="Test Root CA",
        certificate_der=pki_material.root.public_bytes(Encoding.DER),
        key_reference=pki_material.root_key_path,
        base_url=TEST_BASE_URL,
    )
    issuing = CertificateAuthority.objects.create(
        slug="issuing-ca",
        common_name="Test S/MIME CA",
        parent=root,
        certificate_der=pki_material.issuing.public_bytes(Encoding.DER),
        key_reference=pki_material.issuing_key_path,
        is_issuing=True,
        base_url=TEST_BASE_URL,
    )
    agent = KeyRecoveryAgent.objects.create(
        name="Test Key Recovery Agent",
        certificate_der=pki_material.kra.public_bytes(Encoding.DER),
        fingerprint_sha256=pki_material.kra.fingerprint(hashes.SHA256()).hex(),
    )
    return {"root": root, "issuing": issuing, "agent": agent, "material": pki_material}


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from enrollment.services.employees import employee_upsert

    def make(username: str, *, groups=(), given_name="", surname="", employee=True, superuser=False):
        user = get_user_model().objects.create_user(
            username=username,
            password=PASSWORD,
            email=f"{username}@example.org",
            is_staff=bool(groups) or superuser,
            is_superuser=superuser,
        )
        user.groups.set(Group.objects.filter(name__in=groups))
        if employee:
            employee_upsert(
                user=user,
                mail=f"{username}@example.org",
                given_name=given_name or username.capitalize(),
                surname=surname or "Example",
            )
        return user

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice", given_name="Alice", surname="Archer")


@pytest.fixture
def bob(make_user):
    return make_user("bob", given_name="Bob", surname="Baker")


@pytest.fixture
def approver(make_user):
    from enrollment.roles import APPROVERS

    return make_user("approver", groups=[APPROVERS], given_name="Ann", surname="Approver")


@pytest.fixture
def approver2(make_user):
    from enrollment.roles import APPROVERS

    return make_user("approver2", groups=[APPROVERS], given_name="Arthur", surname="Approver")


@pytest.fixture
def pki_admin(make_user):
    """A PKI administrator (modules that need another name or none define their own)."""
    from enrollment.roles import PKI_ADMINISTRATORS

    return make_user("pkiadmin", groups=[PKI_ADMINISTRATORS], given_name="Petra", surname="Admin")


@pytest.fixture
def auditor(make_user):
    from enrollment.roles import AUDITORS

    return make_user("auditor", groups=[AUDITORS], given_name="Audrey", surname="Auditor")


@pytest.fixture
def issued(pki, alice, approver):
    """An issued certificate of alice's (ECDSA P-256: quick to generate; sponsor-validated).

    The tests that take it do not depend on the subscriber's key type (escrow is CMS key
    transport to the RSA agent key whatever key it carries); tests of key types issue their own."""
    from enrollment.services.requests import certificate_request_approve, certificate_request_create

    request = certificate_request_create(employee=alice.employee, submitted_by=alice, key_type="ec-p256")
    request = certificate_request_approve(request_id=request.pk, approver=approver)
    assert request.state == "issued", request.reason
    return request.certificate
