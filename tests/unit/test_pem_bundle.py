"""The CA trust bundle (plugins/filter/pem_bundle.py, roles/pki/tasks/trust_bundle.yml) on the controller.

During a CA renewal (playbooks/renew-ca.yml) every host trusts two CAs with the same name (the old and the new key)
from one PEM file. These tests build that file the way the pki role does (ansible-playbook, the role's own task file)
and read it back with the stacks that use it: OpenSSL (openssl verify, Python's ssl - kafka-python, nginx, curl) and
Java's PKIX trust manager on a PEM truststore (Kafka brokers, Kafdrop). A bundle joined with a literal backslash-n is
refused by the filter, and the tests show why: OpenSSL then trusts nothing.
"""
from __future__ import annotations

import datetime
import json
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.isobar.pipeline.plugins.filter.pem_bundle import pem_bundle, pem_fingerprints

ROOT = Path(__file__).resolve().parents[2]
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Isobar test internal CA")])


def make_ca(days_ago: int = 0):
    """A CA like the pki role's (same name for every generation, a new key each time)."""
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder().subject_name(CA_NAME).issuer_name(CA_NAME).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca, name: str = "kafka1"):
    ca_key, ca_cert = ca
    now = datetime.datetime.now(datetime.timezone.utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(CA_NAME).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=10))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))


def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def pki():
    old, new = make_ca(days_ago=2), make_ca()
    return {"old": old, "new": new, "old_leaf": make_leaf(old), "new_leaf": make_leaf(new)}


def openssl_verify(bundle: Path, leaf, tmp_path: Path) -> subprocess.CompletedProcess:
    leaf_file = tmp_path / f"leaf-{leaf.serial_number}.pem"
    leaf_file.write_text(pem(leaf))
    return subprocess.run(["openssl", "verify", "-CAfile", str(bundle), str(leaf_file)], capture_output=True, text=True)


def test_bundle_has_each_certificate_on_its_own_lines_and_parses(pki):
    bundle = pem_bundle([pem(pki["old"][1]), pem(pki["new"][1])])
    assert "\\n" not in bundle and bundle.endswith("-----END CERTIFICATE-----\n")
    assert bundle.count("-----BEGIN CERTIFICATE-----\n") == 2
    assert "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n" in bundle
    assert [c.serial_number for c in x509.load_pem_x509_certificates(bundle.encode())] == \
        [pki["old"][1].serial_number, pki["new"][1].serial_number]


def test_order_is_canonical_and_duplicates_are_dropped(pki):
    old, new = pem(pki["old"][1]), pem(pki["new"][1])
    assert pem_bundle([new, old]) == pem_bundle([old, new]) == pem_bundle([old, new + old, new])
    # A single CA gives the file the pki role always wrote (no restart when this code first runs).
    assert pem_bundle([old.rstrip("\n")]) == old


def test_fingerprints_in_file_order(pki):
    bundle = pem_bundle([pem(pki["new"][1]), pem(pki["old"][1])])
    assert pem_fingerprints(bundle) == [pki["old"][1].fingerprint(hashes.SHA256()).hex(),
                                        pki["new"][1].fingerprint(hashes.SHA256()).hex()]


@pytest.mark.parametrize("bad, message", [
    ([], "no certificate given"),
    ("-----BEGIN CERTIFICATE-----", "expects a list"),
    (["not a certificate"], "holds no PEM certificate"),
    (["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"], "does not parse"),
])
def test_bad_input_is_refused(bad, message):
    with pytest.raises(Exception, match=message):
        pem_bundle(bad)


def test_literal_backslash_n_join_is_refused_and_would_trust_nothing(pki, tmp_path):
    """The earlier attempt's bug: '\\n'.join in Jinja wrote a literal backslash-n between the blocks."""
    broken = "\\n".join([pem(pki["old"][1]).strip(), pem(pki["new"][1]).strip()])
    with pytest.raises(Exception, match="literal backslash-n"):
        pem_bundle([broken])
    bad_file = tmp_path / "broken.pem"
    bad_file.write_text(broken)
    assert openssl_verify(bad_file, pki["new_leaf"], tmp_path).returncode != 0
    with pytest.raises(Exception, match="text outside its certificates"):
        pem_bundle([pem(pki["old"][1]) + "garbage\n"])


