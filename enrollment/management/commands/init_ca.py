from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import PortalError
from enrollment.models import KeyBackendName
from enrollment.pki.keys import KEY_TYPES
from enrollment.pki.pkcs11 import Pkcs11KeyReference
from enrollment.pki.profiles import Organization, name_text
from enrollment.services.authorities import ca_create, ca_import, ca_key_request_create, organization_from_settings


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


def _passphrase(path: str | None) -> bytes | None:
    return _read(path).strip() if path else None


class Command(BaseCommand):
    help = (
        "Create the organization's issuing CA (under a new root, or single-tier self-signed), "
        "or import an existing one from PEM or PKCS#12."
    )

    def add_arguments(self, parser):
        defaults = organization_from_settings()
        parser.add_argument("--common-name", help="Issuing CA common name (default: '<organization> S/MIME CA').")
        parser.add_argument("--root-common-name", help="Root CA common name (default: '<organization> Root CA').")
        parser.add_argument("--organization", default=defaults.name)
        parser.add_argument("--organization-identifier", default=defaults.organization_identifier)
        parser.add_argument("--country", default=defaults.country)
        parser.add_argument("--key-type", default="rsa-4096", choices=sorted(KEY_TYPES))
        parser.add_argument("--single-tier", action="store_true", help="One self-signed CA, no separate root.")
        parser.add_argument("--base-url", help="Public base URL for CRL and CA certificate (default PORTAL_BASE_URL).")
        parser.add_argument("--slug", default="issuing-ca")
        parser.add_argument(
            "--key-backend",
            default=KeyBackendName.FILE.value,
            choices=[KeyBackendName.FILE.value, KeyBackendName.PKCS11.value],
            help="Where the new CA keys live: an encrypted file (PORTAL_CA_KEY_DIR) or generated inside "
            "the PKCS#11 token PORTAL_PKCS11_TOKEN_LABEL (never exportable).",
        )
        parser.add_argument(
            "--pkcs11-key-label",
            help="With --key-backend pkcs11: the issuing CA key's label (default '<slug>-<random>'); "
            "the root key gets '<label>-root'.",
        )
        parser.add_argument(
            "--csr-out",
            metavar="FILE",
            help="With --key-backend pkcs11: generate the issuing CA key in the token and write a certificate "
            "request (PEM) for a parent CA outside the portal; then import the certificate it issues with "
            "--import-certificate and the same --pkcs11-key-label.",
        )
        parser.add_argument("--import-certificate", metavar="PEM", help="Import: the issuing CA certificate.")
        parser.add_argument(
            "--import-key", metavar="PEM", help="Import: its private key (not with pkcs11: the token's key is used)."
        )
        parser.add_argument("--import-key-passphrase-file", metavar="FILE")
        parser.add_argument("--import-chain", metavar="PEM", help="Import: parent CA certificates (PEM bundle).")
        parser.add_argument("--import-pkcs12", metavar="P12", help="Import: key, certificate and chain.")
        parser.add_argument("--import-pkcs12-passphrase-file", metavar="FILE")

    def handle(self, *args, **options):
        try:
            if options["csr_out"]:
                return self._request(options)
            if options["import_pkcs12"] or options["import_certificate"]:
                ca = self._import(options)
            else:
                organization = Organization(
                    name=options["organization"],
                    organization_identifier=options["organization_identifier"],
                    country=options["country"],
                )
                ca = ca_create(
                    common_name=options["common_name"] or f"{organization.name} S/MIME CA",
                    root_common_name=options["root_common_name"],
                    key_type=options["key_type"],
                    organization=organization,
                    single_tier=options["single_tier"],
                    slug=options["slug"],
                    base_url=options["base_url"],
                    key_backend=options["key_backend"],
                    pkcs11_key_label=options["pkcs11_key_label"],
                )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except (PortalError, ValueError, FileExistsError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Issuing CA ready: {name_text(ca.certificate.subject)}")
        self.stdout.write(f"  certificate: {ca.certificate_url}\n  CRL: {ca.crl_url}")
        if ca.key_backend == KeyBackendName.PKCS11:
            for row in (ca, ca.parent):
                if row is not None:
                    self.stdout.write(f"  {row.slug} key: {row.key_reference} (generated in the token, not exportable)")

    def _request(self, options):
        if options["key_backend"] != KeyBackendName.PKCS11 or options["import_certificate"] or options["import_pkcs12"]:
            raise CommandError("--csr-out needs --key-backend pkcs11 (and no --import-... option)")
        target = Path(options["csr_out"])
        if target.exists():
            raise CommandError(f"{target} exists already; name a new file")
        organization = Organization(
            name=options["organization"],
            organization_identifier=options["organization_identifier"],
            country=options["country"],
        )
        key_reference, request = ca_key_request_create(
            common_name=options["common_name"] or f"{organization.name} S/MIME CA",
            key_type=options["key_type"],
            organization=organization,
            pkcs11_key_label=options["pkcs11_key_label"],
            slug=options["slug"],
        )
        try:
            target.write_bytes(request.public_bytes(serialization.Encoding.PEM))
        except OSError as exc:
            raise CommandError(f"cannot write {target}: {exc.strerror} (the key {key_reference} is in the token)") from None
        label = Pkcs11KeyReference.from_uri(key_reference).key_label
        self.stdout.write(f"CA key generated in the token, not exportable: {key_reference}")
        self.stdout.write(f"  certificate request: {target}")
        self.stdout.write(
            f"  next: have the parent CA sign it, then init_ca --key-backend pkcs11 --pkcs11-key-label {label} "
            "--import-certificate <issued.pem> --import-chain <parents.pem>"
        )

    def _import(self, options):
        if options["key_backend"] == KeyBackendName.PKCS11:
            if options["import_pkcs12"] or options["import_key"] or not options["pkcs11_key_label"]:
                raise CommandError(
                    "with --key-backend pkcs11 import the certificate only (--import-certificate) and name "
                    "the token's key with --pkcs11-key-label"
                )
            try:
                certificate = x509.load_pem_x509_certificate(_read(options["import_certificate"]))
                chain = x509.load_pem_x509_certificates(_read(options["import_chain"])) if options["import_chain"] else []
            except ValueError as exc:
                raise CommandError(f"cannot load the CA certificate or chain: {exc}") from None
            return ca_import(
                certificate=certificate,
                chain=chain,
                slug=options["slug"],
                base_url=options["base_url"],
                key_backend=KeyBackendName.PKCS11,
                pkcs11_key_label=options["pkcs11_key_label"],
            )
        if options["import_pkcs12"]:
            try:
                bundle = pkcs12.load_pkcs12(
                    _read(options["import_pkcs12"]), _passphrase(options["import_pkcs12_passphrase_file"])
                )
            except ValueError:
                raise CommandError("cannot open the PKCS#12 file: wrong passphrase or not PKCS#12") from None
            if bundle.key is None or bundle.cert is None:
                raise CommandError("the PKCS#12 file must hold the CA's key and certificate")
            certificate, key = bundle.cert.certificate, bundle.key
            chain = [c.certificate for c in bundle.additional_certs]
        else:
            if not options["import_key"]:
                raise CommandError("--import-certificate needs --import-key")
            try:
                certificate = x509.load_pem_x509_certificate(_read(options["import_certificate"]))
                key = serialization.load_pem_private_key(
                    _read(options["import_key"]), _passphrase(options["import_key_passphrase_file"])
                )
                chain = x509.load_pem_x509_certificates(_read(options["import_chain"])) if options["import_chain"] else []
            except (ValueError, TypeError) as exc:
                raise CommandError(f"cannot load the CA certificate or key: {exc}") from None
        return ca_import(certificate=certificate, private_key=key, chain=chain, slug=options["slug"], base_url=options["base_url"])
