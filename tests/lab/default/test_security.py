"""The seed's insecure defaults (question 13) are gone on the lab: checked from the controller,
which sits on the lab network like any other client."""
from __future__ import annotations

import base64
import socket
import ssl
import struct
import urllib.error
import urllib.request

import pytest

SEED_USER, SEED_PASSWORD, SEED_TOKEN = "admin", "adminpass", "mytoken"


@pytest.fixture(scope="module")
def lab(inventory_vars, lab_host, tmp_path_factory):
    groups = inventory_vars("localhost", "groups")["groups"]
    influx_host, broker = groups["influxdb"][0], groups["kafka_brokers"][0]
    ca_file = tmp_path_factory.mktemp("ca") / "ca.crt"
    ca_file.write_text(lab_host(influx_host).file("/etc/isobar/pki/ca.crt").content_string)
    return {"influx": inventory_vars(influx_host, "isobar_address", "influxdb_port"),
            "kafka": inventory_vars(broker, "isobar_address", "kafka_client_port"),
            "ca_file": str(ca_file)}


def influx_status(lab, path, headers=None, data=None):
    context = ssl.create_default_context(cafile=lab["ca_file"])
    url = f"https://{lab['influx']['isobar_address']}:{lab['influx']['influxdb_port']}{path}"
    request = urllib.request.Request(url, headers=headers or {}, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, context=context, timeout=15) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_seed_admin_password_is_rejected(lab):
    basic = base64.b64encode(f"{SEED_USER}:{SEED_PASSWORD}".encode()).decode()
    assert influx_status(lab, "/api/v2/signin", {"Authorization": f"Basic {basic}"}, data=b"") == 401


def test_seed_token_is_rejected(lab):
    assert influx_status(lab, "/api/v2/buckets", {"Authorization": f"Token {SEED_TOKEN}"}) == 401


def test_influxdb_certificate_is_signed_by_our_ca(lab):
    # A TLS client that trusts only our CA completes the handshake (hostname = the address SAN).
    assert influx_status(lab, "/health") == 200


def test_kafka_client_port_speaks_tls_only(lab):
    """A PLAINTEXT Kafka request (ApiVersions) gets no Kafka answer on 9092."""
    address, port = lab["kafka"]["isobar_address"], lab["kafka"]["kafka_client_port"]
    client_id = b"isobar-test"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id  # ApiVersions v0, correlation id 1
    with socket.create_connection((address, port), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        sock.settimeout(10)
        try:
            reply = sock.recv(64)
        except (TimeoutError, ConnectionResetError):
            reply = b""
    # A TLS server either drops the connection or answers with a TLS alert (0x15), never a Kafka frame.
    assert reply == b"" or reply[:1] == b"\x15", reply[:16]
