"""Fixtures of the enrollment tests: the SoftHSM2 token that the PKCS#11 tests share.

One token per test process: python-pkcs11 initializes the module once and SoftHSM2 reads
SOFTHSM2_CONF then (tests/softhsm.py), so every module that needs the token uses this one.
"""

from __future__ import annotations

import os

import pytest
from softhsm import SoftHsm, start_softhsm

from enrollment.pki.pkcs11 import pkcs11_sessions_close


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory) -> SoftHsm:
    before = os.environ.get("SOFTHSM2_CONF")
    hsm = start_softhsm(tmp_path_factory.mktemp("softhsm"))
    yield hsm
    pkcs11_sessions_close()
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before


@pytest.fixture
def hsm_settings(settings, softhsm, tmp_path):
    settings.PORTAL_CA_KEY_DIR = tmp_path / "keys"
    settings.PORTAL_PKCS11_MODULE = softhsm.module_path
    settings.PORTAL_PKCS11_TOKEN_LABEL = softhsm.token_label
    settings.PORTAL_PKCS11_PIN = softhsm.pin
    return settings
