"""Every module of plugins/modules: DOCUMENTATION options, merged with the doc fragments it extends
(plugins/doc_fragments, merged by ansible-core's own add_fragments as ansible-doc does), match the
argument spec (what ansible-test's validate-modules checks for a collection); EXAMPLES and RETURN parse."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from ansible.utils.plugin_docs import add_fragments

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = "isobar.pipeline"
# Documentation-only modules of action plugins (the plugin runs on the controller; as ansible.builtin.debug). An action
# plugin whose module also runs on the host (file_set) is a module too.
ACTION_ONLY = {p.stem for p in (ROOT / "plugins" / "action").glob("*.py")
               if "def main(" not in (ROOT / "plugins" / "modules" / p.name).read_text(encoding="utf-8")}
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem not in ACTION_ONLY)
FRAGMENTS = sorted(p.stem for p in (ROOT / "plugins" / "doc_fragments").glob("*.py"))
INFO_MODULES = {"kafka_cluster_info", "restart_pending"}  # read-only: no diff


class _Captured(Exception):
    pass


class _FragmentLoader:
    """The ModuleDocFragment classes of plugins/doc_fragments, by name (what ansible's fragment_loader
    finds through doc_fragment_plugins in ansible.cfg)."""

    def get(self, name):
        if not name.startswith(COLLECTION + "."):  # ansible-core's own (files): its fragment_loader finds them
            from ansible.plugins.loader import fragment_loader

            return fragment_loader.get(name)
        name = name.removeprefix(COLLECTION + ".")
        if not (ROOT / "plugins" / "doc_fragments" / f"{name}.py").is_file():
            return None
        module = importlib.import_module(f"ansible_collections.isobar.pipeline.plugins.doc_fragments.{name}")
        fragment = module.ModuleDocFragment
        fragment.ansible_name = name
        return fragment


def _load(name):
    return importlib.import_module(f"ansible_collections.isobar.pipeline.plugins.modules.{name}")


def _argument_spec(name):
    module = _load(name)
    captured = {}

    def fake(argument_spec, **kwargs):
        captured.update(argument_spec=argument_spec, kwargs=kwargs)
        raise _Captured

    module.AnsibleModule = fake
    with pytest.raises(_Captured):
        module.main()
    return module, captured["argument_spec"], captured["kwargs"]


def _documentation(module):
    """The module's DOCUMENTATION with its extends_documentation_fragment merged in."""
    doc = yaml.safe_load(module.DOCUMENTATION)
    add_fragments(doc, module.__file__, _FragmentLoader(), is_module=True)
    return doc


def _compare(doc_options, spec, path=""):
    assert set(doc_options) == set(spec), f"{path}: documented {sorted(doc_options)} vs spec {sorted(spec)}"
    for key, arg in spec.items():
        doc = doc_options[key]
        where = f"{path}{key}"
        assert doc.get("type", "str") == arg.get("type", "str"), f"{where}: type"
        assert bool(doc.get("required", False)) == bool(arg.get("required", False)), f"{where}: required"
        assert doc.get("default") == arg.get("default"), f"{where}: default {doc.get('default')!r} vs {arg.get('default')!r}"
        assert doc.get("choices") == arg.get("choices"), f"{where}: choices"
        assert doc.get("elements") == arg.get("elements"), f"{where}: elements"
        assert doc.get("description"), f"{where}: no description"
        if arg.get("options"):
            _compare(doc.get("suboptions") or {}, arg["options"], where + ".")


@pytest.mark.parametrize("name", MODULES)
def test_documentation_matches_the_argument_spec(name):
    module, spec, kwargs = _argument_spec(name)
    if kwargs.get("add_file_common_args"):  # AnsibleModule adds them (documented by the files fragment)
        from ansible.module_utils.basic import FILE_COMMON_ARGUMENTS

        spec = dict(spec, **FILE_COMMON_ARGUMENTS)
    doc = _documentation(module)
    assert doc["module"] == name and doc["short_description"]
    assert kwargs.get("supports_check_mode") is True
    diff_support = "none" if name in INFO_MODULES else "full"
    assert doc["attributes"]["check_mode"]["support"] == "full" and doc["attributes"]["diff_mode"]["support"] == diff_support
    assert doc["attributes"]["check_mode"]["description"] and doc["attributes"]["diff_mode"]["description"]
    assert doc["requirements"], "the client library the module needs"
    _compare(doc["options"], spec)
    assert yaml.safe_load(module.EXAMPLES) and yaml.safe_load(module.RETURN)


@pytest.mark.parametrize("name", FRAGMENTS)
def test_every_fragment_is_used(name):
    users = [m for m in MODULES + sorted(ACTION_ONLY)
             if f"{COLLECTION}.{name}" in (yaml.safe_load(_load(m).DOCUMENTATION).get("extends_documentation_fragment") or [])]
    assert users, f"no module extends the {name} doc fragment"


def test_ansible_cfg_resolves_the_checkout_as_the_collection():
    """ansible-doc, ansible-lint, playbooks and Molecule find isobar.pipeline through the link to the root (no copy)."""
    link = ROOT / "collections" / "ansible_collections" / "isobar" / "pipeline"
    assert link.is_symlink() and link.resolve() == ROOT
    assert "collections_path = collections" in (ROOT / "ansible.cfg").read_text().splitlines()
    for scenario in sorted((ROOT / "molecule").glob("*/molecule.yml")):
        defaults = yaml.safe_load(scenario.read_text())["ansible"]["cfg"]["defaults"]
        assert defaults.get("collections_path") == "${MOLECULE_PROJECT_DIRECTORY}/collections", scenario


@pytest.mark.parametrize("name", sorted(ACTION_ONLY))
def test_action_plugins_are_documented(name):
    """An action plugin's documentation lives in a module file of the same name (what ansible-doc reads)."""
    doc = _load(name)
    parsed = yaml.safe_load(doc.DOCUMENTATION)
    assert parsed["module"] == name and parsed["short_description"] and parsed["options"]
    assert yaml.safe_load(doc.EXAMPLES) and yaml.safe_load(doc.RETURN)


@pytest.mark.parametrize("name", MODULES)
def test_secrets_are_no_log(name):
    _, spec, _ = _argument_spec(name)
    for key in ("token", "password", "sasl_password", "bearer_token", "current_token"):
        if key in spec:
            assert spec[key].get("no_log") is True, f"{name}.{key} must be no_log"
