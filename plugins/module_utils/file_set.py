# Copyright: Isobar contributors
# Apache-2.0
"""The host side of isobar.pipeline.file_set (pure Python, unit-tested): compare a directory with the controller's
manifest (relative path -> sha256), fix owners and modes, and put in the files of an archive the controller sent,
each checked against the manifest before any of them replaces its file.

One call answers for the whole set, where ansible.builtin.copy over a directory costs a module round trip per file
(14 wheels: 19 s of a cold converge of five hosts, and a stat per file on every re-run)."""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tarfile
import tempfile

CHUNK = 1024 * 1024


class FileSetError(ValueError):
    """A request or an archive the host side refuses (nothing changed)."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_relative(name):
    """A manifest entry: a normalized relative path below the destination (no '..', no absolute path)."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name or "\x00" in name:
        raise FileSetError(f"not a relative file name: {name!r}")
    if posixpath.normpath(name) != name or name.split("/")[0] in ("", ".", ".."):
        raise FileSetError(f"not a normalized relative file name: {name!r}")
    return name


def validate_manifest(manifest):
    if not isinstance(manifest, dict) or not manifest:
        raise FileSetError("the manifest is empty: no file to keep")
    for name, digest in manifest.items():
        check_relative(name)
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise FileSetError(f"{name}: not a sha256 hex digest: {digest!r}")
    return manifest


def parse_mode(value, what):
    """An octal permission string ('0644') as an int; ints (already parsed) pass."""
    if isinstance(value, int):
        mode = value
    else:
        text = str(value).strip()
        if not text or any(c not in "01234567" for c in text) or len(text) > 4:
            raise FileSetError(f"{what} must be an octal mode such as 0644, got {value!r}")
        mode = int(text, 8)
    if mode < 0 or mode > 0o7777:
        raise FileSetError(f"{what} out of range: {value!r}")
    return mode


def inspect(dest, manifest, uid, gid, mode):
    """What differs on the host: ``content`` (missing, not a regular file, or another sha256: the file must be sent)
    and ``attributes`` (right content, other owner, group or mode), sorted, with ``before`` (the current sha256 of each
    file whose content differs, 'absent' when there is none)."""
    content, attributes, before = [], [], {}
    for name in sorted(manifest):
        path = os.path.join(dest, name)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            content.append(name)
            before[name] = "absent"
            continue
        except NotADirectoryError:
            content.append(name)
            before[name] = "absent"
            continue
        if not stat.S_ISREG(info.st_mode):
            content.append(name)
            before[name] = "not a regular file"
            continue
        current = sha256_of(path)
        if current != manifest[name]:
            content.append(name)
            before[name] = current
        elif (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) != (uid, gid, mode):
            attributes.append(name)
    return {"content": content, "attributes": attributes, "before": before}


def directories_to_make(dest, names):
    """The directories that do not exist yet, parents first: dest's missing parents, dest, and the parents of the
    files below it (all get the task's owner and directory mode)."""
    wanted = {dest}
    parent = os.path.dirname(dest)
    while parent and parent != os.path.dirname(parent):
        wanted.add(parent)
        parent = os.path.dirname(parent)
    for name in names:
        parent = posixpath.dirname(name)
        while parent:
            wanted.add(os.path.join(dest, parent))
            parent = posixpath.dirname(parent)
    return sorted(path for path in wanted if not os.path.isdir(path))


def make_directories(paths, uid, gid, directory_mode):
    for path in paths:
        if os.path.lexists(path) and not os.path.isdir(path):
            raise FileSetError(f"{path} exists and is not a directory")
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, directory_mode)


def fix_attributes(dest, names, uid, gid, mode):
    for name in names:
        path = os.path.join(dest, name)
        os.chown(path, uid, gid)
        os.chmod(path, mode)


def unpack(dest, archive, manifest, wanted, uid, gid, mode):
    """Put the archive's files in place. Each member must be a regular file the request named (``wanted``), with the
    manifest's sha256; every file is first written next to its target and checked, and only when all are right do
    they replace their targets (one rename each). A wrong archive changes nothing and says which file was wrong."""
    wanted = set(wanted)
    staged = []
    try:
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                if member.name not in wanted:
                    raise FileSetError(f"the archive holds {member.name!r}, which was not asked for")
                if not member.isreg():
                    raise FileSetError(f"the archive's {member.name!r} is not a regular file")
                target = os.path.join(dest, member.name)
                handle, temporary = tempfile.mkstemp(prefix=".file_set-", dir=os.path.dirname(target))
                staged.append((temporary, target, member.name))
                digest = hashlib.sha256()
                source = tar.extractfile(member)
                with os.fdopen(handle, "wb") as out:
                    for block in iter(lambda: source.read(CHUNK), b""):
                        digest.update(block)
                        out.write(block)
                if digest.hexdigest() != manifest[member.name]:
                    raise FileSetError(f"{member.name}: the archive's copy has sha256 {digest.hexdigest()}, the "
                                       f"controller's file {manifest[member.name]}")
                wanted.discard(member.name)
        if wanted:
            raise FileSetError(f"the archive lacks {', '.join(sorted(wanted))}")
        for temporary, target, _name in staged:
            os.chown(temporary, uid, gid)
            os.chmod(temporary, mode)
        for temporary, target, _name in staged:
            os.replace(temporary, target)
        staged = []
    except tarfile.TarError as exc:
        raise FileSetError(f"cannot read the archive {archive}: {exc}") from None
    finally:
        for temporary, _target, _name in staged:
            if os.path.exists(temporary):
                os.unlink(temporary)
