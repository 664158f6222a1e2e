"""A real OpenLDAP slapd for tests: temporary directory, free loopback ports, demo entries.

Demo entries: people (alice, bob, carol with mail; dave without) who can log in with
DIRECTORY_PASSWORDS, role groups (groupOfNames) under ou=groups, and a CA entry (pkiCA)
under ou=pki that the publisher account may write.

Configured with a slapd.conf (mdb backend, suffix dc=example,dc=org, the core, cosine and
inetorgperson schemas from /etc/ldap/schema), a TLS certificate of its own CA (for
StartTLS on the ldap:// port and for the ldaps:// port), a publisher account that may
write only the certificate attributes of ou=people, and anonymous read access, as mail
clients expect. It runs in its own process group; stop() kills that group, start()
brings it back on the same ports with the same data (for outage tests).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SUFFIX = "dc=example,dc=org"
PEOPLE_DN = f"ou=people,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "slapd-root-password"
PUBLISHER_DN = f"cn=portal,ou=services,{SUFFIX}"
PUBLISHER_PASSWORD = "slapd-publisher-password"
SCHEMAS = ("core", "cosine", "inetorgperson")
SCHEMA_DIR = Path("/etc/ldap/schema")
# The portal's CAs name organizationIdentifier, which OpenLDAP's schemas lack; without it
# slapd refuses the portal's certificates (see the file).
PORTAL_SCHEMA = Path(__file__).resolve().parent.parent / "enrollment/directory/openldap/organizationidentifier.schema"
MODULE_DIR = Path("/usr/lib/ldap")
PEOPLE = {
    "alice": ("Alice", "Archer"),
    "bob": ("Bob", "Baker"),
    "carol": ("Carol", "Clark"),
    "dave": ("Dave", "Dunn"),
}
# People whose entry has no mail attribute (they cannot be employees, but may hold a role).
WITHOUT_MAIL = {"dave"}
# Each person logs in with their own directory password.
DIRECTORY_PASSWORDS = {uid: f"{uid}-directory-password" for uid in PEOPLE}
CERTIFICATE_ATTRIBUTES = ("userCertificate;binary", "userSMIMECertificate")
GROUPS_DN = f"ou=groups,{SUFFIX}"
# Role groups (groupOfNames) and their demo members; groupOfNames needs one member at least.
GROUP_MEMBERS = {"approvers": ["carol"], "auditors": ["dave"], "admins": []}
PLACEHOLDER_MEMBER = f"cn=nobody,{SUFFIX}"
PKI_DN = f"ou=pki,{SUFFIX}"
CA_ENTRY_DN = f"cn=Example Issuing CA,{PKI_DN}"
CA_ENTRY_ATTRIBUTES = ("cACertificate;binary", "certificateRevocationList;binary")


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE_DN}"


def group_dn(name: str) -> str:
    return f"cn=portal-{name},{GROUPS_DN}"


def _person_attributes(uid: str) -> dict[str, list[str]]:
    given, surname = PEOPLE[uid]
    attributes = {"cn": [f"{given} {surname}"], "givenName": [given], "sn": [surname]}
    attributes["mail"] = [] if uid in WITHOUT_MAIL else [f"{uid}@example.org"]
    return attributes


def _group_members(name: str) -> list[str]:
    return [PLACEHOLDER_MEMBER] + [person_dn(uid) for uid in GROUP_MEMBERS[name]]


def find_program(name: str) -> str | None:
    """slapd and slapadd live in /usr/sbin, which is not on every user's PATH."""
    return shutil.which(name) or next(
        (str(path) for path in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if path.exists()), None
    )


