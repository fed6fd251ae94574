# Copyright: Isobar contributors
# Apache-2.0
"""Documentation of the InfluxDB connection options shared by the influxdb_*, weather_inject and
influx_to_kafka modules.

The options are those of influxdb_argument_spec() in plugins/module_utils/influxdb_client_common.py,
with its defaults: O(org) required, O(token) not. A module takes them with
``extends_documentation_fragment: [influxdb_connection]`` and redeclares an option in its own
DOCUMENTATION where it differs (O(token) says which permissions it needs, O(org) may be optional);
what it declares replaces the fragment's keys of that option, the others are kept.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
requirements:
  - influxdb-client >= 1.30
options:
  url:
    description: Base URL of InfluxDB, e.g. C(https://127.0.0.1:8086). Env C(INFLUX_HOST).
    type: str
    required: true
  token:
    description: API token. Env C(INFLUX_TOKEN).
    type: str
  org:
    description: Organization name. Env C(INFLUX_ORG).
    type: str
    required: true
  ca_path:
    description: PEM file of the CA that signed InfluxDB's certificate (default is the system trust store).
    type: path
  validate_certs:
    description: Verify InfluxDB's TLS certificate. Only switch off for debugging.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for an answer of the InfluxDB API.
    type: int
    default: 30
"""
