#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Publish new InfluxDB points to a Kafka topic, once each, from a durable checkpoint."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: influx_to_kafka
short_description: Publish new InfluxDB 2 points to Kafka as JSON, once each, from a durable checkpoint
description:
  - Reads the points of one measurement of an InfluxDB 2 bucket that come after a checkpoint (Flux, in
    time then key order) and publishes each one as a JSON message keyed by its key tag (the station) to
    a Kafka topic, so that one station's points stay in order on one partition.
  - The producer is idempotent (no duplicates from its own retries) and waits for C(acks=all).
  - "Work goes in batches. Before a batch is sent, its messages and the partitions' end offsets are
    journaled in the checkpoint file; after every message of the batch is acknowledged, the checkpoint
    advances past the batch and the journal is cleared. Each step is an atomic, fsynced file replace."
  - "A run that died with a batch in flight (killed, host crash, broker failure) leaves the journal
    behind. The next run reads back the records written to each partition since the journaled end offsets
    and compares their message ids (C(id), in every message) with the batch's: it sends exactly the
    messages that are not there - wherever they were in the batch, a send in the middle may have failed
    while later ones succeeded - then advances the checkpoint. Points are therefore published once even
    across crashes. If the records cannot be read back (a recreated topic, records already deleted) the
    module stops with an error and sends nothing; records of another writer are left alone (a warning)."
  - A run with no new points reports C(changed=false) and sends nothing.
  - Runs on the same checkpoint exclude each other with a lock file; a second concurrent run fails at once and
    names the holder. The live producer service (C(isobar-producer)) holds the lock of its checkpoint while it
    runs, so stop it before a one-shot run on the same checkpoint.
version_added: "1.0.0"
author: Isobar contributors (@isobar)
requirements:
  - confluent-kafka >= 2.6 for O(kafka_client=confluent-kafka) (the client_venv role installs it)
extends_documentation_fragment:
  - isobar.pipeline.kafka_connection
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
notes:
  - The checkpoint is a point's time, so points written later with a time at or before the checkpoint
    are never published. Writers that deliver late set O(stop_lag) to their maximal delay.
  - Points without the key tag are not published. Two series with the same key tag value at the same
    time (they differ in another tag) are refused, O(key_tag) must identify one series.
  - The Kafka record timestamp is the publish time; the point's time is in the message (C(time), C(time_ns)).
    Topic retention counts from record timestamps, so points of an old window are kept as long as new ones.
  - Each query reads a time window after the checkpoint, sized from what the previous query held (first
    window 1 h, at most 16x wider or narrower per step), so a query returns about 1.25 x O(batch_size) rows
    whatever the number of stations or the length of the backlog; an empty window is skipped and the next is wider.
  - Adding partitions to the topic moves keys to other partitions (the usual Kafka caveat), so order per
    station holds within a partition only. A message resent because its send failed while later ones of the same
    batch arrived comes after them.
