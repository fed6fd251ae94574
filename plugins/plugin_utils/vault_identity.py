# Copyright: Isobar contributors
# Apache-2.0
"""Which vault identity encrypts a file that the vault_file action plugin writes (controller side, pure logic).

A secret of one environment must never be encrypted with another environment's password, and never with the lab's
published throwaway one unless the environment is the lab. The rules, in order:

1. the identity in the file's header (``$ANSIBLE_VAULT;1.2;AES256;<id>``): a file keeps the identity it has;
2. else the one the task names (``vault_id``), else the inventory's ``isobar_vault_id``;
3. else the only identity loaded; with several loaded, there is no safe guess: refuse.
"""

from __future__ import annotations

LAB_VAULT_ID = "lab"
NOTHING_CHANGED = "Nothing was changed."


class VaultIdentityError(Exception):
    """The identity to encrypt with cannot be chosen safely; the message says why and what to do."""


def header_vault_id(ciphertext):
    """The vault id in a vault file's header, or None (format 1.1 carries none; not a vault: None)."""
    if isinstance(ciphertext, bytes):
        ciphertext = ciphertext.decode("utf-8", "replace")
    first = ciphertext.lstrip().split("\n", 1)[0].strip()
    parts = first.split(";")
    if len(parts) >= 4 and parts[0] == "$ANSIBLE_VAULT" and parts[1] == "1.2" and parts[3]:
        return parts[3]
    return None


def choose_vault_id(path, loaded_ids, header_id=None, requested_id=None, inventory_id=None, lab_environment=False):
    """Return the vault id to encrypt ``path`` with, or raise VaultIdentityError.

    loaded_ids: the identities whose secrets this run loaded (``--vault-id``, vault_identity_list), in order.
    header_id: the id in the existing file's header, if any.
    requested_id: the task's ``vault_id`` option; inventory_id: the inventory's ``isobar_vault_id``.
    lab_environment: the inventory is the local lab (``isobar_lab_environment``), the only place ``lab`` may be used.
    """
    loaded = [str(i) for i in loaded_ids]
    named = requested_id or inventory_id
    if header_id:
        if named and named != header_id:
            raise VaultIdentityError(
                f"{path} is encrypted with vault identity {header_id!r}, but this environment names {named!r} "
                f"(isobar_vault_id or the task's vault_id). Rekey the file (ansible-vault rekey --vault-id "
                f"{header_id}@... --new-vault-id {named}@...) or correct the inventory. {NOTHING_CHANGED}")
        chosen, why = header_id, "the identity in its header"
    elif named:
        chosen, why = named, "the identity this environment names (isobar_vault_id)"
    elif len(loaded) == 1:
        chosen, why = loaded[0], "the only identity loaded"
    elif not loaded:
        raise VaultIdentityError(
            f"No vault secret is loaded, so {path} cannot be written: run with --vault-id <env>@prompt "
            f"(or a password file). {NOTHING_CHANGED}")
    else:
        raise VaultIdentityError(
            f"{len(loaded)} vault identities are loaded ({', '.join(loaded)}) and {path} is new: which one encrypts "
            f"it cannot be guessed. Set isobar_vault_id in the environment's inventory (group_vars/all), e.g. "
            f"isobar_vault_id: prod. {NOTHING_CHANGED}")
    if chosen == LAB_VAULT_ID and not lab_environment:
        raise VaultIdentityError(
            f"{path} would be encrypted with the lab's vault identity {LAB_VAULT_ID!r} ({why}), whose password is "
            f"published in the repository: only the local lab (isobar_lab_environment: true) may use it. Give this "
            f"environment its own identity (isobar_vault_id, --vault-id <env>@prompt) and rekey the file with "
            f"ansible-vault rekey --new-vault-id <env>@prompt. {NOTHING_CHANGED}")
    if chosen not in loaded:
        raise VaultIdentityError(
            f"{path} is to be encrypted with vault identity {chosen!r} ({why}), but no secret of that identity is "
            f"loaded (loaded: {', '.join(loaded) or 'none'}): add --vault-id {chosen}@prompt. {NOTHING_CHANGED}")
    return chosen
