"""A throwaway certificate authority for tests that need real TLS on loopback.

Relatch verifies every outbound HTTPS connection against the machine's trust store
(``ssl.create_default_context()``, which reads ``SSL_CERT_FILE``), so a test makes a CA here,
issues a certificate for ``localhost`` / ``127.0.0.1``, serves with it, and points
``SSL_CERT_FILE`` at ``TestCA.ca_file`` (monkeypatch.setenv in the test process, or the
environment of a subprocess such as ``uv``). Nothing is mocked: the handshake, the chain and
the host name checks are the real ones.
"""

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TestCA:
    """A CA whose certificate is in ``ca_file`` (PEM); ``issue`` signs server certificates."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: Path | None = None, name: str = "Relatch test CA") -> None:
        self.directory = Path(directory or tempfile.mkdtemp(prefix="relatch-ca-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                              content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False,
                              encipher_only=False, decipher_only=False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self._issued = 0

    def issue(self, *names: str) -> tuple[Path, Path]:
        """A server certificate for ``names`` (DNS names or IP addresses), signed by this CA:
        (certificate file, key file), both PEM."""
        assert names, "name at least one host"
        key = _key()
        alternatives: list[x509.GeneralName] = []
        for name in names:
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternatives.append(x509.DNSName(name))
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        self._issued += 1
        cert_file = self.directory / f"server-{self._issued}.pem"
        key_file = self.directory / f"server-{self._issued}.key"
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem_key(key))
        key_file.chmod(0o600)
        return cert_file, key_file

    def server_context(self, *names: str) -> ssl.SSLContext:
        """A server-side context presenting a fresh certificate for ``names``
        (default: localhost and 127.0.0.1)."""
        return server_context(*self.issue(*(names or ("localhost", "127.0.0.1"))))

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only this CA (for tests' own requests)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` for a server presenting ``cert_file`` / ``key_file``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    return context
