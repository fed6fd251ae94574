#!/usr/bin/env python3
"""Prometheus exporter of the pipeline's own health: consumer-group lag per partition, the producer's lag behind
InfluxDB, and the expiry of the TLS certificates the services present.

Everything is read when Prometheus scrapes (nothing is cached between scrapes), so a value can be compared with
what Kafka's own tools report in the same second. A source that cannot be read reports
``isobar_exporter_source_up{source=...} 0`` and its other series are left out; the others still answer.

Metrics
  isobar_kafka_consumergroup_committed_offset{group,topic,partition}   offset the group committed
  isobar_kafka_partition_end_offset{topic,partition}                   log end offset (of the groups' topics)
  isobar_kafka_consumergroup_lag{group,topic,partition}                end - committed (what kafka-consumer-groups
                                                                       --describe calls LAG)
  isobar_producer_checkpoint_timestamp_seconds      time of the newest point the producer has published
  isobar_producer_newest_point_timestamp_seconds    time of the newest point of the measurement in InfluxDB
  isobar_producer_lag_seconds                       newest point - checkpoint, 0 when caught up: how much data
                                                    time is in InfluxDB and not yet in Kafka
  isobar_producer_batch_in_flight                   1 while a journaled batch is not acknowledged yet
  isobar_tls_certificate_expiry_timestamp_seconds{endpoint,subject}  notAfter of the certificate an endpoint presents
  isobar_exporter_source_up{source}                 1 if the source was read in this scrape
  isobar_exporter_source_duration_seconds{source}   time spent reading it

Settings come from a JSON file (--config, mode 0600, it holds a password and a token):
  {"listen_address": "0.0.0.0", "port": 9309,
   "tls_cert": "/etc/isobar/pki/exporter.crt", "tls_key": "...", "tls_client_ca": "/etc/isobar/pki/ca.crt",
   "kafka": {"bootstrap_servers": ["kafka1:9092"], "username": "monitor", "password": "...",
             "cafile": "/etc/isobar/pki/ca.crt", "groups": ["weather-consumers"]},
   "influxdb": {"url": "https://influxdb1:8086", "token": "...", "org": "isobar", "bucket": "weather",
                "measurement": "weather", "cafile": "/etc/isobar/pki/ca.crt"},
   "producer_checkpoint": "/var/lib/isobar/producer/weather.checkpoint.json",
   (or "producer_status": "/var/lib/isobar/producer/status.json", the live producer service's status file, 0644:
    the exporter then needs no access to the checkpoint itself),
   "tls_endpoints": ["kafka1:9092", "influxdb1:8086"], "tls_endpoints_cafile": "/etc/isobar/pki/ca.crt"}
With tls_cert/tls_key the metrics are served over HTTPS only; with tls_client_ca a client certificate signed by
that CA is required (Prometheus scrapes with its own). Without "groups" every consumer group is reported.

    pipeline_exporter.py --config /etc/isobar/pipeline-exporter.json [--once]
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import ssl
import sys
import threading
import time

try:  # shipped next to this program on the hosts
    import kafka_net_fix
except ImportError:  # in the repository: the collection's module_utils
    from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_net_fix

kafka_net_fix.apply()  # else kafka-python 3.0.12 drops a response read together with the broker closing

LOG = logging.getLogger("pipeline_exporter")
EXIT_USAGE = 2
TIMEOUT_S = 10


# -- pure logic (unit tested) ------------------------------------------------------------------------
def group_lags(committed, end_offsets):
    """Lag rows from {(group, topic, partition): committed offset} and {(topic, partition): end offset}.

    A partition without a committed offset (-1) has no lag yet (kafka-consumer-groups shows "-"): left out.
    A committed offset ahead of the end (a recreated topic) gives a negative lag, as Kafka's own tool reports it:
    a sign that the group's offsets are wrong, not something to hide.
    """
    rows = []
    for (group, topic, partition), offset in sorted(committed.items()):
        end = end_offsets.get((topic, partition))
        if end is None or offset is None or offset < 0:
            continue
        rows.append((group, topic, partition, offset, end, end - offset))
    return rows


def producer_lag(checkpoint_state, newest_point_ns):
    """(checkpoint s, newest s, lag s, batch in flight) from the producer's checkpoint file content and the time
    of the newest point in InfluxDB (ns; None when the measurement is empty).

    The lag is data time: newest point in InfluxDB - newest point published, 0 when caught up. It grows while
    new points arrive and the producer does not publish them, whatever the points' own timestamps are (injected
    points may be historical, so "now - point time" would not measure the producer). Without a checkpoint
    nothing was published yet: the lag is None (not reported) rather than a made-up number.
    """
    state = checkpoint_state or {}
    cursor = state.get("cursor") or None
    checkpoint_s = cursor["time_ns"] / 1e9 if cursor and cursor.get("time_ns") is not None else None
    newest_s = newest_point_ns / 1e9 if newest_point_ns is not None else None
    if checkpoint_s is None:
        lag = None
    elif newest_s is None:
        lag = 0.0
    else:
        lag = max(0.0, newest_s - checkpoint_s)
    return checkpoint_s, newest_s, lag, 1 if state.get("pending") else 0


def certificate_not_after(cert):
    """(notAfter as epoch seconds, subject CN) of a certificate as ssl's getpeercert() returns it (standard
    library only: the hosts' client venv has no cryptography)."""
    subject = dict(item for rdn in cert.get("subject", ()) for item in rdn)
    return float(ssl.cert_time_to_seconds(cert["notAfter"])), subject.get("commonName", "")


