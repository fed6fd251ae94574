"""Kafka brokers of the lab: service, files, quorum, security (TLS, SCRAM, ACLs, firewall), topics.

Cluster checks connect from the machine running the tests (the controller, on the lab network) to the
brokers' client listener with kafka-python; addresses and secrets come from the inventory through
Ansible (tests/lab/conftest.py), never from this file.
"""
from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

import pytest
from fixtures.prerequisites import require_module

testinfra_hosts = ["ansible://kafka_brokers"]

ROOT = Path(__file__).resolve().parents[3]
from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_client  # fails fast and precisely on a refused password

kafka = require_module("kafka", "kafka-python is needed on the machine running the verify tests")
from kafka.errors import KafkaError, SaslAuthenticationFailedError, TopicAuthorizationFailedError  # noqa: E402


@pytest.fixture(scope="module")
def cluster(inventory_vars, lab_host):
    """Connection facts from the inventory, and the CA copied from the first broker."""
    facts = inventory_vars("kafka1", "kafka_bootstrap_servers", "kafka_scram_passwords", "kafka_admin_user",
                           "kafka_weather_topic", "kafka_telegraf_topic", "kafka_telegraf_user", "kafka_consumer_user",
                           "kafka_ca_file", "kafka_controller_port", "kafka_replication_port", "groups")
    ca_pem = lab_host("kafka1").file(facts["kafka_ca_file"]).content_string
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(ca_pem)
    facts["ca_file"] = handle.name
    facts["brokers"] = facts["groups"]["kafka_brokers"]
    facts["addresses"] = [s.rsplit(":", 1)[0] for s in facts["kafka_bootstrap_servers"].split(",")]
    yield facts
    Path(handle.name).unlink(missing_ok=True)


def params(cluster, user=None, password=None):
    user = user or cluster["kafka_admin_user"]
    return {
        "bootstrap_servers": cluster["kafka_bootstrap_servers"].split(","),
        "sasl_username": user,
        "sasl_password": password if password is not None else cluster["kafka_scram_passwords"][user],
        "sasl_mechanism": "SCRAM-SHA-512", "ssl_cafile": cluster["ca_file"], "ssl_check_hostname": True,
        "api_version": "4.0", "connect_timeout": 15, "request_timeout": 30,
    }


@pytest.fixture(scope="module")
def admin(cluster):
    client = kafka_client.open_admin_client(params(cluster))
    yield client
    client.close()


# --- on every broker ---------------------------------------------------------------------------

def test_service_is_active_and_enabled(host):
    service = host.service("kafka")
    assert service.is_running and service.is_enabled


def test_jvm_is_the_release_openjdk(host):
    """OpenJDK 17 on Debian 12, 21 on Debian 13 (roles/kafka/vars/Debian-<N>.yml), run by its own path."""
    release = dict(line.split("=", 1) for line in host.file("/etc/os-release").content_string.splitlines() if "=" in line)
    java_version = {"12": "17", "13": "21"}[release["VERSION_ID"].strip('"')]
    java = [p for p in host.process.filter(comm="java") if "kafka.Kafka" in p.args]
    assert len(java) == 1
    # The unit starts the JVM by its full path: argv[0]. (/proc/<pid>/exe of the kafka user's process is not readable
    # by root in a lab container without CAP_SYS_PTRACE.)
    expected = f"/usr/lib/jvm/java-{java_version}-openjdk-amd64/bin/java"
    assert java[0].args.split()[0] == expected
    assert host.file(expected).exists
    assert host.package(f"openjdk-{java_version}-jre-headless").is_installed


def test_jvm_runs_as_the_service_user_without_a_shell(host):
    java = [p for p in host.process.filter(comm="java") if "kafka.Kafka" in p.args]
    assert len(java) == 1 and java[0].user == "kafka"
    assert host.user("kafka").shell in ("/usr/sbin/nologin", "/bin/false")


def test_listeners(host):
    assert host.socket("tcp://0.0.0.0:9092").is_listening
    assert host.socket("tcp://0.0.0.0:9093").is_listening
    assert host.socket("tcp://0.0.0.0:9094").is_listening


def test_secret_files_are_private_to_kafka(host):
    secret = host.file("/etc/kafka/ssl/keystore.pem")
    assert secret.user == "kafka" and secret.mode == 0o600


def test_brokers_replicate_over_mutual_tls(host):
    """Brokers fetch from each other on REPLICATION (TLS, client certificate required: they are User:<CN>)."""
    with host.sudo():
        props = host.file("/etc/kafka/server.properties").content_string
    assert "inter.broker.listener.name=REPLICATION\n" in props
    assert "REPLICATION:SSL" in props and "listener.name.replication.ssl.client.auth=required\n" in props


def test_no_broker_file_holds_the_admin_password(host, inventory_vars):
    """The admin is the automation's login only: no broker stores its password (rotating it restarts nothing)."""
    facts = inventory_vars("kafka1", "kafka_scram_passwords", "kafka_admin_user")
    password = facts["kafka_scram_passwords"][facts["kafka_admin_user"]]
    with host.sudo():
        found = host.run("grep -rlF -- %s /etc/kafka /etc/systemd/system/kafka.service", password)
        jaas = host.file("/etc/kafka/kafka_server_jaas.conf").exists
    assert found.rc == 1 and found.stdout == "", f"admin password found in {found.stdout.split()}"
    assert not jaas


