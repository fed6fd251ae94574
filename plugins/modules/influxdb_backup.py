#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Take a full InfluxDB 2 backup through its API, in the format of `influx backup`."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: influxdb_backup
short_description: Take a full InfluxDB 2 backup through its API, in the on-disk format of C(influx backup)
description:
  - Downloads a consistent snapshot of the metadata (KV store, SQL store and the bucket/shard manifest, from
    C(GET /api/v2/backup/metadata)) and then the TSM snapshot of every shard (C(GET /api/v2/backup/shards/<id>)),
    the protocol of C(influx backup), into the new directory O(path).
  - The files are those C(influx backup) writes (manifest version 2, gzip), so C(influx restore --full) can restore
    them as well as M(isobar.pipeline.influxdb_restore). Next to them a sidecar C(<base>.isobar.json) records the sha256 of every
    file, the fingerprint (sha256) of the operator token used - a full restore brings back the tokens of the backup,
    so a restore can tell in advance whether the token it holds will still exist afterwards - and the value counts
    of O(count_buckets).
  - Needs an operator token (all permissions on every org); the backup holds every secret of the instance (token
    hashes, user password hashes), so the directory is created mode 0700 and every file 0600.
  - Streams - shards are never held in memory; KV and SQL stores pass through memory in chunks.
  - Every run takes a new backup (a real change). In check mode the token and O(count_buckets) are checked and
    nothing is written.
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
options:
  token:
    description: Operator token (all permissions). Env C(INFLUX_TOKEN).
  org:
    description: Organization of the O(count_buckets). Env C(INFLUX_ORG).
    required: false
  timeout:
    description: Seconds to wait for a connection or for the next bytes of an answer.
  path:
    description:
      - Directory to write the backup into; created (mode 0700), and it must not exist yet or be empty.
      - Removed again when the backup fails half-way.
    type: path
    required: true
  basename:
    description: Prefix of the file names; default the UTC time of the backup like C(influx backup) (C(20260102T030405Z)).
    type: str
  count_buckets:
    description:
      - Buckets of O(org) whose field values are counted (all time) and recorded in the sidecar, so a restore can
        be checked against them. Counting reads every value (cheap for small buckets, slow for very large ones).
    type: list
    elements: str
    default: []
  label:
    description: Free text recorded in the sidecar as the source of the backup (e.g. the inventory host name).
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Back up InfluxDB into a staging directory on its host
  influxdb_backup:
    url: https://127.0.0.1:8086
    ca_path: /etc/isobar/pki/ca.crt
    token: "{{ influxdb_operator_token }}"
    org: myorg
    path: /var/backups/isobar-influxdb/20260102T030405Z
    basename: 20260102T030405Z
    count_buckets: [weather]
    label: "{{ inventory_hostname }}"
  register: backup

- name: Fetch every file of it to the controller
  ansible.builtin.fetch:
    src: "{{ backup.path }}/{{ item.name }}"
    dest: "/srv/backups/influxdb/{{ backup.basename }}/"
    flat: true
  loop: "{{ backup.files }}"
"""

RETURN = r"""
path:
  description: Directory of the backup.
  returned: always
  type: str
basename:
  description: Prefix of the file names (the backup's name).
  returned: always
  type: str
files:
  description: Files of the backup (manifest and sidecar last), each with its size and sha256.
  returned: success, not in check mode
  type: list
  elements: dict
  contains:
    name: {description: File name inside O(path)., type: str}
    size: {description: Bytes., type: int}
    sha256: {description: sha256 of the file., type: str}
bytes:
  description: Total size of the backup in bytes.
  returned: success, not in check mode
  type: int
seconds:
  description: Time the backup took.
  returned: success, not in check mode
  type: float
buckets:
  description: Names (C(org/bucket)) of the buckets in the backup.
  returned: success, not in check mode
  type: list
  elements: str
shards:
  description: Number of shards saved (shards removed by retention during the backup are skipped).
  returned: success, not in check mode
  type: int
counts:
  description:
    - Field values per bucket of O(count_buckets) at backup time, of the points older than 2 s before the backup
      began (recorded as C(count_stop) in the sidecar; influxdb_restore counts to the same bound). Points live
      writers add while the snapshot is taken are in the backup but not in these counts.
  returned: always
  type: dict
influxdb_version:
  description: Version of the server backed up.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_backup_common import server_version
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_backup_take import BASENAME_RE, BackupFailed, take_backup, utc_name
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import NOTHING_CHANGED, InfluxDBApi, InfluxDBError, influxdb_argument_spec


def main():
    argument_spec = influxdb_argument_spec(org_required=False)
    argument_spec.update(
        path=dict(type="path", required=True),
        basename=dict(type="str"),
        count_buckets=dict(type="list", elements="str", default=[]),
        label=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    path = params["path"]
    base = params["basename"] or utc_name()
    if not BASENAME_RE.match(base):
        module.fail_json(msg=f"basename {base!r} may hold only letters, digits, '_', '.' and '-'. {NOTHING_CHANGED}")
    if not params["token"]:
        module.fail_json(msg=f"token is required: a backup needs the operator token. {NOTHING_CHANGED}")
    if params["count_buckets"] and not params["org"]:
        module.fail_json(msg=f"count_buckets needs org (the buckets' organization). {NOTHING_CHANGED}")
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        module.fail_json(msg=f"{path} exists and is not an empty directory: a backup goes into a new directory. "
                             f"{NOTHING_CHANGED}")

    api = InfluxDBApi(module)
    result = dict(changed=True, path=path, basename=base, counts={}, influxdb_version=server_version(api))
    try:
        api.request("GET", "/api/v2/orgs", {"limit": 1})
    except InfluxDBError as exc:
        api.fail("cannot use the token", exc)
    count_ids = {}
    if params["count_buckets"]:
        org_id = api.org()["id"]
        for name in params["count_buckets"]:
            count_ids[name] = (org_id, api.bucket(name, org_id)["id"])
    if module._diff:
        result["diff"] = dict(before={"path": path, "backup": None}, after={"path": path, "backup": base})
    if module.check_mode:
        module.exit_json(**result)

    try:
        taken = take_backup(module, api, path, base, count_ids, params["token"], org=params["org"],
                            label=params["label"], influxdb_version=result["influxdb_version"])
    except BackupFailed as exc:
        module.fail_json(msg=str(exc))
    finally:
        api.close()
    result.update(files=taken["files"], bytes=taken["bytes"], seconds=taken["seconds"], buckets=taken["buckets"],
                  shards=taken["shards"], counts=taken["counts"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
