"""The two Kafka client libraries of influx_to_kafka: librdkafka's settings mirror kafka-python's, failures are worded
for the user. The sending itself runs against real brokers in tests/integration/pipeline/test_influx_to_kafka.py."""
from __future__ import annotations

import datetime
import socket
import time

import pytest
from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_senders as senders

confluent_kafka = pytest.importorskip("confluent_kafka")

PARAMS = {"bootstrap_servers": ["kafka1:9093", " kafka2:9093"], "sasl_mechanism": "SCRAM-SHA-512",
          "sasl_username": "producer", "sasl_password": "pw-Zq81x", "ssl_cafile": "/etc/isobar/pki/ca.crt",
          "ssl_check_hostname": True, "connect_timeout": 20, "request_timeout": 30, "compression": "none",
          "topic": "weather", "kafka_client": "confluent-kafka", "api_version": "4.0"}


@pytest.fixture
def ca_file(tmp_path):
    """A throwaway self-signed CA certificate (librdkafka loads the CA file when the producer is created)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "isobar test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    path = tmp_path / "ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_librdkafka_gets_the_same_guarantees_and_connection_as_kafka_python(ca_file):
    config = senders.confluent_config(PARAMS)
    assert config["bootstrap.servers"] == "kafka1:9093,kafka2:9093"
    assert (config["acks"], config["enable.idempotence"], config["max.in.flight.requests.per.connection"],
            config["linger.ms"]) == ("all", True, 5, 20)
    assert (config["security.protocol"], config["sasl.mechanism"], config["ssl.ca.location"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "/etc/isobar/pki/ca.crt")
    assert config["ssl.endpoint.identification.algorithm"] == "https"
    assert senders.confluent_config(dict(PARAMS, ssl_check_hostname=False))["ssl.endpoint.identification.algorithm"] == "none"
    assert config["delivery.timeout.ms"] == 120000 and config["request.timeout.ms"] == 30000
    assert senders.confluent_config(dict(PARAMS, request_timeout=60))["delivery.timeout.ms"] == 240000
    # librdkafka accepts every key and value (an unknown or badly typed one raises here)
    confluent_kafka.Producer(dict(config, **{"ssl.ca.location": ca_file}))


@pytest.mark.parametrize("error, text", [
    (confluent_kafka.KafkaError(confluent_kafka.KafkaError._AUTHENTICATION, "SASL SCRAM-SHA-512 mechanism handshake failed"),
     "authentication failed for SCRAM user 'producer'"),
    (confluent_kafka.KafkaError(confluent_kafka.KafkaError._SSL, "SSL handshake failed: certificate verify failed"),
     "TLS verification of the brokers at kafka1:9093,  kafka2:9093 against /etc/isobar/pki/ca.crt failed"),
    (confluent_kafka.KafkaError(confluent_kafka.KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"),
     "cannot reach the Kafka cluster"),
])
def test_client_wide_errors_are_worded_for_the_user(error, text):
    assert text in senders.describe_confluent_errors([error], PARAMS)


def test_an_unreachable_cluster_fails_the_connection_within_connect_timeout_and_names_it(ca_file):
    params = dict(PARAMS, bootstrap_servers=[f"127.0.0.1:{closed_port()}"], connect_timeout=2, ssl_cafile=ca_file)
    began = time.monotonic()
    with pytest.raises(senders.SendError, match="cannot reach the Kafka cluster at 127.0.0.1:") as caught:
        senders.open_sender(params)
    assert time.monotonic() - began < 10
    assert "pw-Zq81x" not in str(caught.value)


def test_an_unreadable_ca_file_is_named(tmp_path):
    params = dict(PARAMS, bootstrap_servers=[f"127.0.0.1:{closed_port()}"], ssl_cafile=str(tmp_path / "missing.crt"))
    with pytest.raises(senders.SendError, match="cannot start a producer with these settings: .*ssl.ca.location failed"):
        senders.open_sender(params)


@pytest.mark.parametrize("failure", ["authentication", "tls", "unreachable"])
def test_both_libraries_word_the_same_failure_with_the_same_sentence(failure):
    # influx_to_kafka reports kafka-python's exceptions (kafka_client.describe_exception) and librdkafka's client-wide
    # errors (describe_confluent_errors): the user reads the same sentence whichever library sent.
    from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_client
    from kafka import errors

    servers = ", ".join(PARAMS["bootstrap_servers"])
    kafka_python, confluent, sentence = {
        "authentication": (errors.SaslAuthenticationFailedError("bad proof"),
                           confluent_kafka.KafkaError(confluent_kafka.KafkaError._AUTHENTICATION, "handshake failed"),
                           kafka_client.auth_failed_sentence("producer", "SCRAM-SHA-512", servers)),
        "tls": (OSError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
                confluent_kafka.KafkaError(confluent_kafka.KafkaError._SSL, "SSL handshake failed"),
                kafka_client.tls_failed_sentence(servers, PARAMS["ssl_cafile"], "")),
        "unreachable": (errors.KafkaConnectionError("no route"),
                        confluent_kafka.KafkaError(confluent_kafka.KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"),
                        kafka_client.unreachable_sentence(servers, PARAMS["connect_timeout"])),
    }[failure]
    ours = kafka_client.describe_exception(kafka_python, PARAMS)
    theirs = senders.describe_confluent_errors([confluent], PARAMS)
    assert ours.startswith(sentence.rstrip(" ")) and theirs.startswith(sentence.rstrip(" ")), (ours, theirs)
    assert theirs != sentence  # librdkafka's own words follow the sentence
