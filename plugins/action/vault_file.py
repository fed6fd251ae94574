# Copyright: Isobar contributors
# Apache-2.0
"""Action plugin: merge values into an Ansible Vault encrypted YAML file on the controller.

Documented in plugins/modules/vault_file.py (what ansible-doc reads). Which identity encrypts the file is decided by
plugin_utils/vault_identity.py (unit-tested): never the lab's published one outside the lab, never a guess."""

from __future__ import annotations

import os
import tempfile

import yaml

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.parsing.vault import is_encrypted, match_encrypt_secret
from ansible.plugins.action import ActionBase
from ansible_collections.isobar.pipeline.plugins.plugin_utils.vault_identity import (
    VaultIdentityError, choose_vault_id, header_vault_id)


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
            raise AnsibleActionFail("vault_file: 'path' is required")
        values = args.get("values") or {}
        remove = args.get("remove") or []
        if not isinstance(values, dict) or not isinstance(remove, list):
            raise AnsibleActionFail("vault_file: 'values' must be a dict and 'remove' a list")
        path = os.path.expanduser(str(path))

        vault = self._loader._vault  # the secrets given to this ansible-playbook run
        loaded_ids = [vault_id for vault_id, _secret in vault.secrets]

        current = {}
        header_id = None
        if os.path.exists(path):
            with open(path, "rb") as handle:
                raw = handle.read()
            if raw.strip():
                if not is_encrypted(raw):
                    raise AnsibleActionFail(f"vault_file: {path} exists but is not vault encrypted; refusing to touch it")
                header_id = header_vault_id(raw)
                try:
                    plaintext = vault.decrypt(raw)
                except Exception as exc:  # wrong password: say so without echoing anything secret
                    raise AnsibleActionFail(f"vault_file: cannot decrypt {path}: {exc}") from None
                current = yaml.safe_load(to_text(plaintext)) or {}
                if not isinstance(current, dict):
                    raise AnsibleActionFail(f"vault_file: {path} does not hold a YAML mapping")

        # Chosen before anything is compared, so that a run that would change nothing still says when the
        # environment's identity is wrong (e.g. a production file encrypted with the lab's published password).
        task_vars = task_vars or {}
        try:
            vault_id = choose_vault_id(
                path, loaded_ids, header_id=header_id, requested_id=args.get("vault_id"),
                inventory_id=self._var("isobar_vault_id", task_vars),
                lab_environment=bool(self._var("isobar_lab_environment", task_vars)))
        except VaultIdentityError as exc:
            raise AnsibleActionFail(f"vault_file: {exc}") from None
        result["vault_id"] = vault_id

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

        try:
            secret_vault_id, secret = match_encrypt_secret(vault.secrets, encrypt_vault_id=vault_id)
        except Exception as exc:
            raise AnsibleActionFail(f"vault_file: no vault secret for identity {vault_id!r}: {exc}") from None
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

    def _var(self, name, task_vars):
        """An inventory variable, templated (None when undefined)."""
        if name not in task_vars:
            return None
        return self._templar.template(task_vars[name])
