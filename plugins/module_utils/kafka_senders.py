# Copyright: Isobar contributors
# Apache-2.0
"""The sending side of influx_to_kafka and the producer service, with either Kafka client library.

``kafka-python`` (pure Python, what every other module of the collection uses) or ``confluent-kafka`` (the Python
binding of librdkafka, in C). Both send with the same guarantees: acks=all, an idempotent producer, at most 5
requests in flight per connection, linger 20 ms, the messages of a batch in order. Issue 19 asked to measure the
same publishing code with another maintained client and choose from the numbers: ``make bench`` measures both.

A sender has two steps per batch: ``start(messages)`` hands the messages over without waiting (the library's own
threads send them while the caller reads the next batch) and ``wait(handle, timeout)`` returns once every one is
acknowledged, or raises. The journal/checkpoint logic (pipeline_publish) is the same whatever the library.
"""

from __future__ import annotations

import logging

try:
    from confluent_kafka import KafkaError, KafkaException, Producer

    HAS_CONFLUENT_KAFKA = True
except ImportError:  # reported by pipeline_publish.validate when kafka_client asks for it
    HAS_CONFLUENT_KAFKA = False

from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import (
    HAS_KAFKA, auth_failed_sentence, client_config, tls_failed_sentence, unreachable_sentence)

if HAS_KAFKA:  # a missing kafka-python is reported by check_kafka_library
    from kafka import KafkaProducer

CLIENTS = ("confluent-kafka", "kafka-python")  # the first is the default (make bench: bench/results/kafka-clients)
DEFAULT_CLIENT = CLIENTS[0]
CLIENT_ID = "isobar-influx-to-kafka"
LINGER_MS = 20
MAX_IN_FLIGHT = 5


class SendError(Exception):
    """A batch was not (entirely) acknowledged; the message is worded for the user."""


def delivery_timeout_ms(params):
    """How long a message may take from hand-over to acknowledgement, retries included (both libraries)."""
    return max(120000, params["request_timeout"] * 4000)


def confluent_config(params):
    """librdkafka settings equivalent to kafka-python's (client_config plus the producer settings of
    KafkaPythonSender): same principal, CA, hostname check, timeouts and delivery guarantees."""
    return {
        "bootstrap.servers": ",".join(s.strip() for s in params["bootstrap_servers"]),
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": params["sasl_mechanism"],
        "sasl.username": params["sasl_username"],
        "sasl.password": params["sasl_password"],
        "ssl.ca.location": params["ssl_cafile"],
        # librdkafka checks the broker's name against its certificate only when asked to
        "ssl.endpoint.identification.algorithm": "https" if params["ssl_check_hostname"] else "none",
        "socket.connection.setup.timeout.ms": params["connect_timeout"] * 1000,
        "request.timeout.ms": params["request_timeout"] * 1000,
        "reconnect.backoff.max.ms": 2000,
        "client.id": CLIENT_ID,
        "acks": "all",
        "enable.idempotence": True,
        "max.in.flight.requests.per.connection": MAX_IN_FLIGHT,
        "linger.ms": LINGER_MS,
        "delivery.timeout.ms": delivery_timeout_ms(params),
        "compression.type": params["compression"],
        # a whole batch (batch_size is at most 100,000) fits in the local queue: produce() never blocks
        "queue.buffering.max.messages": 100000,
    }


def describe_confluent_errors(errors, params):
    """One sentence from the client-wide errors librdkafka reported (error_cb), most telling first; worded as
    kafka_client.describe_exception words kafka-python's."""
    servers = ", ".join(params["bootstrap_servers"])
    texts = [error.str() for error in errors]
    codes = {error.code() for error in errors}
    if HAS_CONFLUENT_KAFKA and KafkaError._AUTHENTICATION in codes:
        return auth_failed_sentence(params["sasl_username"], params["sasl_mechanism"], servers, texts[0])
    ssl = [t for t in texts if "SSL" in t or "certificate" in t]
    if ssl:
        return tls_failed_sentence(servers, params["ssl_cafile"], ssl[0])
    return unreachable_sentence(servers, params["connect_timeout"], texts[-1] if texts else "")


class KafkaPythonSender:
    """kafka-python's KafkaProducer: send() returns a future per message, flush() waits for all of them."""

    def __init__(self, params):
        config = client_config(params)
        config.update(client_id=CLIENT_ID, acks="all", enable_idempotence=True,
                      max_in_flight_requests_per_connection=MAX_IN_FLIGHT, linger_ms=LINGER_MS,
                      delivery_timeout_ms=delivery_timeout_ms(params),
                      compression_type=None if params["compression"] == "none" else params["compression"])
        self.topic = params["topic"]
        self.producer = KafkaProducer(**config)

    def start(self, messages):
        return [self.producer.send(self.topic, key=key.encode("utf-8"), value=value.encode("utf-8"),
                                   partition=partition)
                for partition, key, value in messages]

    def wait(self, futures, messages, timeout):
        self.producer.flush(timeout=timeout)
        for future, message in zip(futures, messages):
            if not future.is_done:
                raise SendError(f"message to partition {message[0]} not acknowledged in time")
            if future.failed():
                raise future.exception

    def close(self):
        self.producer.close(timeout=5)


class ConfluentSender:
    """confluent-kafka's Producer: produce() queues a message for librdkafka's threads, which send it while the
    caller goes on (no Python work, no GIL, per message in flight); flush() serves the delivery reports."""

    def __init__(self, params):
        self.params = params
        self.topic = params["topic"]
        self.errors = []  # client-wide errors (authentication, TLS, brokers down), for the message of a failure
        config = confluent_config(params)
        config["error_cb"] = self.errors.append
        config["logger"] = logging.getLogger("librdkafka")  # its log through Python's logging, not raw stderr
        try:
            self.producer = Producer(config)
        except KafkaException as exc:  # settings librdkafka refuses before connecting, e.g. an unreadable CA file
            raise SendError(f"confluent-kafka cannot start a producer with these settings: {exc.args[0].str()}") from None
        # Connect now (like KafkaProducer's bootstrap): a refused login fails before anything is journaled.
        try:
            self.producer.list_topics(topic=self.topic, timeout=params["connect_timeout"])
        except KafkaException:
            raise SendError(describe_confluent_errors(self.errors, params)) from None

    def start(self, messages):
        report = {"acked": 0, "failed": None}

        def delivered(error, message):  # called from flush(), in this thread
            if error is None:
                report["acked"] += 1
            elif report["failed"] is None:
                report["failed"] = (message.partition(), error.str())

        produce, topic = self.producer.produce, self.topic
        for partition, key, value in messages:
            while True:
                try:
                    produce(topic, value.encode("utf-8"), key.encode("utf-8"), partition, delivered)
                    break
                except BufferError:  # the local queue is full: let deliveries (or their timeouts) drain it
                    self.producer.poll(0.1)
        return report

    def wait(self, report, messages, timeout):
        left = self.producer.flush(timeout)
        if report["failed"] is not None:
            partition, text = report["failed"]
            raise SendError(f"message to partition {partition} was not delivered: {text}")
        if left or report["acked"] != len(messages):
            raise SendError(f"{len(messages) - report['acked']} messages not acknowledged within {timeout} s"
                            + (f" ({describe_confluent_errors(self.errors, self.params)})" if self.errors else ""))

    def close(self):
        self.producer.flush(5)


def open_sender(params):
    """The sender of params['kafka_client'] (connected); raises SendError when it cannot connect."""
    if params["kafka_client"] == "confluent-kafka":
        return ConfluentSender(params)
    return KafkaPythonSender(params)
