# Copyright: Isobar contributors
# Apache-2.0
"""Whether a host's current certificate is the one the pki role would issue now (pure Python: Jinja only renders).

    {{ pki_host_info | isobar.pipeline.host_certificate_problems(expected) }}  ->  [] when it can be kept

On a converged host the pki role would otherwise make a signing request on the host and hand it with the current
certificate to community.crypto.x509_certificate_pipe (provider ownca), whose only outcome is "keep it": two module
runs per host on every converge. The same comparison is made here from what the role has already read (the current
certificate's x509_certificate_info, the host key's fingerprint, the signing CA's key identifier), and any difference
or anything unknown sends the role down the full path (request, sign), so a doubt costs time, never a stale
certificate. ``expected`` holds:

- ``common_name``: the subject's only attribute (the inventory name);
- ``subject_alt_names``: the SANs, as x509_certificate_info prints them (``DNS:name``, ``IP:address``);
- ``key_usage`` and ``extended_key_usage``: the short names the role's request uses (digitalSignature, serverAuth...);
- ``public_key_fingerprint``: sha256 fingerprint of the host key's public key (openssl_privatekey's ``fingerprint``);
- ``issuer_key_identifier``: subject key identifier of the CA that signs now;
- ``force``: a renewal was asked for (pki_cert_force_renew, pki_key_force_renew).
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# The names x509_certificate_info reports (OpenSSL's long names) for the usages the role requests.
KEY_USAGE_NAMES = {"digitalSignature": "Digital Signature", "keyEncipherment": "Key Encipherment"}
EXTENDED_KEY_USAGE_NAMES = {"serverAuth": "TLS Web Server Authentication", "clientAuth": "TLS Web Client Authentication"}
# The ownca provider's default digest with the role's RSA CA.
SIGNATURE_ALGORITHM = "sha256WithRSAEncryption"
EXPECTED_KEYS = ("common_name", "subject_alt_names", "key_usage", "extended_key_usage", "public_key_fingerprint",
                 "issuer_key_identifier", "force")


def _long_names(short, table, what):
    try:
        return sorted(table[name] for name in short)
    except KeyError as exc:
        raise AnsibleFilterError(f"host_certificate_problems: no known name for the {what} {exc.args[0]!r}") from None


def host_certificate_problems(info, expected):
    """Why the current certificate cannot be kept (one sentence each); empty when it is what would be issued now."""
    missing = [key for key in EXPECTED_KEYS if key not in (expected or {})]
    if missing:
        raise AnsibleFilterError(f"host_certificate_problems: expected lacks {', '.join(missing)}")
    if not isinstance(info, dict) or not info.get("subject"):
        return ["there is no readable current certificate"]
    problems = []
    if expected["force"]:
        problems.append("a renewal was asked for")
    if (info.get("valid_at") or {}).get("renew") is not True:
        problems.append("it expires within the renewal window")
    if not expected["issuer_key_identifier"] or info.get("authority_key_identifier") != expected["issuer_key_identifier"]:
        problems.append("it was not issued by the signing CA")
    if info.get("subject") != {"commonName": expected["common_name"]}:
        problems.append(f"its subject is {info.get('subject')}, not CN={expected['common_name']}")
    if sorted(info.get("subject_alt_name") or []) != sorted(expected["subject_alt_names"]):
        problems.append(f"its names {info.get('subject_alt_name')} are not {expected['subject_alt_names']}")
    if sorted(info.get("key_usage") or []) != _long_names(expected["key_usage"], KEY_USAGE_NAMES, "key usage") \
            or info.get("key_usage_critical"):
        problems.append("its key usage differs")
    if sorted(info.get("extended_key_usage") or []) != _long_names(expected["extended_key_usage"],
                                                                   EXTENDED_KEY_USAGE_NAMES, "extended key usage") \
            or info.get("extended_key_usage_critical"):
        problems.append("its extended key usage differs")
    if info.get("basic_constraints") or info.get("ocsp_must_staple"):
        problems.append("it carries extensions the role does not request")
    if info.get("signature_algorithm") != SIGNATURE_ALGORITHM or info.get("version") != 3:
        problems.append("it is not a version 3 certificate signed with " + SIGNATURE_ALGORITHM)
    fingerprint = (info.get("public_key_fingerprints") or {}).get("sha256")
    if not expected["public_key_fingerprint"] or fingerprint != expected["public_key_fingerprint"]:
        problems.append("it is not for the host's key")
    return problems


class FilterModule:
    """The pki role's decision to keep a host certificate."""

    def filters(self):
        return {"host_certificate_problems": host_certificate_problems}
