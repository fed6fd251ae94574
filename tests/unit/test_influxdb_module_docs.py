"""Our influxdb_* and weather_inject modules: DOCUMENTATION options match the argument spec (what
ansible-test's validate-modules checks for a collection), EXAMPLES and RETURN parse."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import ansible.module_utils
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ansible.module_utils.__path__.append(str(ROOT / "plugins" / "module_utils"))
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("influxdb_*.py")) + ["weather_inject"]


class _Captured(Exception):
    pass


def _argument_spec(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / "modules" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    captured = {}

    def fake(argument_spec, **kwargs):
        captured.update(argument_spec=argument_spec, kwargs=kwargs)
        raise _Captured

    module.AnsibleModule = fake
    with pytest.raises(_Captured):
        module.main()
    return module, captured["argument_spec"], captured["kwargs"]


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
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == name and doc["short_description"]
    assert kwargs.get("supports_check_mode") is True
    assert doc["attributes"]["check_mode"]["support"] == "full" and doc["attributes"]["diff_mode"]["support"] == "full"
    _compare(doc["options"], spec)
    assert yaml.safe_load(module.EXAMPLES) and yaml.safe_load(module.RETURN)


@pytest.mark.parametrize("name", MODULES)
def test_secrets_are_no_log(name):
    _, spec, _ = _argument_spec(name)
    for key in ("token", "password", "bearer_token", "current_token"):
        if key in spec:
            assert spec[key].get("no_log") is True, f"{name}.{key} must be no_log"
