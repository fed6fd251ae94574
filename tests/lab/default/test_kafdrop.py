"""Kafdrop on the kafdrop hosts: the nginx front (TLS, basic auth), files and user, and Kafdrop itself when the
inventory enables it. Without a jar the lab disables the service on purpose and the role writes the reason to
/etc/kafdrop/DISABLED: the 200 check is then reported as skipped with that reason, never as passed."""
from __future__ import annotations

import base64
import ssl
import time
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

testinfra_hosts = ["ansible://kafdrop"]


@pytest.fixture(scope="module")
def front(inventory_vars, lab_host):
    groups = inventory_vars("localhost", "groups")["groups"]
    name = groups["kafdrop"][0]
    facts = inventory_vars(name, "isobar_address", "kafdrop_port", "kafdrop_basic_auth_user",
                           "kafdrop_basic_auth_password", "kafdrop_client_networks", "kafka_ca_file",
                           "kafka_weather_topic")
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(lab_host(name).file(facts["kafka_ca_file"]).content_string)
    facts["context"] = ssl.create_default_context(cafile=handle.name)
    facts["url"] = f"https://{facts['isobar_address']}:{facts['kafdrop_port']}/"
    # The service's state is decided by the role (kafdrop_service_enabled depends on the role's kafdrop_version,
    # which the inventory alone cannot resolve): a disabled service leaves its reason on the host.
    note = lab_host(name).file("/etc/kafdrop/DISABLED")
    facts["enabled"] = not note.exists
    facts["disabled_reason"] = note.content_string.strip() if note.exists else ""
    yield facts
    Path(handle.name).unlink(missing_ok=True)


def get(front, user=None, password=None, path=""):
    request = urllib.request.Request(front["url"] + path)
    if user is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, context=front["context"], timeout=30) as response:
            return response.status, response.read().decode(errors="replace"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)


def test_nginx_is_active_and_enabled(host):
    nginx = host.service("nginx")
    assert nginx.is_running and nginx.is_enabled


def test_only_the_front_port_is_public(host, front):
    assert host.socket(f"tcp://0.0.0.0:{front['kafdrop_port']}").is_listening
    assert not host.socket("tcp://0.0.0.0:80").is_listening, "Debian's default site still listens on 80"
    nginx_ports = [line for line in host.check_output("ss -Htlnp").splitlines() if '"nginx"' in line]
    assert all(f":{front['kafdrop_port']} " in line for line in nginx_ports), nginx_ports


def test_firewall_opens_the_front_to_the_client_networks_only(host, front):
    rules = host.file("/etc/nftables.d/kafdrop.nft").content_string
    assert f"dport {{ {front['kafdrop_port']} }}" in rules
    for network in front["kafdrop_client_networks"]:
        assert network in rules


def test_user_and_secret_files(host):
    assert host.user("kafdrop").shell in ("/usr/sbin/nologin", "/bin/false")
    props = host.file("/etc/kafdrop/kafka.properties")
    assert props.user == "kafdrop" and props.mode == 0o600
    htpasswd = host.file("/etc/nginx/isobar/kafdrop.htpasswd")
    assert htpasswd.user == "root" and htpasswd.group == "www-data" and htpasswd.mode == 0o640
    key = host.file("/etc/nginx/isobar/kafdrop.key")
    assert key.user == "root" and key.mode == 0o600


def test_kafka_properties_use_sasl_ssl_with_a_pem_truststore(host):
    with host.sudo():
        props = host.file("/etc/kafdrop/kafka.properties").content_string
    assert "security.protocol=SASL_SSL" in props and "sasl.mechanism=SCRAM-SHA-512" in props
    assert "ssl.truststore.type=PEM" in props and "ssl.truststore.password" not in props
    for jks in ("kafka.truststore.jks", "kafka.keystore.jks"):
        assert not host.file(f"/var/lib/kafdrop/{jks}").exists


