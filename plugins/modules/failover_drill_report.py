# Copyright: Isobar contributors
# Apache-2.0
# Documentation of the failover_drill_report action plugin (plugins/action/failover_drill_report.py), which runs
# on the controller; the logic is in plugins/module_utils/failover_report.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: failover_drill_report
author: Isobar contributors (@isobar)
short_description: Compute, write and draw the report of the broker failover drill on the controller
description:
  - Computes the figures and checks of the broker failover drill (playbooks/broker-failover.yml) from the drill's
    settings and from what it recorded, and writes them as a JSON report (keys sorted, mode 0644).
  - With O(timeline), also writes next to the report C(<report>.timeline.json), the data of the timeline (ack
    wait of every send read from the fetched C(<report>.<run>.events.jsonl), failed sends, the drill's marks,
    leaders per broker and under-replicated partitions of each cluster view), and C(<report>.timeline.png),
    its picture (1200x800 pixels, matplotlib).
  - Changes nothing when the files already hold the same content.
options:
  drill:
    description:
      - The drill's settings, keys V(started), V(broker), V(second_broker), V(node_id), V(mode),
        V(host_stop_timeout), V(driver), V(traffic_host), V(topic), V(partitions), V(rate), V(poll_delay),
        V(stall_threshold), V(two_down), V(two_down_delivery_timeout), V(max_window_s), V(broker_count).
    type: dict
    required: true
  state:
    description:
      - What the drill recorded, keys V(marks), V(summaries), V(phases), V(snapshots), V(elections),
        V(scram_checks), V(cleanup_problems), V(error); missing figures are null in the report and fail their
        checks.
    type: dict
    required: true
  dest:
    description: Path of the JSON report on the controller; its directory is created when missing.
    type: path
    required: true
  timeline:
    description: Also write the timeline data and picture next to the report.
    type: bool
    default: true
extends_documentation_fragment:
  - isobar.pipeline.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
requirements:
  - matplotlib (on the controller, for O(timeline))
"""

EXAMPLES = r"""
- name: Report | Compute, write and draw it
  isobar.pipeline.failover_drill_report:
    drill:
      started: "{{ failover_started }}"
      broker: kafka2
      second_broker: kafka3
      node_id: 2
      mode: service
      host_stop_timeout: 30
      driver: kafka1
      traffic_host: pipeline
      topic: isobar-drill
      partitions: 6
      rate: 50
      poll_delay: 1
      stall_threshold: 1.0
      two_down: false
      two_down_delivery_timeout: 15
      max_window_s: 60
      broker_count: 3
    state:
      marks: "{{ failover_marks }}"
      summaries: "{{ failover_summaries }}"
      phases: "{{ failover_phases }}"
      snapshots: "{{ failover_snapshots }}"
      elections: "{{ failover_elections }}"
      scram_checks: "{{ failover_scram_checks }}"
      cleanup_problems: []
      error: ""
    dest: /home/ops/isobar-drills/failover-kafka2.json
  register: failover_report_result
"""

RETURN = r"""
report:
  description: The report (figures, C(checks) each with C(name), C(ok) and C(detail), and C(passed)).
  returned: always
  type: dict
summary:
  description: A few lines for the operator (window, messages, leaders, the two-down verdict, checks).
  returned: always
  type: list
  elements: str
dest:
  description: Path of the JSON report.
  returned: always
  type: str
timeline_json:
  description: Path of the timeline data.
  returned: when O(timeline) is true and not in check mode
  type: str
timeline_png:
  description: Path of the timeline picture.
  returned: when O(timeline) is true and not in check mode
  type: str
"""
