# Copyright: Isobar contributors
# Apache-2.0
# The host side of the file_set action plugin (plugins/action/file_set.py), which runs on the controller first.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_set
version_added: "1.0.0"
author: Isobar contributors (@isobar)
requirements:
  - Python 3 on the managed host (the standard library only)
short_description: Keep a set of the controller's files on a host, checked in one call and sent as one archive
description:
  - The outcome of M(ansible.builtin.copy) of a directory (or of a list of files in it), at the cost of one module
    call when the host already has them, and of one archive when it does not.
  - The action plugin lists the source files on the controller with their sha256 (the manifest) and runs this module
    on the host once; it answers which files are missing or differ and puts right owner, group and mode of the
    others.
  - Only when some file's content differs does the controller pack those files into one tar (deterministic, sorted,
    no time, owner or mode of the controller's files), send it, and run the module again to unpack it. Every file
    is written next to its target and checked against the manifest's sha256 first; only when all are right do they
    replace their targets, so a damaged archive changes nothing.
  - M(ansible.builtin.copy) over a directory costs a module round trip per file; for the 14 wheels of the client
    virtualenv that was 19 s of a cold converge of five hosts.
  - Files in O(dest) that are not in the set are left alone (as M(ansible.builtin.copy) does).
options:
  src:
    description:
      - A directory on the controller. Without O(files), every regular file below it (recursively, symbolic links
        followed) is kept on the host under the same relative name.
    type: path
    required: true
  files:
    description:
      - Only these files of O(src) (relative names, normalized, no C(..)).
    type: list
    elements: str
  dest:
    description:
      - The directory on the host. It, its missing parents and the directories below it are created when missing
        (O(owner), O(group), O(directory_mode)).
    type: path
    required: true
  owner:
    description: Owner of the files and of the directories this module creates (name or number).
    type: str
    default: root
  group:
    description: Group of the files and of the directories this module creates (name or number).
    type: str
    default: root
  mode:
    description: Permissions of the files, an octal string.
    type: str
    default: "0644"
  directory_mode:
    description: Permissions of the directories this module creates, an octal string (existing ones are left alone).
    type: str
    default: "0755"
  manifest:
    description:
      - Set by the action plugin (the files' relative names and sha256); a task cannot set it.
    type: dict
  archive:
    description:
      - Set by the action plugin (the archive it sent, on the host); a task cannot set it. The module deletes it.
    type: path
extends_documentation_fragment:
  - isobar.pipeline.attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be sent or corrected; nothing is packed or sent.
  diff_mode:
    support: full
    details: One C(sha256  name) line per file whose content changes, before and after (C(absent) for a new file).
notes:
  - The controller hashes each source file once per process and file version (size and time unchanged).
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Client venv | Copy the wheels
  isobar.pipeline.file_set:
    src: "{{ client_venv_wheels_src }}"
    dest: /opt/isobar/wheels

- name: Code | Install the shared code
  isobar.pipeline.file_set:
    src: "{{ role_path }}/../../plugins/module_utils"
    files: [kafka_client.py, pipeline_live.py]
    dest: /opt/isobar/live/ansible_collections/isobar/pipeline/plugins/module_utils
    owner: root
    group: root
    mode: "0644"
"""

RETURN = r"""
dest:
  description: The directory on the host.
  returned: always
  type: str
  sample: /opt/isobar/wheels
files:
  description: The set's relative names.
  returned: always
  type: list
  elements: str
  sample: [SHA256SUMS, kafka_python-3.0.12-py3-none-any.whl]
sent:
  description: The files whose content was (in check mode, would be) sent, missing or different on the host.
  returned: always
  type: list
  elements: str
  sample: [kafka_python-3.0.12-py3-none-any.whl]
corrected:
  description: The files whose content was right and whose owner, group or mode was (would be) put right.
  returned: always
  type: list
  elements: str
  sample: []
sent_bytes:
  description: Bytes of content in the archive sent (0 when nothing was sent, and in check mode).
  returned: always
  type: int
  sample: 614268
"""

import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.file_set import (
    FileSetError, directories_to_make, fix_attributes, inspect, make_directories, parse_mode, unpack,
    validate_manifest)


def _id(value, database, what):
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        return (database.getpwnam(text).pw_uid if database is pwd else database.getgrnam(text).gr_gid)
    except KeyError:
        raise FileSetError(f"{what} {text!r} does not exist on the host") from None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),  # the controller's directory (not read on the host)
            files=dict(type="list", elements="str"),
            dest=dict(type="path", required=True),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="root"),
            mode=dict(type="str", default="0644"),
            directory_mode=dict(type="str", default="0755"),
            manifest=dict(type="dict"),
            archive=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    dest, archive = params["dest"], params["archive"]
    try:
        if params["manifest"] is None:
            raise FileSetError("no manifest: run file_set as a task (its action plugin makes the manifest)")
        manifest = validate_manifest(params["manifest"])
        mode = parse_mode(params["mode"], "mode")
        directory_mode = parse_mode(params["directory_mode"], "directory_mode")
        uid, gid = _id(params["owner"], pwd, "owner"), _id(params["group"], grp, "group")
        if not os.path.isabs(dest):
            raise FileSetError(f"dest must be an absolute path, got {dest!r}")
        state = inspect(dest, manifest, uid, gid, mode)
        result = dict(dest=dest, files=sorted(manifest), sent=state["content"], corrected=state["attributes"],
                      before=state["before"], sent_bytes=0)
        result["changed"] = bool(state["content"] or state["attributes"])
        if module.check_mode:
            module.exit_json(**result)
        directories = directories_to_make(dest, manifest)
        make_directories(directories, uid, gid, directory_mode)
        fix_attributes(dest, state["attributes"], uid, gid, mode)
        if archive:
            unpack(dest, archive, manifest, state["content"], uid, gid, mode)
            result["sent_bytes"] = sum(os.path.getsize(os.path.join(dest, name)) for name in state["content"])
        result["changed"] = result["changed"] or bool(directories)
        module.exit_json(**result)
    except (FileSetError, OSError) as exc:
        module.fail_json(msg=f"file_set {dest}: {exc}")
    finally:
        if archive and os.path.exists(archive):
            os.unlink(archive)


if __name__ == "__main__":
    main()