def validate_config(config):
    """Clear errors for a bad settings file, before anything listens or connects."""
    errors = []
    if not isinstance(config, dict):
        return ["the settings must be a JSON object"]
    port = config.get("port", 9309)
    if not isinstance(port, int) or not 0 <= port <= 65535:
        errors.append(f"port must be an integer 0-65535, got {port!r}")
    if bool(config.get("tls_cert")) != bool(config.get("tls_key")):
        errors.append("tls_cert and tls_key go together")
    if config.get("tls_client_ca") and not config.get("tls_cert"):
        errors.append("tls_client_ca needs tls_cert/tls_key (client certificates are checked over TLS only)")
    kafka = config.get("kafka")
    if kafka is not None:
        for key in ("bootstrap_servers", "username", "password", "cafile"):
            if not kafka.get(key):
                errors.append(f"kafka.{key} is missing")
        if "groups" in kafka and not isinstance(kafka["groups"], list):
            errors.append("kafka.groups must be a list of group ids")
    influx = config.get("influxdb")
    if influx is not None:
        for key in ("url", "token", "org", "bucket", "measurement"):
            if not influx.get(key):
                errors.append(f"influxdb.{key} is missing")
        if influx.get("url") and not str(influx["url"]).startswith("https://"):
            errors.append("influxdb.url must be https://")
    if config.get("tls_endpoints") and not config.get("tls_endpoints_cafile"):
        errors.append("tls_endpoints needs tls_endpoints_cafile (the CA that signs their certificates)")
    for endpoint in config.get("tls_endpoints") or []:
        host, dummy, port_s = str(endpoint).rpartition(":")
        if not host or not port_s.isdigit():
            errors.append(f"tls_endpoints: {endpoint!r} is not host:port")
    if config.get("producer_checkpoint") and config.get("producer_status"):
        errors.append("producer_checkpoint and producer_status are two ways to read one thing: set one")
    if not any(config.get(k) for k in ("kafka", "influxdb", "producer_checkpoint", "producer_status", "tls_endpoints")):
        errors.append("nothing to export: set kafka, influxdb/producer_checkpoint or tls_endpoints")
    return errors


# -- readers (real services) -----------------------------------------------------------------------------
class KafkaReader:
    """Committed offsets and end offsets through one admin connection, reopened after a failure."""

    def __init__(self, settings):
        self.settings = settings
        self.admin = None

    def _client(self):
        if self.admin is None:
            from kafka import KafkaAdminClient

            self.admin = KafkaAdminClient(
                bootstrap_servers=self.settings["bootstrap_servers"], security_protocol="SASL_SSL",
                sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=self.settings["username"],
                sasl_plain_password=self.settings["password"], ssl_cafile=self.settings["cafile"],
                request_timeout_ms=TIMEOUT_S * 1000, client_id="isobar-pipeline-exporter")
        return self.admin

    def close(self):
        if self.admin is not None:
            try:
                self.admin.close()
            finally:
                self.admin = None

    def read(self):
        """({(group, topic, partition): committed}, {(topic, partition): end})."""
        from kafka.admin import OffsetSpec

        try:
            admin = self._client()
            groups = self.settings.get("groups")
            if groups is None:
                groups = sorted({g["group_id"] for g in admin.list_groups()
                                 if g.get("protocol_type") in ("consumer", "")})
            committed = {}
            if groups:
                for group, offsets in admin.list_group_offsets(list(groups)).items():
                    for tp, meta in offsets.items():
                        committed[(group, tp.topic, tp.partition)] = meta.offset
            partitions = sorted({(topic, partition) for dummy, topic, partition in committed})
            ends = {}
            if partitions:
                from kafka import TopicPartition

                answer = admin.list_partition_offsets({TopicPartition(t, p): OffsetSpec.LATEST for t, p in partitions})
                ends = {(tp.topic, tp.partition): found.offset for tp, found in answer.items()}
            return committed, ends
        except Exception:
            self.close()  # a wedged connection must not serve the next scrape
            raise


