"""No secret in clear in the repository: vault files are encrypted, the seed's credentials appear nowhere."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tracked(*patterns):
    out = subprocess.run(["git", "ls-files", "--", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in out.stdout.splitlines() if line]


def test_every_tracked_vault_file_is_encrypted():
    files = [p for p in tracked("*vault*.yml") if p.exists()]
    assert files, "expected at least the lab vault"
    clear = [str(p.relative_to(ROOT)) for p in files if not p.read_text().startswith("$ANSIBLE_VAULT;")]
    assert not clear, f"vault files in clear: {clear}"


def test_seed_credentials_appear_only_in_tests_and_docs():
    out = subprocess.run(["git", "grep", "-l", "-I", "-e", "adminpass", "-e", "mytoken", "--", ".",
                          ":!tests/", ":!docs/", ":!README.md"], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "", f"the seed's credentials appear in: {out.stdout.split()}"
