"""CA renewal verify (issue 14.7), for the side effect molecule/shared/rotation-with-ca-renewal.yml: the rotation
scenario's side effect plus a CA renewal (playbooks/renew-ca.yml: stage trust, the traffic's client given both CAs,
then leaves with new host keys and retire) under the same continuous acks=all traffic.

Opt-in, not in make test (the side effect takes 20 min against the plain rotation's 7): `make test-ca-renewal` runs
the Molecule scenario ca_renewal, which verifies with tests/lab/rotation (whose fixtures these tests share) and then
this directory. The traffic check (sent = acked = consumed, 0 failed) is
test_rotation.py::test_kafka_traffic_lost_nothing_and_never_failed, over the whole window.

* only the new CA is trusted: every CA file of every host (ca.crt, system store, Kafka truststore, Telegraf's CA);
* every TLS port serves a certificate the new CA alone verifies and the old CA refuses;
* a client certificate from the old CA is refused by the brokers' mutual-TLS listener, one from the new CA answered;
* every host has a new key (tls_new_keys);
* a second renewal run changes nothing; unsafe requests are refused and change nothing.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from fixtures.playbook_run import run_playbook
from fixtures.rotation import Secret, ephemeral, lab, old  # noqa: F401  (fixtures lab, old)

testinfra_hosts = ["ansible://kafka_brokers"]


# --- CA renewal (playbooks/renew-ca.yml, in the side effect after the secrets) ------------------
@pytest.fixture(scope="module")
def ca(inventory_vars, old):
    """The CAs: the old one (recorded before, now retired on the controller) and the new signing one."""
    from cryptography import x509

    facts = inventory_vars("kafka1", "isobar_environment", "isobar_ca_passphrase")
    ca_dir = Path.home() / ".local" / "share" / "isobar" / facts["isobar_environment"] / "pki"
    old_pem = (ephemeral() / "old-ca.crt").read_text()
    new_pem = (ca_dir / "ca.crt").read_text()
    return {"dir": ca_dir, "passphrase": Secret(facts["isobar_ca_passphrase"]), "old_pem": old_pem, "new_pem": new_pem,
            "old": x509.load_pem_x509_certificate(old_pem.encode()), "new": x509.load_pem_x509_certificate(new_pem.encode())}


def fingerprints(text: str) -> list[str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return [c.fingerprint(hashes.SHA256()).hex() for c in x509.load_pem_x509_certificates(text.encode())]


def test_ca_renewal_left_one_new_ca_on_the_controller(ca, old):
    from cryptography.hazmat.primitives import hashes

    assert ca["new"].serial_number != ca["old"].serial_number
    assert ca["new"].public_key().public_numbers() != ca["old"].public_key().public_numbers()
    assert ca["old"].fingerprint(hashes.SHA256()).hex() == old["ca_fingerprint"].replace(":", "").lower()
    names = sorted(p.name for p in ca["dir"].iterdir())
    assert not [n for n in names if n.startswith(("ca-next", "ca-previous"))], names
    assert (ca["dir"] / "retired" / f"{ca['old'].serial_number:x}.crt").exists()


def test_only_the_new_ca_is_trusted_everywhere(lab, lab_host, ca):
    """Every CA file a service or client reads holds the new CA and nothing else."""
    new = fingerprints(ca["new_pem"])
    problems = []
    for name in lab["groups"]["all"]:
        files = ["/etc/isobar/pki/ca.crt", "/usr/local/share/ca-certificates/isobar-ca.crt"]
        files += ["/etc/kafka/ssl/ca.pem"] if name in lab["groups"]["kafka_brokers"] else []
        files += ["/etc/telegraf/ca.crt"] if name in lab["groups"]["telegraf"] else []
        for path in files:
            found = fingerprints(lab_host(name).file(path).content_string)
            if found != new:
                problems.append(f"{name}:{path} trusts {len(found)} CA(s), {'not ' if new[0] not in found else ''}the new one")
    assert not problems, problems


def tls_endpoints(lab):
    groups = lab["groups"]
    endpoints = [(b, lab["kafka_client_port"]) for b in groups["kafka_brokers"]]
    endpoints += [(h, lab["influxdb_port"]) for h in groups["influxdb"]]
    endpoints += [(h, lab["kafdrop_port"]) for h in groups["kafdrop"]]
    return endpoints + [(groups["pipeline"][0], lab["alert_receiver_port"])]


def test_every_service_serves_a_certificate_the_new_ca_alone_verifies_and_the_old_ca_refuses(lab, lab_host, ca):
    asker = lab_host(lab["groups"]["influxdb"][0])
    for which in ("old", "new"):
        assert asker.run(f"echo {base64.b64encode(ca[which + '_pem'].encode()).decode()} | base64 -d > /tmp/isobar-test-{which}-ca.pem").rc == 0
    problems = []
    try:
        for name, port in tls_endpoints(lab):
            for which, expected in (("new", "Verify return code: 0 (ok)"), ("old", None)):
                out = asker.run(f"openssl s_client -connect {lab['addresses'][name]}:{port} -servername {name} "
                                f"-CAfile /tmp/isobar-test-{which}-ca.pem </dev/null 2>/dev/null | grep -F 'Verify return code'").stdout.strip()
                # s_client prints the verdict again after a TLS 1.3 session ticket: every line must agree.
                verdicts = {line.strip() for line in out.splitlines()}
                if not out:
                    problems.append(f"{name}:{port}: no TLS answer")
                elif expected and verdicts != {expected}:
                    problems.append(f"{name}:{port} with the new CA: {out}")
                elif not expected and any(v.startswith("Verify return code: 0 ") for v in verdicts):
                    problems.append(f"{name}:{port} still verifies with the old CA")
    finally:
        asker.run("rm -f /tmp/isobar-test-old-ca.pem /tmp/isobar-test-new-ca.pem")
    assert not problems, problems


MTLS_PROBE = r"""
import socket, ssl, struct, sys
address, port, cert, key, ca = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.load_verify_locations(ca)
ctx.load_cert_chain(cert, key)
try:
    with socket.create_connection((address, int(port)), timeout=15) as raw, ctx.wrap_socket(raw) as tls:
        body = struct.pack(">hhih", 18, 0, 7, 5) + b"probe"  # ApiVersions v0, correlation id 7, client id "probe"
        tls.sendall(struct.pack(">i", len(body)) + body)
        head = tls.recv(8)
        print("answered" if len(head) == 8 and struct.unpack(">ii", head)[1] == 7 else f"no answer {head!r}")
