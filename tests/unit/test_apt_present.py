"""apt_present's decision (plugin_utils/apt_present.py): which packages dpkg-query does not report installed."""
from __future__ import annotations

import pytest

from ansible_collections.isobar.pipeline.plugins.plugin_utils.apt_present import (
    PackageListError, checkable, dpkg_query_command, installed, missing, package_names)

# What dpkg-query -W -f '${db:Status-Abbrev}\t${Package}\n' printed on a Debian 12 host (a multi-arch package twice).
OUTPUT = "ii \tnftables\nrc \tchrony\niU \tnginx\nii \tlibc6\nii \tlibc6\nii \tpython3-venv\n"


def test_only_fully_installed_packages_count():
    assert installed(OUTPUT) == {"nftables", "libc6", "python3-venv"}


def test_missing_keeps_the_tasks_order_once_each():
    # chrony removed (config left), nginx half-configured, unknown-pkg printed nothing (dpkg-query rc 1)
    assert missing(["nginx", "nftables", "chrony", "unknown-pkg", "nginx"], OUTPUT) == ["nginx", "chrony", "unknown-pkg"]
    assert missing(["nftables", "libc6"], OUTPUT) == []
    assert missing(["nftables"], "") == ["nftables"]


@pytest.mark.parametrize("value, names", [
    ("nftables", ["nftables"]),
    ("nftables, chrony", ["nftables", "chrony"]),
    (["openjdk-17-jre-headless", "python3-passlib"], ["openjdk-17-jre-headless", "python3-passlib"]),
])
def test_package_names(value, names):
    assert package_names(value) == names


@pytest.mark.parametrize("value", [None, "", [], ["nftables", ""], "a,,b"])
def test_an_empty_name_is_refused(value):
    with pytest.raises(PackageListError):
        package_names(value)


def test_only_plain_names_are_answered_by_dpkg_query():
    assert checkable(["nftables", "libstdc++6", "python3.11-venv"])
    for other in (["nginx=1.22.1-9"], ["libc6:amd64"], ["nginx*"], ["./local.deb"], ["Nginx"]):
        assert not checkable(other), other


def test_the_query_ends_options_before_the_names():
    command = dpkg_query_command(["nftables", "chrony"])
    assert command[:2] == ["dpkg-query", "-W"] and command[-3:] == ["--", "nftables", "chrony"]