def _ephemeral_ports() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def _free_port() -> int:
    """A free loopback port outside the kernel's ephemeral range, picked at random.

    Not one the kernel hands out for port 0 or for outgoing connections: while an outage test has
    slapd stopped, a live server or a client (of this or another pytest-xdist worker) could take
    such a port, and slapd could not come back on it. Other workers' slapds pick at random too."""
    ephemeral = _ephemeral_ports()
    for _ in range(100):
        port = random.randint(20000, 65000)
        if port in ephemeral:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tls_material(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test LDAP TLS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def _demo_ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example Organization\ndc: example\n",
        f"dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {PUBLISHER_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: portal\nsn: portal\n"
        f"userPassword: {PUBLISHER_PASSWORD}\n",
        f"dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: {PKI_DN}\nobjectClass: organizationalUnit\nou: pki\n",
        # The CA entry as a directory administrator creates it: no values yet.
        f"dn: {CA_ENTRY_DN}\nobjectClass: applicationProcess\nobjectClass: pkiCA\ncn: Example Issuing CA\n",
    ]
    for uid in PEOPLE:
        lines = [f"dn: {person_dn(uid)}", "objectClass: inetOrgPerson", f"uid: {uid}"]
        lines += [f"{name}: {value}" for name, values in _person_attributes(uid).items() for value in values]
        lines.append(f"userPassword: {DIRECTORY_PASSWORDS[uid]}")
        entries.append("\n".join(lines) + "\n")
    for name in GROUP_MEMBERS:
        members = "".join(f"member: {member}\n" for member in _group_members(name))
        entries.append(f"dn: {group_dn(name)}\nobjectClass: groupOfNames\ncn: portal-{name}\n{members}")
    return "\n".join(entries)


