# Copyright: Isobar contributors
# Apache-2.0
"""Documentation of the Kafka connection options shared by the kafka_* and influx_to_kafka modules.

The options are those of KAFKA_CONNECTION_ARGS in plugins/module_utils/kafka_client.py. A module
takes them with ``extends_documentation_fragment: [kafka_connection]`` and may redeclare an option
in its own DOCUMENTATION to say more (e.g. the rights O(sasl_username) needs); what it declares
replaces the fragment's keys of that option, the others are kept.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
requirements:
  - kafka-python >= 3.0 on the host running the module (the client_venv role)
options:
  bootstrap_servers:
    description: Brokers to bootstrap from, as C(host:port) of their SASL_SSL listener.
    type: list
    elements: str
    required: true
  sasl_username:
    description: SCRAM user to authenticate as.
    type: str
    required: true
  sasl_password:
    description: Password of O(sasl_username).
    type: str
    required: true
  sasl_mechanism:
    description: SASL mechanism of the listener for O(sasl_username).
    type: str
    choices: [SCRAM-SHA-256, SCRAM-SHA-512]
    default: SCRAM-SHA-512
  ssl_cafile:
    description: PEM file of the CA that signed the brokers' certificates.
    type: path
    required: true
  ssl_check_hostname:
    description: Verify that the broker certificates match the addresses connected to.
    type: bool
    default: true
  api_version:
    description:
      - Kafka protocol version the client assumes, like V(4.0) or V(4.3). Set explicitly because version
        probing is unreliable on KRaft; the client still negotiates down to what the broker supports.
    type: str
    default: "4.0"
  connect_timeout:
    description: Seconds to wait for the first connection to the cluster before failing.
    type: int
    default: 20
  request_timeout:
    description: Seconds to wait for each request.
    type: int
    default: 30
notes:
  - Run it on a host that reaches the brokers and has kafka-python in the interpreter Ansible uses, e.g. one
    with the client_venv role and C(ansible_python_interpreter=/opt/isobar/venv/bin/python).
"""
