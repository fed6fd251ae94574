# Copyright: Isobar contributors
# Apache-2.0
"""The decision of the apt_present action plugin (pure Python, unit-tested): which of the packages a task wants are
not installed yet, from one dpkg-query call on the host.

``dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\n' -- <names>`` prints one line per known package (one per
architecture for a multi-arch one): the status abbreviation is ``ii`` only for a package wanted and fully installed
(``rc`` removed with its configuration left, ``iU``/``iF`` half-configured, a third letter an error). A name dpkg does
not know (never installed, or a virtual package) prints no line."""

from __future__ import annotations

import re

# A plain Debian package name (Debian policy 5.6.7). Anything else (name=version, name:arch, globs, .deb paths) is
# left to apt itself: the guard only answers for names it can check exactly.
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
DPKG_QUERY_FORMAT = "${db:Status-Abbrev}\\t${Package}\\n"


class PackageListError(ValueError):
    """A package list the plugin cannot take."""


def package_names(value):
    """The task's ``name`` as a list of non-empty strings (a string is one name; a comma-separated one several, as
    the apt module reads it)."""
    if value is None or value == "" or value == []:
        raise PackageListError("name is required: the packages to have installed")
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(item).strip() for item in items]
    if any(not name for name in names):
        raise PackageListError(f"name holds an empty package name: {value!r}")
    return names


def checkable(names):
    """True when every name is a plain package name dpkg-query can answer for."""
    return all(PACKAGE_NAME.match(name) for name in names)


def dpkg_query_command(names):
    """The command line (a list of words) that reports the packages' status."""
    return ["dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT, "--", *names]


def installed(output):
    """Names of the fully installed packages in dpkg-query's output."""
    found = set()
    for line in output.splitlines():
        status, name = (line.split("\t", 1) + [""])[:2]
        if name.strip() and status.strip() == "ii":
            found.add(name.strip())
    return found


def missing(names, output):
    """The names (in the task's order, once each) that dpkg-query does not report fully installed."""
    have = installed(output)
    seen, result = set(), []
    for name in names:
        if name not in have and name not in seen:
            seen.add(name)
            result.append(name)
    return result
