"""Filters for the internal CA's trust bundles (roles/pki, playbooks/renew-ca.yml).

A trust bundle is PEM certificates one after the other, each block on its own lines. Joining certificates in Jinja
is easy to get wrong (a literal backslash-n instead of a newline gives one line no TLS stack can read, and Kafka then
starts with an invalid truststore), so the bundle is built and checked here: every certificate must parse, duplicates
are dropped, and the order is canonical (oldest first, then by fingerprint) so that the same set of CAs always gives
the same file, whichever one signs - a re-ordered file would restart every service that copies it for nothing.
"""
from __future__ import annotations

import re

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # the unit tests import this file without Ansible's plugin loader
    AnsibleFilterError = ValueError

PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n(?P<body>[A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----")


def _certificates(text: str, index: int) -> list[tuple[object, str]]:
    from cryptography import x509

    if not isinstance(text, str):
        raise AnsibleFilterError(f"pem_bundle: item {index} is a {type(text).__name__}, not PEM text")
    if "\\n" in text:
        raise AnsibleFilterError(f"pem_bundle: item {index} holds a literal backslash-n: join certificates with real newlines")
    found, rest = [], text
    for match in PEM_BLOCK.finditer(text):
        body = "".join(match.group("body").split())
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError as exc:
            raise AnsibleFilterError(f"pem_bundle: certificate {len(found) + 1} of item {index} does not parse: {exc}") from None
        found.append((cert, pem))
        rest = rest.replace(match.group(0), "", 1)
    if not found:
        raise AnsibleFilterError(f"pem_bundle: item {index} holds no PEM certificate")
    if rest.strip():
        raise AnsibleFilterError(f"pem_bundle: item {index} holds text outside its certificates: {rest.strip()[:60]!r}")
    return found


def pem_bundle(texts) -> str:
    """One bundle of every certificate in `texts` (see the module docstring)."""
    from cryptography.hazmat.primitives import hashes

    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise AnsibleFilterError("pem_bundle: expects a list of PEM texts")
    if not texts:
        raise AnsibleFilterError("pem_bundle: no certificate given")
    unique = {}
    for index, text in enumerate(texts, start=1):
        for cert, pem in _certificates(text, index):
            fingerprint = cert.fingerprint(hashes.SHA256()).hex()
            unique[fingerprint] = (cert.not_valid_before_utc, fingerprint, pem)
    return "".join(pem for dummy, dummy, pem in sorted(unique.values()))


def pem_fingerprints(text) -> list[str]:
    """SHA-256 fingerprints (hex, lower case) of the certificates of one PEM text, in file order."""
    from cryptography.hazmat.primitives import hashes

    return [cert.fingerprint(hashes.SHA256()).hex() for cert, dummy in _certificates(text, 1)]


class FilterModule:
    """PEM trust bundles."""

    def filters(self):
        return {"pem_bundle": pem_bundle, "pem_fingerprints": pem_fingerprints}
