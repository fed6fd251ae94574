# Copyright: Isobar contributors
# Apache-2.0
"""When copy_file and template_file may answer with one command on the host instead of running ansible.builtin.copy,
and what that command says (pure Python, unit-tested).

ansible.builtin.copy and template cost four remote round trips on a host whose file is already right (a temporary
directory, a stat with checksum, the file module for the attributes, removing the directory); ~170 such results are
about a quarter of a converged re-run of site.yml. The check is one shell command (stat and sha256sum, no module:
no Python started on the host, and through Mitogen no forked module process) and only answers for the plain case it
can compare exactly (one file on the controller or a content, owner/group/mode at most); anything else goes to the
builtin as before."""

from __future__ import annotations

import hashlib
import json
import shlex

from ansible.module_utils.common.text.converters import to_bytes

# Options the check understands: the rest of the task's options only act when the file is written (validate, backup,
# force, unsafe_writes, follow through the builtin) or make it a case the check does not answer for.
CHECKED = frozenset(("src", "content", "dest", "owner", "group", "mode"))
INERT_WHEN_RIGHT = frozenset(("validate", "backup", "force", "unsafe_writes", "decrypt", "follow", "directory_mode"))


def content_bytes(content):
    """The bytes ansible.builtin.copy writes for ``content`` (a list or dict as JSON, anything else as text)."""
    if isinstance(content, (dict, list)):
        content = json.dumps(content)
    return to_bytes(content)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def octal_mode(mode):
    """The task's mode as an octal string the check compares, or None when it cannot (symbolic, 'preserve')."""
    if mode is None:
        return None
    if isinstance(mode, bool):
        return None
    if isinstance(mode, int):
        return f"{mode:04o}" if 0 <= mode <= 0o7777 else None
    text = str(mode).strip()
    if text and len(text) <= 4 and all(c in "01234567" for c in text):
        return f"{int(text, 8):04o}"
    return None


def why_not_checkable(args):
    """Why the check cannot answer for these task options ('' when it can)."""
    extra = set(args) - CHECKED - INERT_WHEN_RIGHT
    if extra:
        return f"options {', '.join(sorted(extra))}"
    if not args.get("dest") or str(args["dest"]).endswith("/"):
        return "a directory as dest"
    if ("src" in args) == ("content" in args):
        return "not exactly one of src and content"
    if args.get("mode") is not None and octal_mode(args["mode"]) is None:
        return f"mode {args['mode']!r}"
    if "src" in args and str(args["src"]).endswith("/"):
        return "a directory as src"
    return ""


def state_command(path):
    """One shell command (run through become) that prints the file's numeric and named owner and group, octal mode and
    type (stat without following a link), then its sha256 when it is a regular file; nothing and rc 1 when it is
    absent."""
    return ("sh -c " + shlex.quote('stat -c "%u %g %U %G %a %F" -- "$1" && { [ ! -f "$1" ] || [ -L "$1" ] || '
                                   'sha256sum -- "$1"; }') + " sh " + shlex.quote(str(path)))


def parse_state(rc, stdout):
    """The state_command's answer: None when the file is absent (or cannot be read), else a dict with uid, gid, user,
    group, mode (int), kind ('regular file', 'directory', 'symbolic link'...) and sha256 (regular files)."""
    lines = stdout.splitlines()
    if rc != 0 or not lines:
        return None
    words = lines[0].split(" ", 5)
    if len(words) != 6 or not words[0].isdigit() or not words[1].isdigit():
        return None
    try:
        mode = int(words[4], 8)
    except ValueError:
        return None
    kind = "regular file" if words[5] in ("regular file", "regular empty file") else words[5]
    digest = lines[1].split(" ", 1)[0] if len(lines) > 1 else None
    return {"uid": int(words[0]), "gid": int(words[1]), "user": words[2], "group": words[3], "mode": mode,
            "kind": kind, "sha256": digest}


def _same_id(wanted, number, name):
    text = str(wanted).strip()
    return int(text) == number if text.isdigit() else text == name


def compare(state, args, digest):
    """Whether the host's file (parse_state) already is what the task writes: ``(True, '')`` or ``(False, why)``."""
    if state is None:
        return False, "absent"
    if state["kind"] != "regular file":
        return False, f"a {state['kind']}"
    if args.get("owner") is not None and not _same_id(args["owner"], state["uid"], state["user"]):
        return False, f"owner {state['user']}"
    if args.get("group") is not None and not _same_id(args["group"], state["gid"], state["group"]):
        return False, f"group {state['group']}"
    if args.get("mode") is not None and int(octal_mode(args["mode"]), 8) != state["mode"]:
        return False, f"mode {state['mode']:04o}"
    if state["sha256"] != digest:
        return False, "other content"
    return True, ""
