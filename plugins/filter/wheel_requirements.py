# Copyright: Isobar contributors
# Apache-2.0
"""Hash-pinned pip requirements from the artifact store's wheel index (pure Python: Jinja only renders).

``hashed_requirements`` turns the ``SHA256SUMS`` of the store's ``pipeline-wheels`` (``sha256sum`` output, written
by tools/artifacts/build-wheels.sh; its own sha256 is in the store's manifest.json) into a requirements file for
``pip install --require-hashes``: one ``name==version --hash=sha256:...`` line per project (several hashes when the
store holds several wheels of one version, e.g. cp311 and cp313 builds). pip then refuses any wheel whose content
is not the one the store recorded, before installing anything."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# PEP 427 file name: {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl
WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def hashed_requirements(sha256sums, requirements=()):
    """Requirements text with hashes, from ``sha256sums`` ("<sha256>  <wheel file>" lines).

    Every pinned requirement (``name==version``) must have a wheel in the index, and every project one version:
    else AnsibleFilterError saying which (the store does not match the role's pins: rebuild it, make artifacts)."""
    projects = {}
    for number, line in enumerate(str(sha256sums or "").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(None, 1)
        wheel = WHEEL.match(fields[1].lstrip("*").strip()) if len(fields) == 2 else None
        if not wheel or not SHA256.match(fields[0]):
            raise AnsibleFilterError(f"wheel index line {number} is not '<sha256>  <name>-<version>-...whl': {line!r}")
        name, version = _canonical(wheel["name"]), wheel["version"]
        entry = projects.setdefault(name, {"version": version, "hashes": []})
        if entry["version"] != version:
            raise AnsibleFilterError(f"the wheel index holds two versions of {name} ({entry['version']}, {version}): "
                                     f"pip could not install both; rebuild the store (make artifacts)")
        entry["hashes"].append(fields[0])
    if not projects:
        raise AnsibleFilterError("the wheel index lists no wheel: rebuild the store (make artifacts)")
    for requirement in requirements or ():
        name, dummy, version = str(requirement).partition("==")
        entry = projects.get(_canonical(name.strip()))
        if not version or entry is None or entry["version"] != version.strip():
            have = f"{name.strip()} {entry['version']}" if entry else f"no {name.strip()}"
            raise AnsibleFilterError(f"requirement {requirement} (pinned as name==version) is not in the wheel index "
                                     f"({have} there): rebuild the store (make artifacts)")
    return "".join(f"{name}=={entry['version']} " + " ".join(f"--hash=sha256:{h}" for h in sorted(entry["hashes"])) + "\n"
                   for name, entry in sorted(projects.items()))


class FilterModule:
    def filters(self):
        return {"hashed_requirements": hashed_requirements}
