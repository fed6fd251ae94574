#!/usr/bin/env bash
# Build an Isobar lab base image: a minimal Debian root of one suite (debootstrap) imported into Docker.
# The image tag is a hash of this file and the suite (lab/tasks/image.yml), so editing the recipe rebuilds.
# Usage: build-rootfs.sh <image:tag> <suite> [mirror]    suite: bookworm (Debian 12) or trixie (Debian 13)
set -euo pipefail

usage="usage: build-rootfs.sh <image:tag> <bookworm|trixie> [mirror]"
image="${1:?$usage}"
suite="${2:?$usage}"
mirror="${3:-http://deb.debian.org/debian}"
case "$suite" in
  bookworm | trixie) ;;
  *) echo "unsupported suite '$suite': the lab builds bookworm (Debian 12) or trixie (Debian 13)" >&2; exit 2 ;;
esac
# What a freshly installed Debian VM with Ansible prerequisites has; nothing pipeline-specific.
# openssh-server: the lab hosts are reached over SSH like VMs (lab/tasks/ssh.yml adds the user and the key).
packages=python3,python3-apt,sudo,systemd,systemd-sysv,dbus,iproute2,ca-certificates,procps,gnupg,openssh-server

rootfs="$(mktemp -d /var/tmp/isobar-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrap $suite from $mirror into $rootfs"
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
  tail -n 20 "$rootfs.log" >&2
  echo "debootstrap failed: is the Debian mirror $mirror reachable?" >&2
  rm -f "$rootfs.log"
  exit 1
fi
rm -f "$rootfs.log"

# The sources of an installed system (debootstrap only writes the main suite): Debian 13's installer writes
# them in deb822 form (sources.list.d/debian.sources), Debian 12's as sources.list.
if [ "$suite" = bookworm ]; then
  cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
SOURCES
else
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi

# Units that have nothing to do in a container and only add noise or failures at boot.
for unit in getty@tty1.service console-getty.service systemd-remount-fs.service \
            systemd-firstboot.service sys-kernel-config.mount sys-kernel-debug.mount; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# Host keys are made per container by lab/tasks/ssh.yml (ssh-keygen -A), not shared by every host of the image.
rm -f "$rootfs"/etc/ssh/ssh_host_*
# A stable machine-id is generated per container at first boot.
: >"$rootfs/etc/machine-id"
# Keep the image small: apt lists and caches are refreshed by the base role.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb

tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  - "$image"
echo "imported $image"
