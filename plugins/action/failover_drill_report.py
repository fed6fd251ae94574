# Copyright: Isobar contributors
# Apache-2.0
"""Action plugin isobar.pipeline.failover_drill_report: the failover drill's report, checks and timeline picture,
computed and written on the controller (documentation: plugins/modules/failover_drill_report.py)."""
from __future__ import annotations

import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.isobar.pipeline.plugins.module_utils import failover_report

ARGUMENT_SPEC = {
    "drill": {"type": "dict", "required": True},
    "state": {"type": "dict", "required": True},
    "dest": {"type": "path", "required": True},
    "timeline": {"type": "bool", "default": True},
}
# Settings the report needs from the drill (its failover_* variables, see playbooks/broker-failover.yml).
DRILL_KEYS = (
    "started", "broker", "second_broker", "node_id", "mode", "host_stop_timeout", "driver", "traffic_host", "topic",
    "partitions", "rate", "poll_delay", "stall_threshold", "two_down", "two_down_delivery_timeout", "max_window_s",
    "broker_count",
)


def _plain(value):
    """Plain JSON types (ansible-core 2.19 hands over tagged subclasses, whose repr would leak into details)."""
    return json.loads(json.dumps(value))


def _write(path: str, data: bytes) -> bool:
    """Write atomically, mode 0644; False when the file already holds exactly this."""
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            if handle.read() == data:
                return False
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".failover-report-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True


def side_files(dest: str) -> dict:
    """Paths next to the report: the events of each run (fetched by the drill), the timeline data and picture."""
    base = dest[:-len(".json")] if dest.endswith(".json") else dest
    return {
        "events": {run: f"{base}.{run}.events.jsonl" for run in ("one_down", "two_down")},
        "timeline_json": f"{base}.timeline.json",
        "timeline_png": f"{base}.timeline.png",
    }


class ActionModule(ActionBase):
    """Computes the report in Python (module_utils/failover_report.py), writes it, draws the timeline."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        drill, state = _plain(args["drill"]), _plain(args["state"])
        missing = [key for key in DRILL_KEYS if key not in drill]
        if missing:
            raise AnsibleActionFail(f"drill lacks {', '.join(missing)}: nothing was written")
        report = failover_report.build_report(drill, state)
        paths = side_files(args["dest"])
        result.update(report=report, dest=args["dest"], summary=failover_report.summary_lines(report, args["dest"]))
        if self._task.check_mode:
            result["changed"] = True
            return result
        changed = _write(args["dest"], (json.dumps(report, indent=2, sort_keys=True, separators=(",", ": ")) + "\n").encode())
        if args["timeline"]:
            events = {run: failover_report.load_events(path)
                      for run, path in paths["events"].items() if os.path.isfile(path)}
            data = failover_report.timeline(report, events, state.get("snapshots") or {})
            changed = _write(paths["timeline_json"], (json.dumps(data, indent=1) + "\n").encode()) or changed
            # Drawn whenever its data changed (the PNG of the same data is the same picture).
            if changed or not os.path.isfile(paths["timeline_png"]):
                failover_report.render_timeline(data, paths["timeline_png"])
                changed = True
            result.update(timeline_json=paths["timeline_json"], timeline_png=paths["timeline_png"])
        result["changed"] = changed
        return result