options:
  token:
    description: InfluxDB token allowed to read O(bucket) (the producer token). Env C(INFLUX_TOKEN).
    required: true
  bucket:
    description: Bucket to read.
    type: str
    required: true
  measurement:
    description: Measurement whose points are published.
    type: str
    default: weather
  key_tag:
    description: Tag whose value is the message key (one station, one partition, in order).
    type: str
    default: station
  topic:
    description: Kafka topic to publish to (must exist).
    type: str
    required: true
  checkpoint_path:
    description:
      - File keeping the checkpoint and the journal of the batch in flight (mode 0600). Its directory is
        created (0700) when missing. One checkpoint per source and topic; a checkpoint of another
        bucket, measurement, key tag or topic is refused.
    type: path
    required: true
  start:
    description:
      - Where to begin when there is no checkpoint yet; an RFC3339 time (C(2026-01-01T00:00:00Z)) or a
        negative duration relative to now (C(-30d)). Ignored once a checkpoint exists.
    type: str
    default: "1970-01-01T00:00:00Z"
  stop_lag:
    description: Only publish points older than now minus this duration (for writers that deliver late).
    type: str
    default: "0s"
  batch_size:
    description:
      - Points per batch (one journal entry and one checkpoint step per batch; the journal holds the batch's messages).
      - The default comes from measurements (20,000 points, one run each against real InfluxDB and Kafka, 2026-12-05),
        where batches of 500, 1000, 2000 and 5000 points gave 2,101, 2,132, 2,200 and 3,497 msg/s.
    type: int
    default: 5000
  max_messages:
    description: Publish at most this many points in this run (C(0) = all new points).
    type: int
    default: 0
  compression:
    description: Compression of the message batches.
    type: str
    choices: [none, gzip]
    default: none
  kafka_client:
    description:
      - "Kafka client library that sends the messages, with the same guarantees (acks=all, idempotent, 5 in flight,
        linger 20 ms): C(confluent-kafka) (librdkafka, in C: sends while Python reads the next batch) or
        C(kafka-python) (pure Python). Reading back an interrupted batch and the partitions' offsets use kafka-python."
      - The default comes from C(make bench), which measures the same run with both (bench/results/kafka-clients,
        in the same runs 1.85x Kafka's ProducerPerformance with confluent-kafka and 1.01x with kafka-python).
    type: str
    choices: [confluent-kafka, kafka-python]
    default: confluent-kafka
  sasl_username:
    description:
      - SCRAM user of the producer. It needs WRITE on O(topic) (DESCRIBE comes with it) and READ on O(topic)
        to read back an interrupted batch (no consumer group is used).
attributes:
  check_mode:
    support: full
    details: Reads the checkpoint, connects to both services and counts the points a run would publish; sends nothing, writes nothing.
  diff_mode:
    support: full
    details: The checkpoint before and after (time, key, total delivered, batch in flight).
"""

EXAMPLES = r"""
- name: Publish the new weather points to Kafka
  influx_to_kafka:
    url: https://influxdb1:8086
    token: "{{ influxdb_client_tokens['producer'] }}"
    org: myorg
    ca_path: /etc/isobar/pki/ca.crt
    bucket: weather
    measurement: weather
    key_tag: station
    topic: weather
    checkpoint_path: /var/lib/isobar/producer/weather.checkpoint.json
    bootstrap_servers: "{{ kafka_bootstrap_servers.split(',') }}"
    sasl_username: producer
    sasl_password: "{{ kafka_scram_passwords['producer'] }}"
    ssl_cafile: /etc/isobar/pki/ca.crt
  vars:
    ansible_python_interpreter: /opt/isobar/venv/bin/python
  register: produced

- name: Report
  ansible.builtin.debug:
    msg: "{{ produced.messages }} messages at {{ produced.rate }} msg/s"
"""

RETURN = r"""
messages:
  description: Messages published by this run (in check mode, that a run would publish), resent ones included.
  returned: always
  type: int
  sample: 1200
recovered:
  description: Messages of an interrupted batch that this run sent (they had not arrived).
  returned: always
  type: int
  sample: 37
already_delivered:
  description: Messages of an interrupted batch that had arrived before the crash and were not sent again.
  returned: always
  type: int
  sample: 63
batches:
  description: Batches published by this run (a recovered batch counts as one).
  returned: always
  type: int
  sample: 3
partitions:
  description: Messages per partition published by this run.
  returned: always
  type: dict
  sample: {"0": 300, "1": 310, "2": 290, "3": 300}
duration:
  description: Seconds the run took (queries, sends and checkpoint writes).
  returned: always
  type: float
  sample: 2.41
rate:
  description: Messages per second over the run (0 when nothing was sent).
  returned: always
  type: float
  sample: 497.9
checkpoint:
  description: The checkpoint after the run.
  returned: always
  type: dict
  contains:
    time: {description: "Time of the last published point (RFC3339, ns) or null.", type: str}
    key: {description: Key tag value of the last published point or null., type: str}
    delivered_total: {description: Messages published through this checkpoint since it was created., type: int}
    pending: {description: Messages in an unfinished batch (0 after a successful run)., type: int}
"""

import os
import time
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import influxdb_argument_spec
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import (
    KAFKA_CONNECTION_ARGS, check_kafka_library, describe_exception)
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_senders import CLIENTS, DEFAULT_CLIENT
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_checkpoint import CheckpointBusy, CheckpointStore
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_producer import PipelineError
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_publish import (
    NOTHING_SENT, Run, execute, progress_text, validate)


def main():
    argument_spec = influxdb_argument_spec(token_required=True)
    argument_spec.update(KAFKA_CONNECTION_ARGS)
    argument_spec.update(
        bucket=dict(type="str", required=True),
        measurement=dict(type="str", default="weather"),
        key_tag=dict(type="str", default="station", no_log=False),
        topic=dict(type="str", required=True),
        checkpoint_path=dict(type="path", required=True),
        start=dict(type="str", default="1970-01-01T00:00:00Z"),
        stop_lag=dict(type="str", default="0s"),
        batch_size=dict(type="int", default=5000),
        max_messages=dict(type="int", default=0),
        compression=dict(type="str", default="none", choices=["none", "gzip"]),
        kafka_client=dict(type="str", default=DEFAULT_CLIENT, choices=list(CLIENTS)),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_kafka_library(module)
    p = module.params
    start_ns, lag_ns = validate(module)
    stop_ns = time.time_ns() - lag_ns
    source = {"org": p["org"], "bucket": p["bucket"], "measurement": p["measurement"], "key_tag": p["key_tag"],
              "topic": p["topic"]}
    store = CheckpointStore(p["checkpoint_path"])

    if not module.check_mode and not os.path.isdir(store.directory):
        os.makedirs(store.directory, mode=0o700, exist_ok=True)
    run = Run(module)
    try:
        if module.check_mode:
            result = execute(run, store, source, start_ns, stop_ns)
        else:
            with store.locked():
                result = execute(run, store, source, start_ns, stop_ns)
    except CheckpointBusy as exc:
        run.close()
        module.fail_json(msg=f"influx_to_kafka: {exc}: another run is publishing from this checkpoint "
                             f"(stop it first: a checkpoint has one writer). {NOTHING_SENT}")
    except ValueError as exc:
        run.close()
        module.fail_json(msg=f"influx_to_kafka: {exc}. {NOTHING_SENT}")
    except PipelineError as exc:
        run.close()
        module.fail_json(msg=f"influx_to_kafka: {exc}. {progress_text(run)}", **run.counts)
    except Exception as exc:
        run.close()
        text = describe_exception(exc, p, p["sasl_username"])
        module.fail_json(msg=f"influx_to_kafka: {text}. {progress_text(run)}", exception=traceback.format_exc(),
                         **run.counts)
    run.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
