"""Directory settings: presets, overrides, refusals. No server needed."""

from __future__ import annotations

import pytest

from core.exceptions import ConfigurationError
from enrollment.directory.config import DirectoryConfig


@pytest.fixture
def base(settings):
    settings.PORTAL_LDAP_URI = "ldap://ldap.example.org"
    settings.PORTAL_LDAP_USER_BASE_DN = "ou=people,dc=example,dc=org"
    for name in (
        "PRESET", "USER_FILTER", "MAIL_FILTER", "CERTIFICATE_ATTRIBUTE", "SMIME_ATTRIBUTE",
        "PUBLISH_SMIME_CAPABLE", "CA_FILE",
    ):
        setattr(settings, f"PORTAL_LDAP_{name}", None)
    settings.PORTAL_LDAP_START_TLS = False
    return settings


def test_no_uri_means_no_directory(settings):
    settings.PORTAL_LDAP_URI = ""
    assert DirectoryConfig.from_settings() is None


def test_openldap_preset(base):
    config = DirectoryConfig.from_settings()
    assert (config.preset, config.certificate_attribute, config.smime_attribute) == (
        "openldap", "userCertificate;binary", "userSMIMECertificate"
    )
    assert config.user_filter == "(uid=%(user)s)" and config.mail_filter == "(mail=%(mail)s)"
    assert config.publish_smime_capable is False


def test_active_directory_preset(base):
    base.PORTAL_LDAP_PRESET = "activedirectory"
    base.PORTAL_LDAP_URI = "ldaps://dc1.corp.example.org"
    config = DirectoryConfig.from_settings()
    assert config.certificate_attribute == "userCertificate" and config.publish_smime_capable is True
    assert config.user_filter == "(sAMAccountName=%(user)s)" and config.uses_tls


def test_settings_override_the_preset(base):
    base.PORTAL_LDAP_PRESET = "activedirectory"
    base.PORTAL_LDAP_PUBLISH_SMIME_CAPABLE = False
    base.PORTAL_LDAP_MAIL_FILTER = "(proxyAddresses=smtp:%(mail)s)"
    config = DirectoryConfig.from_settings()
    assert config.publish_smime_capable is False and config.mail_filter == "(proxyAddresses=smtp:%(mail)s)"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"PORTAL_LDAP_PRESET": "novell"}, "PORTAL_LDAP_PRESET"),
        ({"PORTAL_LDAP_URI": "http://ldap.example.org"}, "PORTAL_LDAP_URI"),
        ({"PORTAL_LDAP_URI": "ldaps://ldap.example.org", "PORTAL_LDAP_START_TLS": True}, "PORTAL_LDAP_START_TLS"),
        ({"PORTAL_LDAP_USER_BASE_DN": ""}, "PORTAL_LDAP_USER_BASE_DN"),
        ({"PORTAL_LDAP_MAIL_FILTER": "mail=%(mail)s"}, "PORTAL_LDAP_MAIL_FILTER"),
    ],
)
def test_unusable_settings_are_refused_by_name(base, change, message):
    for name, value in change.items():
        setattr(base, name, value)
    with pytest.raises(ConfigurationError, match=message):
        DirectoryConfig.from_settings()
