#!/usr/bin/env bash
# build-jmx-exporter.sh <version> <sha256>
# The Prometheus JMX exporter agent (io.prometheus.jmx:jmx_prometheus_javaagent:<version>) from Maven Central
# into $STORE_DIR/jmx_prometheus_javaagent-<version>.jar, checked against the sha256 pinned in
# roles/kafka/defaults/main.yml (kafka_jmx_exporter_checksum) - the same check a host makes on a download.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 <version> <sha256>" >&2; exit 2; }
VERSION=$1 PINNED=${2#sha256:}
ISOBAR_CACHE=${ISOBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isobar}
STORE_DIR=${STORE_DIR:-$ISOBAR_CACHE/store}
WORK_DIR=${WORK_DIR:-$ISOBAR_CACHE/work/jmx-exporter}
NAME=jmx_prometheus_javaagent-$VERSION.jar
log() { echo "build-jmx-exporter: $*" >&2; }
command -v mvn >/dev/null || { log "needs 'mvn' on PATH (apt-get install maven)"; exit 1; }

started=$(date +%s)
mkdir -p "$WORK_DIR" "$STORE_DIR"
tmp=$STORE_DIR/.$NAME.tmp.$$
trap 'rm -f "$tmp"' EXIT
rm -rf "$WORK_DIR/out"
if ! mvn -B -q -Dstyle.color=never dependency:copy -Dartifact="io.prometheus.jmx:jmx_prometheus_javaagent:$VERSION" \
    -DoutputDirectory="$WORK_DIR/out" >"$WORK_DIR/mvn.log" 2>&1; then
  log "mvn dependency:copy failed; last lines of $WORK_DIR/mvn.log:"; tail -n 30 "$WORK_DIR/mvn.log" >&2; exit 1
fi
got=$(sha256sum "$WORK_DIR/out/$NAME" | cut -d' ' -f1)
[[ $got == "$PINNED" ]] || { log "$NAME from Maven Central has sha256 $got, the role pins $PINNED: refused"; exit 1; }
cp "$WORK_DIR/out/$NAME" "$tmp"
mv "$tmp" "$STORE_DIR/$NAME"
python3 - "$STORE_DIR/$NAME.provenance.json" "$VERSION" "$NAME" "$got" "$(( $(date +%s) - started ))" <<'PY'
import datetime, json, sys
path, version, name, sha, seconds = sys.argv[1:]
json.dump({"component": "jmx-exporter", "version": version, "file": name, "sha256": sha,
           "source": f"Maven Central io.prometheus.jmx:jmx_prometheus_javaagent:{version} via mvn dependency:copy",
           "toolchain": "Apache Maven", "build_seconds": int(seconds),
           "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
          open(path, "w"), indent=2)
PY
log "$STORE_DIR/$NAME (sha256 $got)"
