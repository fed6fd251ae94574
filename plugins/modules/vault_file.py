# Copyright: Isobar contributors
# Apache-2.0
# Documentation of the vault_file action plugin (plugins/action/vault_file.py), which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vault_file
author: Isobar contributors (@isobar)
short_description: Merge secrets into a whole-file Ansible Vault YAML file on the controller
description:
  - Reads an Ansible Vault encrypted YAML file (or starts an empty one), sets the given top-level
    keys (dict values are merged one level deep), removes the listed keys, and writes it back
    encrypted with the vault secret of O(vault_id), atomically and mode 0600.
  - Secrets stay whole-file encrypted, so C(ansible-vault rekey) keeps working on the file.
  - Values are never returned nor shown in the diff; the diff lists only the keys that change.
options:
  path:
    description: Path of the vault file on the controller.
    type: path
    required: true
  values:
    description: Top-level keys to set. A dict value is merged into an existing dict of the same key.
    type: dict
    default: {}
  remove:
    description: Top-level keys to remove.
    type: list
    elements: str
    default: []
  vault_id:
    description:
      - Vault identity whose secret encrypts the file. Rarely needed; the identity comes from the file's header, else
        this option, else the inventory variable C(isobar_vault_id), else the only identity loaded.
      - With several identities loaded and none of these, the plugin refuses (it never guesses). The lab's identity
        C(lab), whose password is published, is refused unless the inventory sets C(isobar_lab_environment=true).
    type: str
extends_documentation_fragment:
  - isobar.pipeline.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Keep the InfluxDB token created for the producer
  isobar.pipeline.vault_file:
    path: "{{ isobar_generated_vault_file }}"
    values:
      vault_influxdb_tokens:
        producer: "{{ created.token }}"
  no_log: true
"""

RETURN = r"""
vault_id:
  description: The vault identity the file is (or would be) encrypted with.
  returned: always
  type: str
  sample: prod
changed_keys:
  description: Top-level keys whose value was added, changed or removed (values are never returned).
  returned: always
  type: list
  elements: str
"""