@pytest.fixture(scope="module")
def role_bundle(pki, tmp_path_factory):
    """The bundle as the pki role writes it: its trust_bundle.yml run by ansible-playbook on this machine, with a
    controller CA directory in the middle of a renewal (ca.crt signing, ca-next.crt introduced)."""
    work = tmp_path_factory.mktemp("pki")
    ca_dir, host_dir = work / "ca", work / "host"
    ca_dir.mkdir()
    host_dir.mkdir()
    (ca_dir / "ca.crt").write_text(pem(pki["old"][1]))
    (ca_dir / "ca-next.crt").write_text(pem(pki["new"][1]))
    playbook = work / "bundle.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.include_role:\n        name: isobar.pipeline.pki\n        tasks_from: trust_bundle.yml\n")
    env_file = work / "extra.json"
    env_file.write_text(json.dumps({"pki_ca_dir": str(ca_dir), "pki_host_dir": str(host_dir),
                                    "ansible_python_interpreter": sys.executable}))
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", str(playbook),
                           "-e", f"@{env_file}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return host_dir / "ca.crt"


def test_role_bundle_trusts_both_generations_with_openssl(pki, role_bundle, tmp_path):
    text = role_bundle.read_text()
    assert len(x509.load_pem_x509_certificates(text.encode())) == 2
    for leaf in (pki["old_leaf"], pki["new_leaf"]):
        result = openssl_verify(role_bundle, leaf, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    context = ssl.create_default_context(cafile=str(role_bundle))
    assert context.cert_store_stats()["x509_ca"] == 2


def test_the_new_ca_alone_refuses_an_old_leaf(pki, tmp_path):
    only_new = tmp_path / "new.pem"
    only_new.write_text(pem_bundle([pem(pki["new"][1])]))
    assert openssl_verify(only_new, pki["new_leaf"], tmp_path).returncode == 0
    assert openssl_verify(only_new, pki["old_leaf"], tmp_path).returncode != 0


JAVA_CHECK = r"""
import java.io.FileInputStream;
import java.security.KeyStore;
import java.security.cert.*;
import java.util.*;
import javax.net.ssl.*;

public class TrustCheck {
    // Trust anchors from a PEM file, as Kafka's PEM truststore loads them; then the PKIX trust manager on a chain.
    // Pairs of arguments: a PEM file of trust anchors (loaded as Kafka's PEM truststore loads them) and a
    // comma-separated chain; prints one line per pair from the PKIX trust manager.
    public static void main(String[] args) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        for (int p = 0; p + 1 < args.length; p += 2) {
            KeyStore ks = KeyStore.getInstance("PKCS12");
            ks.load(null, null);
            int i = 0;
            try (FileInputStream in = new FileInputStream(args[p])) {
                for (Certificate c : cf.generateCertificates(in)) ks.setCertificateEntry("ca" + i++, c);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
            tmf.init(ks);
            X509TrustManager tm = (X509TrustManager) tmf.getTrustManagers()[0];
            List<X509Certificate> chain = new ArrayList<>();
            for (String f : args[p + 1].split(",")) {
                try (FileInputStream in = new FileInputStream(f)) { chain.add((X509Certificate) cf.generateCertificate(in)); }
            }
            try {
                tm.checkServerTrusted(chain.toArray(new X509Certificate[0]), "RSA");
                System.out.println("trusted anchors=" + i);
            } catch (CertificateException e) {
                System.out.println("refused anchors=" + i);
            }
        }
    }
}
"""


@pytest.mark.skipif(shutil.which("java") is None, reason="no java on this machine: Java's trust manager is not checked")
def test_java_pkix_trusts_both_generations_from_the_role_bundle(pki, role_bundle, tmp_path):
    source = tmp_path / "TrustCheck.java"
    source.write_text(JAVA_CHECK)
    files = {}
    for name in ("old", "new"):
        files[name] = tmp_path / f"{name}-ca.pem"
        files[name].write_text(pem(pki[name][1]))
        files[name + "_leaf"] = tmp_path / f"{name}-leaf.pem"
        files[name + "_leaf"].write_text(pem(pki[name + "_leaf"]))
    only_new = tmp_path / "only-new.pem"
    only_new.write_text(pem_bundle([pem(pki["new"][1])]))

    cases = [  # the chain a broker sends: its certificate, then the CA that issued it (issuer.crt)
        (role_bundle, [files["old_leaf"], files["old"]], "trusted anchors=2"),
        (role_bundle, [files["new_leaf"], files["new"]], "trusted anchors=2"),
        (role_bundle, [files["new_leaf"]], "trusted anchors=2"),
        (only_new, [files["old_leaf"], files["old"]], "refused anchors=1"),
        (only_new, [files["new_leaf"], files["new"]], "trusted anchors=1"),
    ]
    args = [str(arg) for bundle, chain, _ in cases for arg in (bundle, ",".join(map(str, chain)))]
    out = subprocess.run(["java", str(source), *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:len(cases)] == [expected for _, _, expected in cases]