def test_storage_is_formatted_with_this_node_id(host):
    meta = host.file("/var/lib/kafka/data/meta.properties").content_string
    node_id = host.ansible.get_variables()["kafka_node_id"]
    assert f"node.id={node_id}\n" in meta


# --- the cluster, from the controller ---------------------------------------------------------

def test_quorum_has_three_voters_and_a_leader(admin, cluster):
    partition = admin.describe_metadata_quorum()["topics"][0]["partitions"][0]
    voters = sorted(v["replica_id"] for v in partition["current_voters"])
    assert len(voters) == len(cluster["brokers"]) == 3
    assert partition["leader_id"] in voters


def test_three_brokers_registered(admin):
    brokers = admin.describe_cluster()["brokers"]
    assert len(brokers) == 3 and not any(b["is_fenced"] for b in brokers)


def test_weather_has_4_partitions_of_3_replicas_all_in_sync(admin, cluster):
    info = admin.describe_topics([cluster["kafka_weather_topic"]])[0]
    assert info["error_code"] == 0
    partitions = info["partitions"]
    assert len(partitions) == 4
    for partition in partitions:
        assert len(partition["replica_nodes"]) == 3
        assert sorted(partition["isr_nodes"]) == sorted(partition["replica_nodes"])


def test_plaintext_connection_is_refused(cluster):
    from kafka import KafkaAdminClient

    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=cluster["kafka_bootstrap_servers"].split(","), security_protocol="PLAINTEXT",
                         api_version=(4, 0), bootstrap_timeout_ms=8000, request_timeout_ms=5000).close()


def test_wrong_scram_password_is_refused(cluster):
    error = kafka_client.try_login(params(cluster, password="definitely-not-the-password"), cluster["kafka_admin_user"],
                                   "definitely-not-the-password")
    assert isinstance(error, SaslAuthenticationFailedError), repr(error)


def test_service_users_log_in(cluster):
    for user in ("kafka_telegraf_user", "kafka_consumer_user"):
        name = cluster[user]
        assert kafka_client.try_login(params(cluster, name), name, cluster["kafka_scram_passwords"][name]) is None, name


def test_principal_without_acl_is_denied(cluster):
    """consumer may describe weather (its ACL) but not weather-telegraf; telegraf may not produce to weather."""
    from kafka import KafkaProducer

    consumer = cluster["kafka_consumer_user"]
    client = kafka_client.open_admin_client(params(cluster, consumer))
    try:
        allowed, denied = client.describe_topics([cluster["kafka_weather_topic"], cluster["kafka_telegraf_topic"]])
    finally:
        client.close()
    assert allowed["error_code"] == 0
    assert denied["error_code"] == TopicAuthorizationFailedError.errno

    telegraf = cluster["kafka_telegraf_user"]
    producer = KafkaProducer(bootstrap_servers=cluster["kafka_bootstrap_servers"].split(","), security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=telegraf,
                             sasl_plain_password=cluster["kafka_scram_passwords"][telegraf], ssl_cafile=cluster["ca_file"],
                             api_version=(4, 0), acks="all", max_block_ms=15000)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(cluster["kafka_weather_topic"], b"must be refused").get(timeout=20)
    finally:
        producer.close(timeout=5)


@pytest.mark.parametrize("port_name", ["kafka_controller_port", "kafka_replication_port"])
def test_broker_only_ports_are_closed_to_non_brokers(cluster, port_name):
    """9093 (controllers) and 9094 (replication) accept the brokers only; this machine is a client, so it must not
    get in."""
    from concurrent.futures import ThreadPoolExecutor

    def connect(address):
        # The firewall drops: a closed port costs the whole timeout, so the brokers are tried side by side.
        with socket.socket() as sock:
            sock.settimeout(3)
            return sock.connect_ex((address, int(cluster[port_name])))

    with ThreadPoolExecutor(len(cluster["addresses"])) as pool:
        results = dict(zip(cluster["addresses"], pool.map(connect, cluster["addresses"])))
    assert len(results) >= 3 and all(rc != 0 for rc in results.values()), results


# Runs on a broker: TLS handshake to the replication listener, then one read. Without a client certificate the
# broker alerts (bad certificate); with one it waits for a Kafka request (the read times out: "open").
TLS_PROBE = """
import socket, ssl, sys
ctx = ssl.create_default_context(cafile="/etc/kafka/ssl/ca.pem")
ctx.check_hostname = False
if len(sys.argv) > 1:
    ctx.load_cert_chain(sys.argv[1])
try:
    with socket.create_connection(("127.0.0.1", 9094), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        tls.settimeout(5)
        try:
            print("closed" if tls.recv(1) == b"" else "data")
        except socket.timeout:
            print("open")
except (ssl.SSLError, OSError) as exc:
    print("refused", exc)
"""


def test_replication_listener_requires_a_client_certificate(host):
    """On a broker (inside the firewall) a TLS client without a certificate is refused; the broker's own is taken."""
    with host.sudo():
        without = host.check_output("python3 -c %s", TLS_PROBE)
        with_cert = host.check_output("python3 -c %s /etc/kafka/ssl/keystore.pem", TLS_PROBE)
    assert without.startswith(("refused", "closed")), without
    assert with_cert == "open", with_cert
