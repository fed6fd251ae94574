# Copyright: Isobar contributors
# Apache-2.0
"""Action plugin: merge values into an Ansible Vault encrypted YAML file on the controller."""

from __future__ import annotations

import os
import tempfile

import yaml

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.parsing.vault import is_encrypted, match_encrypt_secret
from ansible.plugins.action import ActionBase

DOCUMENTATION = r"""
---
module: isobar_vault_file
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
    description: Vault identity whose secret encrypts the file. Defaults to Ansible's default encrypt identity.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Keep the InfluxDB token created for the producer
  isobar_vault_file:
    path: "{{ isobar_generated_vault_file }}"
    values:
      vault_influxdb_tokens:
        producer: "{{ created.token }}"
  no_log: true
"""

RETURN = r"""
changed_keys:
  description: Top-level keys whose value was added, changed or removed (values are never returned).
  returned: always
  type: list
  elements: str
"""


def _plain(value):
    """Plain Python types for yaml.safe_dump (ansible-core 2.19 hands over tagged str/dict/list subclasses)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _merge(current, values, remove):
    result = dict(current)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            merged = dict(result[key])
            merged.update(value)
            result[key] = merged
        else:
            result[key] = value
    for key in remove:
        result.pop(key, None)
    return result


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "values", "remove", "vault_id"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        path = args.get("path")
        if not path:
            raise AnsibleActionFail("isobar_vault_file: 'path' is required")
        values = args.get("values") or {}
        remove = args.get("remove") or []
        if not isinstance(values, dict) or not isinstance(remove, list):
            raise AnsibleActionFail("isobar_vault_file: 'values' must be a dict and 'remove' a list")
        path = os.path.expanduser(str(path))

        vault = self._loader._vault  # the secrets given to this ansible-playbook run
        if not vault.secrets:
            raise AnsibleActionFail(
                "isobar_vault_file: no vault secret is loaded; run with --vault-id or a vault_identity_list"
            )

        current = {}
        if os.path.exists(path):
            with open(path, "rb") as handle:
                raw = handle.read()
            if raw.strip():
                if not is_encrypted(raw):
                    raise AnsibleActionFail(f"isobar_vault_file: {path} exists but is not vault encrypted; refusing to touch it")
                try:
                    plaintext = vault.decrypt(raw)
                except Exception as exc:  # wrong password: say so without echoing anything secret
                    raise AnsibleActionFail(f"isobar_vault_file: cannot decrypt {path}: {exc}") from None
                current = yaml.safe_load(to_text(plaintext)) or {}
                if not isinstance(current, dict):
                    raise AnsibleActionFail(f"isobar_vault_file: {path} does not hold a YAML mapping")

        desired = _merge(current, values, remove)
        changed_keys = sorted(
            key for key in set(current) | set(desired) if current.get(key) != desired.get(key)
        )
        result["changed"] = bool(changed_keys)
        result["changed_keys"] = changed_keys
        if self._play_context.diff and changed_keys:
            result["diff"] = {
                "before_header": path,
                "after_header": path,
                "before": "".join(f"{k}: <masked>\n" for k in sorted(current)),
                "after": "".join(f"{k}: <masked>\n" for k in sorted(desired)),
            }
        if not changed_keys or self._task.check_mode:
            return result

        vault_id = args.get("vault_id")
        try:
            secret_vault_id, secret = match_encrypt_secret(vault.secrets, encrypt_vault_id=vault_id)
        except Exception as exc:
            raise AnsibleActionFail(f"isobar_vault_file: no vault secret for identity {vault_id!r}: {exc}") from None
        document = "---\n" + yaml.safe_dump(_plain(desired), default_flow_style=False, sort_keys=True)
        ciphertext = vault.encrypt(to_bytes(document), secret=secret, vault_id=secret_vault_id)

        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(prefix=".vault-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(ciphertext)
            os.chmod(tmp_path, 0o600)
            os.replace(tmp_path, path)
        except Exception:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
            raise
        return result