def newest_point_ns(settings):
    """Time (ns) of the newest point of the measurement in the bucket, None when there is none."""
    from influxdb_client import InfluxDBClient

    flux = (f'from(bucket: {json.dumps(settings["bucket"])}) |> range(start: 0) '
            f'|> filter(fn: (r) => r._measurement == {json.dumps(settings["measurement"])}) '
            '|> keep(columns: ["_time"]) |> group() |> max(column: "_time")')
    with InfluxDBClient(url=settings["url"], token=settings["token"], org=settings["org"],
                        ssl_ca_cert=settings.get("cafile"), timeout=TIMEOUT_S * 1000) as client:
        tables = client.query_api().query(flux)
    newest = None
    for table in tables:
        for record in table.records:
            when = record.get_time()
            if when is not None:
                ns = int(when.timestamp()) * 10**9 + when.microsecond * 1000
                newest = ns if newest is None else max(newest, ns)
    return newest


def rfc3339_to_ns(text):
    """'2026-12-04T16:00:00.123456789Z' (ns_to_rfc3339's form, any fraction length) -> ns since the epoch."""
    import calendar

    if not isinstance(text, str) or not text.endswith("Z"):
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    whole, dummy, fraction = text[:-1].partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    if fraction and not fraction.isdigit():
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    return seconds * 10**9 + int((fraction or "0")[:9].ljust(9, "0"))


def checkpoint_from_status(status):
    """The checkpoint as producer_lag reads it, from the live producer's status file (its "checkpoint" summary: the
    cursor's time and the number of pending messages). None when the service has not published anything yet."""
    summary = (status or {}).get("checkpoint") or {}
    if not summary.get("time"):
        return None
    return {"cursor": {"time_ns": rfc3339_to_ns(summary["time"])}, "pending": summary.get("pending") or None}


