"""host_certificate_problems: the pki role keeps a host certificate only when it is exactly what it would issue now."""
from __future__ import annotations

import copy

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.isobar.pipeline.plugins.filter.host_certificate import host_certificate_problems

CA_SKI = "4b:f6:4d:51:6a:72:ca:3a:11:fa:b0:35:77:ab:40:da:3c:dc:1b:f5"
KEY_FP = "e6:fc:ba:39:34:e4:0c:32:90:f2:71:de:9a:2a:6d:eb:63:3e:f2:89:97:a7:57:3a:13:51:3f:b9:63:a2:ae:57"
# x509_certificate_info (valid_at renew: +30d) of a certificate the role issued (community.crypto 2.x field names).
INFO = {
    "subject": {"commonName": "kafka1"},
    "subject_alt_name": ["DNS:kafka1", "DNS:localhost", "IP:127.0.0.1", "IP:172.30.10.11"],
    "key_usage": ["Digital Signature", "Key Encipherment"], "key_usage_critical": False,
    "extended_key_usage": ["TLS Web Client Authentication", "TLS Web Server Authentication"],
    "extended_key_usage_critical": False, "basic_constraints": None, "ocsp_must_staple": None,
    "authority_key_identifier": CA_SKI, "signature_algorithm": "sha256WithRSAEncryption", "version": 3,
    "public_key_fingerprints": {"sha256": KEY_FP, "sha1": "aa"}, "valid_at": {"renew": True},
}
EXPECTED = {
    "common_name": "kafka1", "subject_alt_names": ["DNS:kafka1", "DNS:localhost", "IP:127.0.0.1", "IP:172.30.10.11"],
    "key_usage": ["digitalSignature", "keyEncipherment"], "extended_key_usage": ["serverAuth", "clientAuth"],
    "public_key_fingerprint": KEY_FP, "issuer_key_identifier": CA_SKI, "force": False,
}


def changed(**changes):
    info = copy.deepcopy(INFO)
    info.update(changes)
    return info


def test_the_certificate_the_role_issued_is_kept():
    assert host_certificate_problems(INFO, EXPECTED) == []
    # the SANs' order does not matter
    assert host_certificate_problems(changed(subject_alt_name=list(reversed(INFO["subject_alt_name"]))), EXPECTED) == []


@pytest.mark.parametrize("info, expected, reason", [
    (INFO, {**EXPECTED, "force": True}, "renewal was asked"),
    (changed(valid_at={"renew": False}), EXPECTED, "renewal window"),
    (changed(valid_at={}), EXPECTED, "renewal window"),
    (changed(authority_key_identifier="00:11"), EXPECTED, "signing CA"),
    (changed(authority_key_identifier=None), EXPECTED, "signing CA"),
    (INFO, {**EXPECTED, "issuer_key_identifier": ""}, "signing CA"),
    (changed(subject={"commonName": "kafka2"}), EXPECTED, "subject"),
    (changed(subject={"commonName": "kafka1", "organizationName": "x"}), EXPECTED, "subject"),
    (changed(subject_alt_name=INFO["subject_alt_name"][:-1]), EXPECTED, "names"),
    (INFO, {**EXPECTED, "subject_alt_names": EXPECTED["subject_alt_names"] + ["DNS:kafka.example.org"]}, "names"),
    (changed(key_usage=["Digital Signature"]), EXPECTED, "key usage"),
    (changed(key_usage_critical=True), EXPECTED, "key usage"),
    (changed(extended_key_usage=["TLS Web Server Authentication"]), EXPECTED, "extended key usage"),
    (changed(extended_key_usage_critical=True), EXPECTED, "extended key usage"),
    (changed(basic_constraints=["CA:FALSE"]), EXPECTED, "extensions"),
    (changed(signature_algorithm="sha1WithRSAEncryption"), EXPECTED, "signed with"),
    (changed(public_key_fingerprints={"sha256": "ff:ee"}), EXPECTED, "host's key"),
    (INFO, {**EXPECTED, "public_key_fingerprint": ""}, "host's key"),
])
def test_any_difference_takes_the_full_path(info, expected, reason):
    problems = host_certificate_problems(info, expected)
    assert problems and any(reason in p for p in problems), problems


@pytest.mark.parametrize("info", [None, {}, {"skipped": True, "changed": False}, "text"])
def test_no_current_certificate_takes_the_full_path(info):
    assert host_certificate_problems(info, EXPECTED) == ["there is no readable current certificate"]


def test_an_unknown_usage_or_a_missing_input_is_an_error():
    with pytest.raises(AnsibleFilterError, match="codeSigning"):
        host_certificate_problems(INFO, {**EXPECTED, "extended_key_usage": ["codeSigning"]})
    with pytest.raises(AnsibleFilterError, match="force"):
        host_certificate_problems(INFO, {k: v for k, v in EXPECTED.items() if k != "force"})
