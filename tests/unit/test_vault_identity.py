"""Which vault identity the vault_file action plugin encrypts with (plugins/plugin_utils/vault_identity.py)."""
from __future__ import annotations

import pytest
from ansible_collections.isobar.pipeline.plugins.plugin_utils.vault_identity import (
    VaultIdentityError, choose_vault_id, header_vault_id)


def test_header_id_of_each_format():
    assert header_vault_id(b"$ANSIBLE_VAULT;1.2;AES256;prod\n6162") == "prod"
    assert header_vault_id("$ANSIBLE_VAULT;1.1;AES256\n6162") is None
    assert header_vault_id("---\nplain: yaml\n") is None


def test_a_file_keeps_the_identity_in_its_header():
    assert choose_vault_id("f", ["lab", "prod"], header_id="prod") == "prod"


def test_a_new_file_takes_the_environment_identity_not_the_first_loaded():
    assert choose_vault_id("f", ["lab", "prod"], inventory_id="prod") == "prod"
    assert choose_vault_id("f", ["lab", "prod"], requested_id="prod", inventory_id="other") == "prod"


def test_the_only_loaded_identity_is_used():
    assert choose_vault_id("f", ["prod"]) == "prod"


def test_several_loaded_and_none_named_is_refused():
    with pytest.raises(VaultIdentityError, match=r"2 vault identities are loaded \(lab, prod\).*isobar_vault_id"):
        choose_vault_id("f", ["lab", "prod"])


def test_nothing_loaded_is_refused():
    with pytest.raises(VaultIdentityError, match="No vault secret is loaded"):
        choose_vault_id("f", [])


@pytest.mark.parametrize("kwargs", [dict(header_id="lab"), dict(inventory_id="lab"), dict()])
def test_the_published_lab_identity_is_refused_outside_the_lab(kwargs):
    with pytest.raises(VaultIdentityError, match="published"):
        choose_vault_id("f", ["lab"], **kwargs)


def test_the_lab_may_use_its_identity():
    assert choose_vault_id("f", ["lab"], inventory_id="lab", lab_environment=True) == "lab"


def test_a_header_that_disagrees_with_the_environment_is_refused():
    with pytest.raises(VaultIdentityError, match="encrypted with vault identity 'old'.*rekey"):
        choose_vault_id("f", ["old", "prod"], header_id="old", inventory_id="prod")


def test_an_identity_whose_secret_is_not_loaded_is_refused():
    with pytest.raises(VaultIdentityError, match=r"no secret of that identity is loaded.*--vault-id prod@prompt"):
        choose_vault_id("f", ["staging"], inventory_id="prod")