def test_unit_is_installed_and_its_state_follows_the_inventory(host, front):
    assert host.file("/etc/systemd/system/kafdrop.service").exists
    service = host.service("kafdrop")
    if front["enabled"]:
        assert service.is_running and service.is_enabled
        assert host.socket("tcp://127.0.0.1:9001").is_listening
        assert not host.socket("tcp://0.0.0.0:9001").is_listening
    else:
        assert not service.is_running and not service.is_enabled, "disabled in the inventory but running"
        assert front["disabled_reason"], "disabled without a reason"


def test_front_requires_credentials(front):
    status, _, headers = get(front)
    assert status == 401
    assert "basic" in headers.get("WWW-Authenticate", "").lower()
    status, _, _ = get(front, front["kafdrop_basic_auth_user"], "not-the-password")
    assert status == 401


def test_front_serves_kafdrop_with_credentials(front):
    status, body, _ = get(front, front["kafdrop_basic_auth_user"], front["kafdrop_basic_auth_password"])
    if not front["enabled"]:
        # Authenticated but no backend: nginx answers, Kafdrop does not.
        assert status in (502, 503), f"expected 502/503 from the front without Kafdrop, got {status}"
        pytest.skip(f"Kafdrop is disabled in the inventory: {front['disabled_reason']}")
    assert status == 200, body[:500]
    assert "Kafdrop" in body
    assert front["kafka_weather_topic"] in body, "Kafdrop does not list the weather topic (SASL_SSL or ACL problem)"
    status, body, _ = get(front, front["kafdrop_basic_auth_user"], front["kafdrop_basic_auth_password"],
                          "actuator/health")
    assert status == 200 and '"UP"' in body


# --- Kafdrop's loopback port: nginx only ----------------------------------------------------------
BACKEND_PORT = 9001
STAND_IN_UNIT = "isobar-test-kafdrop-stand-in"


@pytest.fixture
def backend(host, front):
    """Something listening on Kafdrop's loopback port, so a refusal can only come from the firewall: Kafdrop itself,
    or - only when the lab runs without Kafdrop's jar (not obtainable here) - a stand-in HTTP server run as the
    kafdrop user on that port for the length of one test."""
    if front["enabled"]:
        yield "kafdrop"
        return
    with host.sudo():
        assert not host.socket(f"tcp://127.0.0.1:{BACKEND_PORT}").is_listening, "Kafdrop is disabled, yet its port listens"
        root = host.check_output("mktemp -d /tmp/isobar-stand-in.XXXXXX")
        host.check_output(f"echo 'kafdrop stand-in' > {root}/index.html && chmod -R a+rX {root}")
        host.check_output(f"systemd-run --unit={STAND_IN_UNIT} --uid=kafdrop --gid=kafdrop "
                          f"python3 -m http.server --bind 127.0.0.1 --directory {root} {BACKEND_PORT}")
        try:
            for _ in range(50):
                if host.socket(f"tcp://127.0.0.1:{BACKEND_PORT}").is_listening:
                    break
                time.sleep(0.2)
            yield f"stand-in (Kafdrop disabled: {front['disabled_reason']})"
        finally:
            host.run(f"systemctl stop {STAND_IN_UNIT}; rm -rf {root}")


def local_get(host, user):
    """curl Kafdrop's loopback port as a local user: (curl exit code, HTTP status)."""
    with host.sudo():
        result = host.run(f"runuser -u {user} -- curl -sS -o /dev/null -w '%{{http_code}}' --max-time 10 "
                          f"http://127.0.0.1:{BACKEND_PORT}/")
    return result.rc, result.stdout.strip()


def test_only_nginx_reaches_kafdrop_on_loopback(host, backend):
    """Kafdrop has no login: any other local user is reset by the output rule, nginx's user gets through."""
    assert local_get(host, "www-data") == (0, "200"), f"nginx's user cannot reach {backend}"
    rc, status = local_get(host, "nobody")
    assert rc == 7 and status == "000", f"user nobody reached {backend} directly: curl rc {rc}, HTTP {status}"


def test_front_reaches_kafdrop_through_the_output_rule(front, backend):
    status, body, _ = get(front, front["kafdrop_basic_auth_user"], front["kafdrop_basic_auth_password"])
    assert status == 200, f"front -> {backend}: {status} {body[:300]}"
