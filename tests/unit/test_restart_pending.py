"""restart_pending: a running service whose files are newer than its start is pending a restart (issue 14.2)."""
from __future__ import annotations

import os

from ansible_collections.isobar.pipeline.plugins.modules import restart_pending as rp


def test_newest_counts_every_file_below_a_directory_and_ignores_missing(tmp_path):
    conf = tmp_path / "conf"
    (conf / "ssl").mkdir(parents=True)
    for name, mtime in (("a.conf", 100), ("ssl/key.pem", 300)):
        (conf / name).write_text("x")
        os.utime(conf / name, (mtime, mtime))
    os.utime(conf / "ssl", (50, 50))
    os.utime(conf, (50, 50))
    unit = tmp_path / "x.service"
    unit.write_text("x")
    os.utime(unit, (200, 200))
    assert rp.newest_mtime([str(conf), str(unit), str(tmp_path / "missing")]) == (300.0, str(conf / "ssl/key.pem"))


def test_a_removed_file_counts_through_its_directory(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "jaas.conf").write_text("x")
    os.utime(conf / "jaas.conf", (100, 100))
    before = rp.newest_mtime([str(conf)])[0]
    (conf / "jaas.conf").unlink()
    after, path = rp.newest_mtime([str(conf)])
    assert after >= before and path == str(conf)


def test_started_at_converts_the_monotonic_timestamp():
    assert rp.started_at(5_000_000, now_real=1000.0, now_mono=15.0) == 990.0
    assert rp.started_at(0, now_real=1000.0, now_mono=15.0) == 0.0


def test_decide():
    assert rp.decide(True, loaded_at=100.0, newest=150.0, newest_path="/etc/x")[0] is True
    assert rp.decide(True, loaded_at=200.0, newest=150.0, newest_path="/etc/x")[0] is False
    pending, msg = rp.decide(False, loaded_at=0.0, newest=150.0, newest_path="/etc/x")
    assert pending is False and "not active" in msg