class SlapdServer:
    def __init__(self, directory: Path, *, slapd: str, slapadd: str, portal_schema: bool = True):
        self.directory = Path(directory)
        self.schema_files = [SCHEMA_DIR / f"{name}.schema" for name in SCHEMAS] + ([PORTAL_SCHEMA] if portal_schema else [])
        self.slapd = slapd
        self.slapadd = slapadd
        self.port = 0
        self.tls_port = 0
        self.process: subprocess.Popen | None = None
        self.paused = False
        self.conf = self.directory / "slapd.conf"
        self.log = self.directory / "slapd.log"
        self.ca_file, self.cert_file, self.key_file = _tls_material(self.directory)
        self._configure()

    # --- set up ------------------------------------------------------------------------

    def _configure(self) -> None:
        data = self.directory / "data"
        data.mkdir(mode=0o700)
        includes = "\n".join(f"include {path}" for path in self.schema_files)
        self.conf.write_text(
            f"""{includes}
pidfile {self.directory / "slapd.pid"}
argsfile {self.directory / "slapd.args"}
modulepath {MODULE_DIR}
moduleload back_mdb
TLSCACertificateFile {self.ca_file}
TLSCertificateFile {self.cert_file}
TLSCertificateKeyFile {self.key_file}

database mdb
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {data}
maxsize 33554432
index objectClass,uid,mail,member eq
access to dn.subtree="{PEOPLE_DN}" attrs=userCertificate,userSMIMECertificate
  by dn.exact="{PUBLISHER_DN}" write
  by * read
access to dn.subtree="{PKI_DN}" attrs=cACertificate,certificateRevocationList
  by dn.exact="{PUBLISHER_DN}" write
  by * read
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by * read
"""
        )
        ldif = self.directory / "demo.ldif"
        ldif.write_text(_demo_ldif())
        subprocess.run(
            [self.slapadd, "-q", "-f", str(self.conf), "-l", str(ldif)],
            check=True, capture_output=True, text=True, timeout=30,
        )

    # --- run ---------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start slapd (again); the first start picks free ports, a restart keeps them."""
        self.resume()
        if self.running:
            return
        restart = bool(self.port)
        for _ in range(5):
            if not restart:
                self.port, self.tls_port = _free_port(), _free_port()
                if self.port == self.tls_port:
                    continue
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    [self.slapd, "-f", str(self.conf), "-h", f"{self.uri}/ {self.ldaps_uri}/", "-d", "0"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                )
            if self._wait_ready():
                return
            self._kill()
            time.sleep(0.2)  # a restart waits for its port; a first start tries other ports
        raise RuntimeError(f"slapd did not start; the end of its log:\n{self.log.read_text(errors='replace')[-3000:]}")

    def _wait_ready(self, timeout: float = 15) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                connection = self.admin_connection()
                connection.unbind()
                return True
            except Exception:  # noqa: BLE001 - not answering yet
                time.sleep(0.05)
        return False

    def _kill(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        """Stop slapd (the whole process group); start() brings it back on the same ports."""
        self.resume()
        self._kill()

    def pause(self) -> None:
        """Freeze slapd (SIGSTOP): connections are accepted by the kernel, nothing answers."""
        if self.running:
            os.killpg(self.process.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.paused and self.process is not None:
            os.killpg(self.process.pid, signal.SIGCONT)
        self.paused = False

    # --- reading and writing as the directory administrator ------------------------------

    def admin_connection(self):
        from ldap3 import NONE, Connection, Server

        server = Server(self.uri, get_info=NONE, connect_timeout=2)
        return Connection(server, ROOT_DN, ROOT_PASSWORD, auto_bind=True, raise_exceptions=True, receive_timeout=5)

    def values(self, dn: str, attribute: str) -> list[bytes]:
        from ldap3 import BASE

        connection = self.admin_connection()
        try:
            connection.search(dn, "(objectClass=*)", BASE, attributes=[attribute])
            raw = connection.response[0]["raw_attributes"]
            return next((list(v) for name, v in raw.items() if name.lower() == attribute.lower()), [])
        finally:
            connection.unbind()

    def operational(self, dn: str, attribute: str) -> str:
        from ldap3 import BASE

        connection = self.admin_connection()
        try:
            connection.search(dn, "(objectClass=*)", BASE, attributes=[attribute])
            raw = connection.response[0]["raw_attributes"].get(attribute) or [b""]
            return raw[0].decode()
        finally:
            connection.unbind()

    def add_values(self, dn: str, attribute: str, values: list[bytes]) -> None:
        from ldap3 import MODIFY_ADD

        connection = self.admin_connection()
        try:
            connection.modify(dn, {attribute: [(MODIFY_ADD, values)]})
        finally:
            connection.unbind()

    def reset_people(self) -> None:
        """No certificate values on any demo person."""
        from ldap3 import MODIFY_REPLACE

        connection = self.admin_connection()
        try:
            for uid in PEOPLE:
                connection.modify(person_dn(uid), {name: [(MODIFY_REPLACE, [])] for name in CERTIFICATE_ATTRIBUTES})
        finally:
            connection.unbind()

    def replace_values(self, dn: str, attribute: str, values: list) -> None:
        """Set an attribute of an entry to exactly `values` (none: remove it)."""
        from ldap3 import MODIFY_REPLACE

        connection = self.admin_connection()
        try:
            connection.modify(dn, {attribute: [(MODIFY_REPLACE, values)]})
        finally:
            connection.unbind()

    def reset_accounts(self) -> None:
        """The demo people's names and mail, and the demo members of the role groups."""
        from ldap3 import MODIFY_REPLACE

        connection = self.admin_connection()
        try:
            for uid in PEOPLE:
                changes = {name: [(MODIFY_REPLACE, values)] for name, values in _person_attributes(uid).items()}
                connection.modify(person_dn(uid), changes)
            for name in GROUP_MEMBERS:
                connection.modify(group_dn(name), {"member": [(MODIFY_REPLACE, _group_members(name))]})
        finally:
            connection.unbind()

    def reset_ca_entry(self) -> None:
        """The CA entry without certificate or CRL, as the directory administrator created it."""
        from ldap3 import MODIFY_REPLACE

        connection = self.admin_connection()
        try:
            connection.modify(CA_ENTRY_DN, {name: [(MODIFY_REPLACE, [])] for name in CA_ENTRY_ATTRIBUTES})
        finally:
            connection.unbind()

    def add_entry(self, dn: str, object_classes: list[str], attributes: dict) -> None:
        connection = self.admin_connection()
        try:
            connection.add(dn, object_classes, attributes)
        finally:
            connection.unbind()

    def delete_entry(self, dn: str) -> None:
        """Delete the entry if it exists."""
        from ldap3.core.exceptions import LDAPNoSuchObjectResult

        connection = self.admin_connection()
        try:
            connection.delete(dn)
        except LDAPNoSuchObjectResult:
            pass
        finally:
            connection.unbind()
