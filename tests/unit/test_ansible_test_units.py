"""tests/unit/ansible-test-units.txt: the unit tests ansible-test units runs (tools/ansible-test/run units, make lint)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTED = [line for line in (ROOT / "tests" / "unit" / "ansible-test-units.txt").read_text().splitlines()
          if line and not line.startswith("#")]
# Tests of the collection's Python that only plain pytest runs, and why.
PLAIN_PYTEST_ONLY = {
    "tests/unit/test_grafana_dashboards.py": "renders the dashboards in Debian's chromium, which it installs with apt",
    "tests/unit/test_live_stream.py": "uses tests/fixtures (pytest.ini's pythonpath), which ansible-test's pytest setup does not have",
}


def test_every_listed_file_exists():
    missing = [name for name in LISTED if not (ROOT / name).is_file()]
    assert not missing, f"listed in ansible-test-units.txt but absent: {missing}"


def test_every_test_of_the_collections_python_runs_under_ansible_test():
    """A new test of a module, module_utils, filter or action plugin is listed, or excused here with a reason."""
    importing = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests" / "unit").glob("test_*.py")
                       if re.search(r"ansible_collections\.isobar\.pipeline\.plugins", path.read_text()))
    forgotten = [name for name in importing if name not in LISTED and name not in PLAIN_PYTEST_ONLY]
    assert not forgotten, f"add to tests/unit/ansible-test-units.txt (or excuse in this test): {forgotten}"
