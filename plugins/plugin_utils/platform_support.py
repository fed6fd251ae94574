# Copyright: Isobar contributors
# Apache-2.0
"""Whether a host runs a platform a role supports (controller side, pure logic; used by the platform_check action).

A role declares the releases it supports once, in meta/main.yml (galaxy_info.platforms, Debian releases by codename).
A host is supported when its distribution is declared and its release codename is among that platform's versions.
"""

from __future__ import annotations

NOTHING_CHANGED = "Nothing was changed."
# Debian release numbers by codename, for messages (the facts give both; Galaxy metadata uses codenames).
DEBIAN_NUMBERS = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}


class PlatformError(Exception):
    """The role's platform declaration cannot be read; the message says what is wrong."""


def declared_platforms(meta):
    """{distribution: [release codenames]} from a parsed meta/main.yml."""
    platforms = ((meta or {}).get("galaxy_info") or {}).get("platforms")
    if not platforms:
        raise PlatformError("meta/main.yml declares no galaxy_info.platforms")
    declared = {}
    for entry in platforms:
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("versions"):
            raise PlatformError(f"meta/main.yml: each platform needs a name and versions, got {entry!r}")
        declared.setdefault(str(entry["name"]), []).extend(str(v).lower() for v in entry["versions"])
    return declared


def describe_release(distribution, codename):
    """'Debian 13 (trixie)' or, for an unknown codename, 'Debian trixie'."""
    number = DEBIAN_NUMBERS.get(codename) if distribution == "Debian" else None
    return f"{distribution} {number} ({codename})" if number else f"{distribution} {codename}"


def describe_platforms(declared):
    """'Debian 12 (bookworm), Debian 13 (trixie)'."""
    return ", ".join(describe_release(name, codename) for name, codenames in declared.items() for codename in codenames)


def host_release(facts):
    """(distribution, codename, version) of a host from its gathered facts."""
    distribution = str(facts.get("distribution") or "unknown")
    codename = str(facts.get("distribution_release") or "").lower()
    version = str(facts.get("distribution_version") or facts.get("distribution_major_version") or "")
    return distribution, codename, version


def platform_problem(role, declared, facts, host="this host"):
    """None when the host's release is declared, else a message saying what runs, what is supported, what to do."""
    if not facts or not facts.get("distribution"):
        return (f"The {role} role needs the host's facts (distribution, release) to check the platform: gather them "
                f"(gather_facts: true, or ansible.builtin.setup) before the role. {NOTHING_CHANGED}")
    distribution, codename, version = host_release(facts)
    if codename in declared.get(distribution, []):
        return None
    running = f"{distribution} {version} ({codename or 'no codename'})".replace("  ", " ")
    return (f"{host} runs {running}, which the {role} role does not support. Supported: {describe_platforms(declared)}"
            f" (roles/{role}/meta/main.yml). Use a supported release (docs/deploy-real-vms.md). {NOTHING_CHANGED}")
