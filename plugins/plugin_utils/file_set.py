# Copyright: Isobar contributors
# Apache-2.0
"""The controller side of isobar.pipeline.file_set (pure Python, unit-tested): the manifest of the source files
(relative path -> sha256) and the archive of those a host lacks.

The archive is deterministic (names sorted, no owner, time or mode of the controller's files in it): the same files
make the same bytes, whichever controller packs them. Owners and modes are the host side's, from the task."""

from __future__ import annotations

import io
import os
import tarfile

from ansible_collections.isobar.pipeline.plugins.module_utils.file_set import FileSetError, check_relative, sha256_of

# (path, size, mtime_ns) -> sha256: the play's hosts share the controller's process per fork; a file unchanged since
# it was hashed is not read again.
_DIGESTS = {}


def _digest(path):
    info = os.stat(path)
    key = (path, info.st_size, info.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_of(path)
    return _DIGESTS[key]


def source_files(src, files=None):
    """The files to keep: ``{relative name: absolute path}``. Without ``files``, every regular file below ``src``
    (symbolic links followed, directories walked); with it, exactly those names, each a regular file below ``src``."""
    if not src or not os.path.isdir(src):
        raise FileSetError(f"src {src!r} is not a directory on the controller")
    src = os.path.abspath(src)
    found = {}
    if files is None:
        for directory, subdirectories, names in os.walk(src, followlinks=True):
            subdirectories.sort()
            for name in names:
                path = os.path.join(directory, name)
                if os.path.isfile(path):
                    found[os.path.relpath(path, src).replace(os.sep, "/")] = path
        if not found:
            raise FileSetError(f"src {src} holds no file")
        return dict(sorted(found.items()))
    if not isinstance(files, (list, tuple)) or not files:
        raise FileSetError("files must be a non-empty list of names below src (or left out for all of them)")
    for name in files:
        check_relative(name)
        path = os.path.join(src, name)
        if not os.path.isfile(path):
            raise FileSetError(f"{name} is not a file in {src}")
        found[name] = path
    return dict(sorted(found.items()))


def manifest(sources):
    """``{relative name: sha256}`` of the source files."""
    return {name: _digest(path) for name, path in sources.items()}


def pack(sources, names, out):
    """Write a plain tar of the named files to the binary stream ``out`` (sorted; mtime 0, uid/gid 0, mode 0644, no
    user or group names); returns the bytes of content packed."""
    size = 0
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(names):
            path = sources[name]
            info = tarfile.TarInfo(name)
            info.size = os.path.getsize(path)
            info.mtime, info.uid, info.gid, info.mode = 0, 0, 0, 0o644
            info.uname = info.gname = ""
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
            size += info.size
    return size


def pack_bytes(sources, names):
    """pack() into memory (for the unit tests and small sets)."""
    buffer = io.BytesIO()
    pack(sources, names, buffer)
    return buffer.getvalue()


def diff_lines(names, before, manifest_):
    """The diff's before and after texts: one ``sha256  name`` line per file whose content changes."""
    old = "".join(f"{before.get(name, 'absent')}  {name}\n" for name in sorted(names))
    new = "".join(f"{manifest_[name]}  {name}\n" for name in sorted(names))
    return old, new
