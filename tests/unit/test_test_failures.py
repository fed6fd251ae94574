"""tools/test_failures.py: what `make test-molecule` prints when a Molecule verify failed."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("test_failures", ROOT / "tools" / "test_failures.py")
test_failures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(test_failures)

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" tests="3">
<testcase classname="test_rotation" name="test_passes" time="0.1"/>
<testcase classname="test_rotation" name="test_new_scram_passwords_log_in[ansible://kafka1]" time="2.0">
<failure message="AssertionError: new SCRAM passwords refused: ['admin: KafkaTimeoutError']">line 1
{body}E   AssertionError: new SCRAM passwords refused</failure></testcase>
<testcase classname="test_rotation" name="test_lab" time="0.0"><error message="fixture 'lab' failed">boom</error></testcase>
</testsuite></testsuites>
"""


def test_names_each_failed_and_errored_test_with_the_end_of_its_text(tmp_path, capsys):
    (tmp_path / "molecule-rotation.xml").write_text(REPORT.format(body="filler\n" * 100))
    (tmp_path / "molecule-default.xml").write_text(
        '<testsuites><testsuite><testcase classname="test_base" name="test_passes"/></testsuite></testsuites>')
    assert test_failures.main([str(tmp_path), "--lines", "5"]) == 0
    err = capsys.readouterr().err
    assert "FAILURE: test_rotation::test_new_scram_passwords_log_in[ansible://kafka1]  (molecule-rotation.xml)" in err
    assert "new SCRAM passwords refused: ['admin: KafkaTimeoutError']" in err
    assert "E   AssertionError" in err and "line 1" not in err  # the end of the text, not its start
    assert "ERROR: test_rotation::test_lab" in err
    assert err.rstrip().splitlines()[-1].startswith("2 failed or errored test(s) in 2 report(s)")


def test_a_missing_or_broken_report_is_said_not_hidden(tmp_path, capsys):
    (tmp_path / "cut.xml").write_text("<testsuites><testsuite>")
    test_failures.main([str(tmp_path / "cut.xml"), str(tmp_path / "absent")])
    err = capsys.readouterr().err
    assert "UNREADABLE" in err and "cut.xml" in err
    assert "none written" not in err
