#!/bin/sh
# Vault password of the test lab's own identity, staging (an Ansible vault password client script): a random
# password made once per checkout and kept next to this script (ignored by git, 0600). The test lab's vault files
# are encrypted with it, so its secrets are written the way a real environment's are, not with the lab's
# published password.
set -eu
file="$(dirname "$0")/.vault-pass-staging"
if [ ! -s "$file" ]; then
  umask 077
  tmp="$file.$$"
  head -c 32 /dev/urandom | base64 | tr -d '\n=+/' >"$tmp"
  mv "$tmp" "$file"
fi
cat "$file"
