"""isobar.pipeline.file_set's two halves: the controller's manifest and archive (plugin_utils/file_set.py) and the
host's comparison and unpacking (module_utils/file_set.py), on real files in a temporary directory."""
from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from ansible_collections.isobar.pipeline.plugins.module_utils.file_set import (
    FileSetError, check_relative, directories_to_make, inspect, parse_mode, unpack, validate_manifest)
from ansible_collections.isobar.pipeline.plugins.plugin_utils.file_set import (
    diff_lines, manifest, pack, pack_bytes, source_files)

UID, GID = os.getuid(), os.getgid()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    (root / "a.whl").write_bytes(b"wheel a")
    (root / "SHA256SUMS").write_bytes(b"sums")
    (root / "sub" / "b.py").write_bytes(b"print('b')\n")
    return root


def test_the_source_is_every_file_below_src_or_the_named_ones(src):
    assert list(source_files(str(src))) == ["SHA256SUMS", "a.whl", "sub/b.py"]
    assert list(source_files(str(src), ["sub/b.py", "a.whl"])) == ["a.whl", "sub/b.py"]
    assert manifest(source_files(str(src)))["a.whl"] == sha(b"wheel a")


@pytest.mark.parametrize("files, message", [
    (["missing.py"], "is not a file in"),
    (["../src/a.whl"], "not a normalized relative"),
    (["/etc/passwd"], "not a relative file name"),
    (["sub"], "is not a file in"),
    ([], "non-empty list"),
])
def test_bad_file_lists_are_refused(src, files, message):
    with pytest.raises(FileSetError, match=message):
        source_files(str(src), files)


def test_a_missing_or_empty_src_is_refused(tmp_path):
    with pytest.raises(FileSetError, match="is not a directory"):
        source_files(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileSetError, match="holds no file"):
        source_files(str(tmp_path / "empty"))


def test_the_archive_is_the_same_bytes_whatever_the_source_files_times_and_modes(src):
    sources = source_files(str(src))
    first = pack_bytes(sources, ["sub/b.py", "a.whl"])
    os.utime(src / "a.whl", (1, 1))
    os.chmod(src / "a.whl", 0o600)
    assert pack_bytes(sources, ["a.whl", "sub/b.py"]) == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a.whl", "sub/b.py"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}


def test_inspect_says_which_files_need_content_and_which_only_attributes(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "same").write_bytes(b"same")
    os.chmod(dest / "same", 0o644)
    (dest / "wrong-mode").write_bytes(b"mode")
    os.chmod(dest / "wrong-mode", 0o600)
    (dest / "other").write_bytes(b"old")
    (dest / "a-dir").mkdir()
    wanted = {"same": sha(b"same"), "wrong-mode": sha(b"mode"), "other": sha(b"new"), "absent": sha(b"x"),
              "a-dir": sha(b"y")}
    state = inspect(str(dest), wanted, UID, GID, 0o644)
    assert state["content"] == ["a-dir", "absent", "other"]
    assert state["attributes"] == ["wrong-mode"]
    assert state["before"] == {"absent": "absent", "other": sha(b"old"), "a-dir": "not a regular file"}


def test_unpack_puts_every_file_in_place_with_the_asked_mode(src, tmp_path):
    sources = source_files(str(src))
    wanted = manifest(sources)
    dest = tmp_path / "dest"
    for directory in directories_to_make(str(dest), wanted):
        os.makedirs(directory)
    archive = tmp_path / "set.tar"
    with open(archive, "wb") as handle:
        pack(sources, list(wanted), handle)
    unpack(str(dest), str(archive), wanted, list(wanted), UID, GID, 0o640)
    assert (dest / "sub" / "b.py").read_bytes() == b"print('b')\n"
    assert oct(os.stat(dest / "a.whl").st_mode & 0o7777) == oct(0o640)
    assert inspect(str(dest), wanted, UID, GID, 0o640) == {"content": [], "attributes": [], "before": {}}
    assert not [name for name in os.listdir(dest) if name.startswith(".file_set-")]


def test_a_damaged_archive_changes_nothing(src, tmp_path):
    sources = source_files(str(src))
    wanted = manifest(sources)
    dest = tmp_path / "dest"
    (dest / "sub").mkdir(parents=True)
    (dest / "a.whl").write_bytes(b"the old wheel")
    wanted_damaged = dict(wanted, **{"sub/b.py": sha(b"something else")})
    archive = tmp_path / "set.tar"
    archive.write_bytes(pack_bytes(sources, ["a.whl", "sub/b.py"]))
    with pytest.raises(FileSetError, match="sub/b.py: the archive's copy has sha256"):
        unpack(str(dest), str(archive), wanted_damaged, ["a.whl", "sub/b.py"], UID, GID, 0o644)
    # a.whl came first and was right, but nothing replaces its file until every file is checked
    assert (dest / "a.whl").read_bytes() == b"the old wheel"
    assert not (dest / "sub" / "b.py").exists()
    assert sorted(os.listdir(dest)) == ["a.whl", "sub"] and os.listdir(dest / "sub") == []


def test_an_archive_with_other_files_than_asked_is_refused(src, tmp_path):
    sources = source_files(str(src))
    wanted = manifest(sources)
    archive = tmp_path / "set.tar"
    archive.write_bytes(pack_bytes(sources, ["a.whl", "SHA256SUMS"]))
    (tmp_path / "dest").mkdir()
    with pytest.raises(FileSetError, match="'SHA256SUMS', which was not asked for"):
        unpack(str(tmp_path / "dest"), str(archive), wanted, ["a.whl"], UID, GID, 0o644)
    archive.write_bytes(pack_bytes(sources, ["a.whl"]))
    with pytest.raises(FileSetError, match="the archive lacks SHA256SUMS"):
        unpack(str(tmp_path / "dest"), str(archive), wanted, ["a.whl", "SHA256SUMS"], UID, GID, 0o644)
    assert os.listdir(tmp_path / "dest") == []


def test_directories_to_make_lists_missing_parents_first(tmp_path):
    dest = tmp_path / "p" / "d"
    assert directories_to_make(str(dest), ["x/y/z.py", "top.py"]) == [
        str(tmp_path / "p"), str(dest), str(dest / "x"), str(dest / "x/y")]
    (dest / "x").mkdir(parents=True)
    assert directories_to_make(str(dest), ["x/y/z.py"]) == [str(dest / "x/y")]


@pytest.mark.parametrize("value, expected", [("0644", 0o644), ("755", 0o755), ("0640", 0o640), (0o600, 0o600)])
def test_modes_are_octal_strings(value, expected):
    assert parse_mode(value, "mode") == expected


@pytest.mark.parametrize("value", ["rw-r--r--", "0948", "", "u+x", "107777"])
def test_other_modes_are_refused(value):
    with pytest.raises(FileSetError, match="mode"):
        parse_mode(value, "mode")


def test_manifest_names_and_digests_are_checked():
    with pytest.raises(FileSetError, match="empty"):
        validate_manifest({})
    with pytest.raises(FileSetError, match="not a sha256"):
        validate_manifest({"a": "abc"})
    with pytest.raises(FileSetError, match="normalized"):
        validate_manifest({"a/../../etc/passwd": "0" * 64})
    assert check_relative("sub/b.py") == "sub/b.py"


def test_the_diff_is_one_line_per_file_whose_content_changes():
    old, new = diff_lines(["b", "a"], {"a": "absent"}, {"a": "1" * 64, "b": "2" * 64})
    assert old == "absent  a\nabsent  b\n"
    assert new == f"{'1' * 64}  a\n{'2' * 64}  b\n"
