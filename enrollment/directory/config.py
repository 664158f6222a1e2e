"""Directory settings as one immutable value, with presets for OpenLDAP and Active Directory.

Built from Django settings (which read the environment) by `DirectoryConfig.from_settings`;
the ldap3 code in client.py and publisher.py takes the dataclass, never settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from core.exceptions import ConfigurationError


@dataclass(frozen=True)
class Preset:
    user_filter: str
    mail_filter: str
    # The attribute mail clients read the certificate from. OpenLDAP stores certificate
    # syntax values only with the ;binary transfer option (RFC 4522); AD takes plain octets.
    certificate_attribute: str
    # Outlook reads userSMIMECertificate too; inetOrgPerson (RFC 2798) has it as well.
    smime_attribute: str
    publish_smime_capable: bool
    # The CA entry (PORTAL_LDAP_CA_ENTRY_DN): the issuing CA certificate and its CRL.
    ca_certificate_attribute: str
    crl_attribute: str
    # Log-in: how role groups hold their members (see portal/ldap_auth.py).
    group_type: str
    group_object_class: str


PRESETS: dict[str, Preset] = {
    "openldap": Preset(
        user_filter="(uid=%(user)s)",
        mail_filter="(mail=%(mail)s)",
        certificate_attribute="userCertificate;binary",
        smime_attribute="userSMIMECertificate",
        # Off: Thunderbird and Apple Mail read userCertificate;binary only, and OpenLDAP's
        # userSMIMECertificate has no equality rule, so values can only be rewritten whole.
        publish_smime_capable=False,
        # pkiCA / certificationAuthority (RFC 4523): certificate syntax again, so ;binary.
        ca_certificate_attribute="cACertificate;binary",
        crl_attribute="certificateRevocationList;binary",
        # groupOfNames with member DNs, checked with an LDAP compare per role group.
        group_type="groupOfNames",
        group_object_class="groupOfNames",
    ),
    "activedirectory": Preset(
        user_filter="(sAMAccountName=%(user)s)",
        mail_filter="(mail=%(mail)s)",
        certificate_attribute="userCertificate",
        smime_attribute="userSMIMECertificate",
        publish_smime_capable=True,
        ca_certificate_attribute="cACertificate",
        crl_attribute="certificateRevocationList",
        # AD groups with member DNs; groups nested in a role group count too.
        group_type="nestedActiveDirectory",
        group_object_class="group",
    ),
}


@dataclass(frozen=True)
class DirectoryConfig:
    uri: str
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)  # never in logs or tracebacks
    user_base_dn: str = ""
    preset: str = "openldap"
    user_filter: str = PRESETS["openldap"].user_filter
    mail_filter: str = PRESETS["openldap"].mail_filter
    certificate_attribute: str = PRESETS["openldap"].certificate_attribute
    smime_attribute: str = PRESETS["openldap"].smime_attribute
    publish_smime_capable: bool = False
    start_tls: bool = False
    ca_file: str = ""
    tls_verify: bool = True
    # Whole seconds: ldap3 sets the receive timeout as a socket option that takes integers.
    connect_timeout: int = 5
    receive_timeout: int = 10
    # Log-in (django-auth-ldap): the directory groups whose members get a portal role; empty:
    # the directory does not decide that role. Groups are searched for under group_base_dn
    # (empty: the dc= part of user_base_dn) when the group type needs a search (nested AD).
    approvers_group_dn: str = ""
    auditors_group_dn: str = ""
    admins_group_dn: str = ""
    group_base_dn: str = ""
    group_type: str = PRESETS["openldap"].group_type
    group_object_class: str = PRESETS["openldap"].group_object_class
    # The entry that carries the issuing CA's certificate and current CRL; empty: none.
    ca_entry_dn: str = ""
    ca_certificate_attribute: str = PRESETS["openldap"].ca_certificate_attribute
    crl_attribute: str = PRESETS["openldap"].crl_attribute

    def __post_init__(self) -> None:
        parsed = urlsplit(self.uri)
        if parsed.scheme not in {"ldap", "ldaps"} or not parsed.hostname:
            raise ConfigurationError(f"PORTAL_LDAP_URI must be ldap://host[:port] or ldaps://host[:port], not {self.uri!r}")
        if self.start_tls and parsed.scheme == "ldaps":
            raise ConfigurationError("PORTAL_LDAP_START_TLS applies to ldap:// URIs; ldaps:// is TLS already.")
        if not self.user_base_dn:
            raise ConfigurationError("PORTAL_LDAP_USER_BASE_DN must name where the employees' entries are.")
        for name in ("user_filter", "mail_filter"):
            value = getattr(self, name)
            if not (value.startswith("(") and value.endswith(")")):
                raise ConfigurationError(f"PORTAL_LDAP_{name.upper()} must be an LDAP filter in parentheses, not {value!r}")

    @property
    def uses_tls(self) -> bool:
        return self.start_tls or self.uri.lower().startswith("ldaps://")

    @classmethod
    def from_settings(cls, settings=None) -> DirectoryConfig | None:
        """The configured directory, or None when PORTAL_LDAP_URI is empty (no directory)."""
        if settings is None:
            from django.conf import settings
        uri = (getattr(settings, "PORTAL_LDAP_URI", "") or "").strip()
        if not uri:
            return None
        preset_name = (getattr(settings, "PORTAL_LDAP_PRESET", "") or "openldap").strip().lower()
        if preset_name not in PRESETS:
            raise ConfigurationError(f"PORTAL_LDAP_PRESET must be one of {', '.join(PRESETS)}, not {preset_name!r}")
        preset = PRESETS[preset_name]

        def get(name, default):
            value = getattr(settings, name, None)
            return default if value in (None, "") else value

        timeout = max(1, int(get("PORTAL_LDAP_TIMEOUT", 5)))
        return cls(
            uri=uri,
            bind_dn=get("PORTAL_LDAP_BIND_DN", ""),
            bind_password=get("PORTAL_LDAP_BIND_PASSWORD", ""),
            user_base_dn=get("PORTAL_LDAP_USER_BASE_DN", ""),
            preset=preset_name,
            user_filter=get("PORTAL_LDAP_USER_FILTER", preset.user_filter),
            mail_filter=get("PORTAL_LDAP_MAIL_FILTER", preset.mail_filter),
            certificate_attribute=get("PORTAL_LDAP_CERTIFICATE_ATTRIBUTE", preset.certificate_attribute),
            smime_attribute=get("PORTAL_LDAP_SMIME_ATTRIBUTE", preset.smime_attribute),
            publish_smime_capable=bool(get("PORTAL_LDAP_PUBLISH_SMIME_CAPABLE", preset.publish_smime_capable)),
            start_tls=bool(get("PORTAL_LDAP_START_TLS", False)),
            ca_file=get("PORTAL_LDAP_CA_FILE", ""),
            tls_verify=bool(get("PORTAL_LDAP_TLS_VERIFY", True)),
            connect_timeout=timeout,
            receive_timeout=max(1, int(get("PORTAL_LDAP_RECEIVE_TIMEOUT", 2 * timeout))),
            approvers_group_dn=get("PORTAL_LDAP_APPROVERS_GROUP_DN", "").strip(),
            auditors_group_dn=get("PORTAL_LDAP_AUDITORS_GROUP_DN", "").strip(),
            admins_group_dn=get("PORTAL_LDAP_ADMINS_GROUP_DN", "").strip(),
            group_base_dn=get("PORTAL_LDAP_GROUP_BASE_DN", "").strip(),
            group_type=preset.group_type,
            group_object_class=preset.group_object_class,
            ca_entry_dn=get("PORTAL_LDAP_CA_ENTRY_DN", "").strip(),
            ca_certificate_attribute=preset.ca_certificate_attribute,
            crl_attribute=preset.crl_attribute,
        )
