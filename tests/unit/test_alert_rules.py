"""The Prometheus rules of roles/monitoring: valid, tested with `promtool test rules` (tests/promtool/), every
alert proven to fire in a test, and every pipeline metric they use really exported by roles/pipeline/files/pipeline_exporter.py.

promtool comes from Debian's prometheus package: installed here when missing (as root, with apt); if it cannot be
installed the tests are skipped with the reason, except under CI=true where that is a failure.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "roles" / "monitoring" / "files" / "rules").glob("*.rules.yml"))
TESTS = sorted((ROOT / "tests" / "promtool").glob("*.test.yml"))


@pytest.fixture(scope="module")
def promtool():
    found = shutil.which("promtool")
    why = "promtool is not on PATH"
    if not found and shutil.which("apt-get") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
                                 capture_output=True, text=True, env=env, timeout=600)
        found = shutil.which("promtool")
        why = f"apt-get install prometheus failed (rc={install.returncode}): {install.stderr[-500:]}"
    elif not found:
        why += " and it cannot be installed here (needs root and apt-get: apt-get install prometheus)"
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the rule tests: {why}")
        pytest.skip(why)
    return found


def test_rule_files_exist():
    assert {p.name for p in RULES} >= {"kafka.rules.yml", "pipeline.rules.yml"}
    assert TESTS, "no promtool tests under tests/promtool"


def test_rules_are_valid(promtool):
    result = subprocess.run([promtool, "check", "rules", *map(str, RULES)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_tests_pass(promtool):
    result = subprocess.run([promtool, "test", "rules", *map(str, TESTS)], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.count("SUCCESS") == len(TESTS), result.stdout


def alerts():
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    yield path.name, rule


def test_every_alert_fires_in_a_promtool_test():
    fired = set()
    for path in TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test") or []:
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    untested = sorted(rule["alert"] for _, rule in alerts() if rule["alert"] not in fired)
    assert not untested, f"alerts never shown firing in tests/promtool: {untested}"


def test_every_alert_has_a_severity_and_a_summary():
    for name, rule in alerts():
        assert rule.get("labels", {}).get("severity") in ("warning", "critical"), (name, rule["alert"])
        assert rule.get("annotations", {}).get("summary"), (name, rule["alert"])


def test_pipeline_metrics_of_the_rules_are_exported():
    exporter = (ROOT / "roles" / "pipeline" / "files" / "pipeline_exporter.py").read_text()
    used = set()
    for path in RULES:
        used |= set(re.findall(r"\bisobar_[a-z_]+", path.read_text()))
    missing = sorted(name for name in used if f'"{name}"' not in exporter)
    assert not missing, f"rules use metrics the pipeline exporter does not export: {missing}"
