#!/usr/bin/env bash
# build-wheels.sh <set-id> <requirement>...
# Download the wheels the pipeline host needs (our modules' Python clients and their
# dependencies) from PyPI into $STORE_DIR/pipeline-wheels/ (set-id: a hash of the requirement
# list, recorded as the version in the provenance), for offline installs
# with `pip install --no-index --find-links --require-hashes` (roles/client_venv pins each wheel's sha256 from SHA256SUMS). Hosts run Python 3.11 (Debian 12) or 3.13 (Debian 13): the wheels
# of both go into one directory (pure-Python wheels are shared; pip picks the right one of a compiled package).
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 <set-id> <requirement>..." >&2; exit 2; }
set_id=$1; shift
ISOBAR_CACHE=${ISOBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isobar}
STORE_DIR=${STORE_DIR:-$ISOBAR_CACHE/store}
name=pipeline-wheels
dest=$STORE_DIR/$name
tmp=$STORE_DIR/.$name.tmp
started=$(date +%s)

rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
for python in 3.11 3.13; do
  python3 -m pip download --quiet --disable-pip-version-check --dest "$tmp" \
    --only-binary=:all: --python-version "$python" --implementation cp --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform any "$@"
done
(cd "$tmp" && sha256sum -- *.whl > SHA256SUMS)
printf '%s\n' "$@" > "$tmp/requirements.txt"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
index_sha=$(sha256sum "$dest/SHA256SUMS" | cut -d' ' -f1)
python3 - "$STORE_DIR/$name.provenance.json" "$name" "$set_id" "$index_sha" "$(( $(date +%s) - started ))" "$@" <<'PY'
import datetime, json, sys
path, name, set_id, sha, seconds, *reqs = sys.argv[1:]
json.dump({"component": "pipeline-wheels", "version": set_id, "file": name, "sha256": sha,
           "source": "PyPI via pip download (cp311 and cp313, manylinux/any): " + ", ".join(reqs),
           "toolchain": "pip (for python 3.11 and 3.13)", "build_seconds": int(seconds),
           "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
          open(path, "w"), indent=2)
PY
echo "build-wheels: $dest ($(ls "$dest"/*.whl | wc -l) wheels)"
