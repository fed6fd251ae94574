"""restart_pending: a running service that loaded its files before they last changed is pending a restart (14.2)."""
from __future__ import annotations

import os
import shutil
import time

from ansible_collections.isobar.pipeline.plugins.module_utils import restart_pending as rp


def test_newest_change_takes_the_most_recent_and_ignores_missing(tmp_path):
    first, second = tmp_path / "a.conf", tmp_path / "b.conf"
    first.write_text("x")
    time.sleep(0.02)
    second.write_text("y")
    newest, path = rp.newest_change([str(first), str(second), str(tmp_path / "missing")])
    assert path == str(second) and newest == os.lstat(second).st_ctime
    assert rp.newest_change([str(tmp_path / "missing")]) == (0.0, "")


def test_a_copy_that_keeps_an_old_mtime_still_counts_as_changed(tmp_path):
    # copy with remote_src creates the file with the source's mtime (copystat): only its ctime tells it is new.
    source = tmp_path / "issued.crt"
    source.write_text("cert")
    os.utime(source, (1000, 1000))
    dest = tmp_path / "service.crt"
    shutil.copy2(source, dest)
    assert os.stat(dest).st_mtime == 1000
    assert rp.newest_change([str(dest)])[0] > time.time() - 60


def test_a_link_counts_by_itself_not_its_target(tmp_path):
    release = tmp_path / "release-1"
    release.mkdir()
    time.sleep(0.02)
    current = tmp_path / "current"
    current.symlink_to(release)
    assert rp.newest_change([str(current)]) == (os.lstat(current).st_ctime, str(current))


def test_started_at_converts_the_monotonic_timestamp():
    assert rp.started_at(5_000_000, now_real=1000.0, now_mono=15.0) == 990.0
    assert rp.started_at(0, now_real=1000.0, now_mono=15.0) == 0.0


def test_parse_show():
    assert rp.parse_show("ActiveState=active\nExecMainStartTimestampMonotonic=123456\n") == (True, 123456)
    assert rp.parse_show("ActiveState=inactive\nExecMainStartTimestampMonotonic=0\n") == (False, 0)
    assert rp.parse_show("ActiveState=active\nExecMainStartTimestampMonotonic=\n") == (True, 0)


def test_a_reload_stamp_counts_only_when_later_and_only_while_active():
    assert rp.loaded_at(True, 100.0, 150.0) == 150.0
    assert rp.loaded_at(True, 100.0, 0.0) == 100.0
    assert rp.loaded_at(False, 100.0, 150.0) == 0.0


def test_decide():
    pending, msg = rp.decide(True, loaded=100.0, newest=150.0, newest_path="/etc/x")
    assert pending is True and msg == "/etc/x changed 50.0 s after the running process loaded its files"
    assert rp.decide(True, loaded=200.0, newest=150.0, newest_path="/etc/x")[0] is False
    pending, msg = rp.decide(False, loaded=0.0, newest=150.0, newest_path="/etc/x")
    assert pending is False and "not active" in msg
    assert rp.decide(True, loaded=0.0, newest=150.0, newest_path="/etc/x")[0] is False


def test_validate_refuses_bad_options_up_front():
    assert rp.validate("telegraf", ["/etc/telegraf/telegraf.conf"]) is None
    assert "without .service" in rp.validate("telegraf.service", ["/etc/x"])
    assert "without .service" in rp.validate("a/b", ["/etc/x"])
    assert "at least one" in rp.validate("telegraf", [])
    assert "absolute" in rp.validate("telegraf", ["etc/x"])
