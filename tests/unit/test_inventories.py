"""The test lab inventory must see every group_vars file of the lab inventory."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab" / "group_vars"
TEST_LAB = ROOT / "molecule" / "shared" / "inventory" / "group_vars"
GENERATED = {"vault_generated.yml", "vault.yml"}  # the test lab has its own copies


def test_every_lab_group_vars_entry_is_linked_into_the_test_lab():
    missing = []
    for entry in sorted(LAB.iterdir()):
        if entry.is_dir() and entry.name == "all":
            for item in sorted(entry.iterdir()):
                if item.name not in GENERATED and not (TEST_LAB / "all" / item.name).exists():
                    missing.append(f"all/{item.name}")
        elif not (TEST_LAB / entry.name).exists():
            missing.append(entry.name)
    assert not missing, f"link these into molecule/shared/inventory/group_vars: {missing}"


def test_links_resolve_to_the_lab_files():
    for link in TEST_LAB.rglob("*"):
        if link.is_symlink():
            assert link.resolve().is_relative_to(LAB), f"{link} points outside the lab inventory"