except (OSError, ssl.SSLError) as exc:
    print(f"refused {type(exc).__name__}: {exc}")
"""


def client_certificate(ca_pem: str, ca_key_pem: bytes, passphrase: str) -> tuple[str, str]:
    """A throw-away client certificate (clientAuth) signed by the given CA: (certificate PEM, key PEM)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    issuer = x509.load_pem_x509_certificate(ca_pem.encode())
    issuer_key = serialization.load_pem_private_key(ca_key_pem, password=passphrase.encode())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "isobar-test-probe")]))
            .issuer_name(issuer.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
            .sign(issuer_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())


def test_a_client_certificate_from_the_old_ca_is_refused_by_the_brokers(lab, lab_host, ca):
    """On the controller listener (mutual TLS, reachable from the brokers only): a certificate the retired CA signed
    is refused at the handshake; one the new CA signs gets a Kafka answer (the same probe, so the refusal is the CA's)."""
    old_key = (ca["dir"] / "retired" / f"{ca['old'].serial_number:x}.key").read_bytes()
    new_key = (ca["dir"] / "ca.key").read_bytes()
    probes = {"old": client_certificate(ca["old_pem"], old_key, ca["passphrase"]),
              "new": client_certificate(ca["new_pem"], new_key, ca["passphrase"])}
    brokers = lab["groups"]["kafka_brokers"]
    prober, target = lab_host(brokers[1]), brokers[0]
    files = {"probe.py": MTLS_PROBE}
    for which, (cert, key) in probes.items():
        files[f"{which}.crt"], files[f"{which}.key"] = cert, key
    assert prober.run("install -d -m 0700 /tmp/isobar-mtls-probe").rc == 0
    results = {}
    try:
        for name, text in files.items():
            assert prober.run(f"echo {base64.b64encode(text.encode()).decode()} | base64 -d > /tmp/isobar-mtls-probe/{name}").rc == 0
        for which in probes:
            results[which] = prober.run(
                f"python3 /tmp/isobar-mtls-probe/probe.py {lab['addresses'][target]} 9093 /tmp/isobar-mtls-probe/{which}.crt "
                f"/tmp/isobar-mtls-probe/{which}.key /etc/isobar/pki/ca.crt").stdout.strip()
    finally:
        prober.run("rm -rf /tmp/isobar-mtls-probe")
    assert results["new"] == "answered", results
    assert results["old"].startswith("refused"), results


def test_every_host_has_a_new_key(lab, lab_host, old):
    """tls_new_keys: the certificates the hosts have now carry other public keys than before."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    same = []
    for name in lab["groups"]["all"]:
        cert = x509.load_pem_x509_certificate(lab_host(name).file("/etc/isobar/pki/host.crt").content_string.encode())
        spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if hashlib.sha256(spki).hexdigest() == old["public_keys"][name].replace(":", "").lower():
            same.append(name)
    assert not same, f"same key as before the rotation: {same}"


def test_ca_renewal_again_changes_nothing_and_unsafe_requests_are_refused(inventory_path, ca):
    for extra in (None, {"ca_replace_serial": f"{ca['old'].serial_number:x}"}, {"ca_stop_after": "trust"}):
        run = run_playbook(inventory_path, "renew-ca.yml", extra).assert_ok()
        assert not run.changed, (extra, run.changed)
    before = sorted(p.name for p in ca["dir"].rglob("*"))
    for playbook, extra, message in (
            ("renew-ca.yml", {"ca_stop_after": "everything"}, "ca_stop_after='everything'"),
            ("renew-ca.yml", {"ca_replace_serial": "abcdef0123"}, "no such CA"),
            ("rotate-secrets.yml", {"rotate": "all", "tls_new_keys": True}, "add tls to -e rotate=")):
        run = run_playbook(inventory_path, playbook, extra)
        assert run.rc != 0 and any(message in str(m) and "Nothing was changed" in str(m) for m in run.failed.values()), \
            (extra, run.failed)
        assert not run.changed, extra
    assert sorted(p.name for p in ca["dir"].rglob("*")) == before