def read_status_checkpoint(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return checkpoint_from_status(json.load(handle))
    except FileNotFoundError:
        return None


def read_checkpoint(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def peer_certificate(endpoint, cafile):
    """The certificate an endpoint presents, verified against our CA (getpeercert() decodes verified ones only)."""
    host, dummy, port = endpoint.rpartition(":")
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = False  # endpoints may be named by address; the chain to our CA is what is checked
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as sock, \
            context.wrap_socket(sock, server_hostname=host) as tls:
        return tls.getpeercert()


# -- the collector ----------------------------------------------------------------------------------------
class PipelineCollector:
    def __init__(self, config):
        self.config = config
        self.kafka = KafkaReader(config["kafka"]) if config.get("kafka") else None
        self.lock = threading.Lock()  # one scrape at a time: the admin client is not shared across threads

    def _timed(self, source, fn, up, duration):
        started = time.monotonic()
        try:
            value = fn()
            ok = True
        except Exception as exc:  # noqa: BLE001 - any failure of a source is reported as that source down
            LOG.warning("%s: %s: %s", source, type(exc).__name__, exc)
            value, ok = None, False
        up.add_metric([source], 1 if ok else 0)
        duration.add_metric([source], time.monotonic() - started)
        return ok, value

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        with self.lock:
            up = GaugeMetricFamily("isobar_exporter_source_up", "1 if the source was read in this scrape",
                                   labels=["source"])
            duration = GaugeMetricFamily("isobar_exporter_source_duration_seconds", "Time spent reading the source",
                                         labels=["source"])
            families = []
            if self.kafka is not None:
                ok, value = self._timed("kafka", self.kafka.read, up, duration)
                if ok:
                    families.extend(self._kafka_families(*value))
            checkpoint_path = self.config.get("producer_checkpoint")
            status_path = self.config.get("producer_status")
            influx = self.config.get("influxdb")
            if (checkpoint_path or status_path) and influx:
                read = (lambda: read_checkpoint(checkpoint_path)) if checkpoint_path else (
                    lambda: read_status_checkpoint(status_path))
                ok_c, state = self._timed("checkpoint", read, up, duration)
                ok_i, newest = self._timed("influxdb", lambda: newest_point_ns(influx), up, duration)
                if ok_c and ok_i:
                    families.extend(self._producer_families(state, newest))
            endpoints = self.config.get("tls_endpoints") or []
            if endpoints:
                certs = GaugeMetricFamily("isobar_tls_certificate_expiry_timestamp_seconds",
                                          "notAfter of the certificate the endpoint presents (epoch seconds)",
                                          labels=["endpoint", "subject"])
                for endpoint in endpoints:
                    ok, cert = self._timed(f"tls:{endpoint}", lambda e=endpoint: peer_certificate(
                        e, self.config["tls_endpoints_cafile"]), up, duration)
                    if ok:
                        not_after, subject = certificate_not_after(cert)
                        certs.add_metric([endpoint, subject], not_after)
                families.append(certs)
            yield from families
            yield up
            yield duration

    @staticmethod
    def _kafka_families(committed, ends):
        from prometheus_client.core import GaugeMetricFamily

        offset = GaugeMetricFamily("isobar_kafka_consumergroup_committed_offset", "Offset the group committed",
                                   labels=["group", "topic", "partition"])
        lag = GaugeMetricFamily("isobar_kafka_consumergroup_lag",
                                "Messages the group has not committed yet (log end offset - committed offset)",
                                labels=["group", "topic", "partition"])
        end = GaugeMetricFamily("isobar_kafka_partition_end_offset", "Log end offset", labels=["topic", "partition"])
        for (topic, partition), value in sorted(ends.items()):
            end.add_metric([topic, str(partition)], value)
        for group, topic, partition, committed_offset, dummy, lag_value in group_lags(committed, ends):
            offset.add_metric([group, topic, str(partition)], committed_offset)
            lag.add_metric([group, topic, str(partition)], lag_value)
        return [offset, lag, end]

    @staticmethod
    def _producer_families(state, newest):
        from prometheus_client.core import GaugeMetricFamily

        checkpoint_s, newest_s, lag, in_flight = producer_lag(state, newest)
        families = []
        if checkpoint_s is not None:
            families.append(GaugeMetricFamily("isobar_producer_checkpoint_timestamp_seconds",
                                              "Time of the newest point the producer has published", value=checkpoint_s))
        if newest_s is not None:
            families.append(GaugeMetricFamily("isobar_producer_newest_point_timestamp_seconds",
                                              "Time of the newest point of the measurement in InfluxDB", value=newest_s))
        if lag is not None:
            families.append(GaugeMetricFamily("isobar_producer_lag_seconds",
                                              "Data time in InfluxDB not yet published to Kafka (0 when caught up)",
                                              value=lag))
        families.append(GaugeMetricFamily("isobar_producer_batch_in_flight",
                                          "1 while a journaled batch is not acknowledged yet", value=in_flight))
        return families


def load_config(path):
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    errors = validate_config(config)
    if errors:
        raise ValueError("; ".join(errors))
    return config


def serve(config):
    from prometheus_client import start_http_server
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(config))
    tls = {}
    if config.get("tls_cert"):
        tls = {"certfile": config["tls_cert"], "keyfile": config["tls_key"]}
        if config.get("tls_client_ca"):
            tls.update(client_cafile=config["tls_client_ca"], client_auth_required=True)
    server, thread = start_http_server(config.get("port", 9309), addr=config.get("listen_address", "0.0.0.0"),
                                       registry=registry, **tls)
    LOG.info("serving on %s:%s (%s)", config.get("listen_address", "0.0.0.0"), server.server_port,
             "https" if tls else "http")
    return server, thread, registry


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--config", required=True, help="JSON settings file (see the module docstring)")
    parser.add_argument("--once", action="store_true", help="print one scrape to stdout and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as exc:
        print(f"pipeline_exporter: bad settings {args.config}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.once:
        from prometheus_client import generate_latest
        from prometheus_client.registry import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        registry.register(PipelineCollector(config))
        sys.stdout.write(generate_latest(registry).decode())
        return 0
    server, dummy, dummy = serve(config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
