#!/usr/bin/env bash
# Build a Telegraf release archive from its Go module (no influxdata.com / GitHub needed).
#
#   tools/artifacts/build-telegraf.sh <version>        e.g. 1.39.3 (or v1.39.3)
#
# Produces $STORE_DIR/telegraf-<ver>_linux_amd64.tar.gz laid out like the official archive
# (telegraf-<ver>/usr/bin/telegraf, etc/telegraf/telegraf.conf, ...) plus
# <archive>.provenance.json, see tools/artifacts/CONVENTIONS.md.
#
# Environment:
#   ISOBAR_CACHE  cache root        (default ${XDG_CACHE_HOME:-$HOME/.cache}/isobar)
#   STORE_DIR     finished archives (default $ISOBAR_CACHE/store)
#   WORK_DIR      build work, GOCACHE (default $ISOBAR_CACHE/work/telegraf)
#   GOMODCACHE    Go module cache: left as configured (read-only use is enough)
#   TELEGRAF_BUILD_TAGS  override the plugin selection (comma separated, must contain "custom")
#
# Idempotent: if the archive and its provenance exist, the sha256 matches and it was built with the same plugin
# selection, exits 0 at once.
# The archive is written to a temp file in STORE_DIR and renamed, so STORE_DIR never holds a
# partial archive. The build is reproducible (-trimpath, fixed mtimes, gzip -n).
set -euo pipefail

usage() { echo "usage: $0 <version>   (e.g. 1.39.3)" >&2; exit 2; }
[[ $# -eq 1 ]] || usage

VER=${1#v}
[[ $VER =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "build-telegraf: bad version '$1'" >&2; usage; }
MODVER=v$VER
MODULE=github.com/influxdata/telegraf
PKG=$MODULE/cmd/telegraf
INTERNAL_PKG=$MODULE/internal

ISOBAR_CACHE=${ISOBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isobar}
STORE_DIR=${STORE_DIR:-$ISOBAR_CACHE/store}
WORK_DIR=${WORK_DIR:-$ISOBAR_CACHE/work/telegraf}

ARCHIVE=telegraf-${VER}_linux_amd64.tar.gz
ARCHIVE_PATH=$STORE_DIR/$ARCHIVE
PROV_PATH=$ARCHIVE_PATH.provenance.json

# Only the plugins Isobar uses (tools/artifacts/telegraf-plugins.txt, shared with fill-store's up-to-date check).
DEFAULT_TAGS=$(grep -v '^[[:space:]]*\(#\|$\)' "$(dirname "$0")/telegraf-plugins.txt" | paste -sd, -)
BUILD_TAGS=${TELEGRAF_BUILD_TAGS:-$DEFAULT_TAGS}
[[ ,$BUILD_TAGS, == *,custom,* ]] || { echo "build-telegraf: build tags must include 'custom'" >&2; exit 2; }

log() { printf 'build-telegraf: %s\n' "$*" >&2; }

# --- fast path: archive + provenance present and consistent ------------------------------
up_to_date() {
    [[ -f $ARCHIVE_PATH && -f $PROV_PATH ]] || return 1
    local want got
    want=$(sed -n 's/.*"sha256"[[:space:]]*:[[:space:]]*"\([0-9a-f]\{64\}\)".*/\1/p' "$PROV_PATH" | head -n1)
    [[ -n $want ]] || return 1
    grep -q "\"file\"[[:space:]]*:[[:space:]]*\"$ARCHIVE\"" "$PROV_PATH" || return 1
    got=$(sha256sum "$ARCHIVE_PATH" | cut -d' ' -f1)
    [[ $got == "$want" ]] || return 1
    # built with another plugin selection: rebuild
    grep -qF "build tags $BUILD_TAGS," "$PROV_PATH"
}
if up_to_date; then
    log "$ARCHIVE is up to date in $STORE_DIR"
    exit 0
fi

mkdir -p "$STORE_DIR" "$WORK_DIR"

# One build per WORK_DIR at a time (fill-store or a human may run us concurrently).
exec 9>"$WORK_DIR/.lock"
if ! flock -n 9; then
    log "waiting for another build in $WORK_DIR"
    flock 9
fi
if up_to_date; then   # the other build may have produced it meanwhile
    log "$ARCHIVE is up to date in $STORE_DIR"
    exit 0
fi
[[ -f $ARCHIVE_PATH ]] && log "existing $ARCHIVE has no or mismatching provenance: rebuilding"

STAGE=""
TMP_ARCHIVE=""
TMP_PROV=""
cleanup() {
    [[ -n $STAGE ]] && rm -rf "$STAGE"
    [[ -n $TMP_ARCHIVE ]] && rm -f "$TMP_ARCHIVE"
    [[ -n $TMP_PROV ]] && rm -f "$TMP_PROV"
    return 0
}
trap cleanup EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM   # run cleanup on signals too
# Temp files of a run that was killed hard (SIGKILL, power loss) are never renamed: drop them.
rm -f "$STORE_DIR/.$ARCHIVE".* "$STORE_DIR/.$ARCHIVE.provenance".*

START=$(date +%s)

# --- toolchain -----------------------------------------------------------------------------
command -v go >/dev/null || { log "go not found on PATH"; exit 1; }
export GOTOOLCHAIN=local          # never download another toolchain
export CGO_ENABLED=0 GOOS=linux GOARCH=amd64
export GOCACHE=$WORK_DIR/gocache  # dedicated, kept: rebuilds are cheap
export GOFLAGS=""                 # ignore user GOFLAGS (e.g. -modcacherw, -mod=...)
export GOBIN=$WORK_DIR/bin
mkdir -p "$GOCACHE" "$GOBIN"
GOVERSION=$(go env GOVERSION)     # e.g. go1.26.8
TOOLCHAIN=$(go version | sed 's/^go version //')

# --- source module -----------------------------------------------------------------------
log "fetching $MODULE@$MODVER (module proxy / module cache)"
jfield() { printf '%s\n' "$MODJSON" | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" | head -n1; }
if ! MODJSON=$(go mod download -json "$MODULE@$MODVER"); then
    # e.g. "requires go >= 1.27.0 (running go 1.26.8; GOTOOLCHAIN=local)" or a 403 from the proxy
    log "cannot download $MODULE@$MODVER: $(jfield Error | sed 's/\\u003e/>/g; s/\\u003c/</g')"
    exit 1
fi
MODDIR=$(jfield Dir)
MODFILE=$(jfield GoMod)
MODINFO=$(jfield Info)
MODSUM=$(jfield Sum)
[[ -d $MODDIR && -f $MODFILE ]] || { log "go mod download gave no Dir/GoMod:"; printf '%s\n' "$MODJSON" >&2; exit 1; }

# The release's go line must not exceed the local Go (GOTOOLCHAIN=local would refuse anyway).
MOD_GO=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$MODFILE" | head -n1)
LOCAL_GO=${GOVERSION#go}; LOCAL_GO=${LOCAL_GO%%[!0-9.]*}
if [[ -n $MOD_GO ]] && [[ $(printf '%s\n%s\n' "$MOD_GO" "$LOCAL_GO" | sort -V | tail -n1) != "$LOCAL_GO" ]]; then
    log "$MODULE@$MODVER needs go $MOD_GO, local toolchain is $GOVERSION"
    exit 1
fi
if grep -qE '^[[:space:]]*replace[[:space:]]' "$MODFILE"; then
    log "$MODULE@$MODVER go.mod has replace directives: 'go install pkg@version' will refuse"
    exit 1
fi

# Commit of the tag (the proxy's .info carries it); official builds use the 8-char short hash
# and Branch=HEAD for tagged releases (Makefile: git rev-parse --abbrev-ref HEAD on a tag).
COMMIT_FULL=""
[[ -f $MODINFO ]] && COMMIT_FULL=$(sed -n 's/.*"Hash":"\([0-9a-f]\{40\}\)".*/\1/p' "$MODINFO" | head -n1)
COMMIT=${COMMIT_FULL:0:8}
MODTIME=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$MODINFO" | head -n1)
SOURCE_EPOCH=$(date -u -d "${MODTIME:-1970-01-01T00:00:00Z}" +%s)

LDFLAGS="-s -w -X $INTERNAL_PKG.Version=$VER"
if [[ -n $COMMIT ]]; then
    LDFLAGS+=" -X $INTERNAL_PKG.Branch=HEAD -X $INTERNAL_PKG.Commit=$COMMIT"
fi

# --- build -------------------------------------------------------------------------------
log "building $PKG@$MODVER with $GOVERSION, tags: $BUILD_TAGS"
rm -f "$GOBIN/telegraf"
go install -trimpath -tags "$BUILD_TAGS" -ldflags "$LDFLAGS" "$PKG@$MODVER"
BIN=$GOBIN/telegraf
[[ -x $BIN ]] || { log "go install produced no $BIN"; exit 1; }
GOT_VERSION=$("$BIN" --version)
[[ $GOT_VERSION == "Telegraf $VER "* || $GOT_VERSION == "Telegraf $VER" ]] \
    || { log "unexpected --version output: $GOT_VERSION"; exit 1; }
log "built: $GOT_VERSION"

# --- package like the official linux tarball (Makefile 'package' target) ------------------
STAGE=$(mktemp -d "$WORK_DIR/stage.XXXXXX")
ROOT=$STAGE/telegraf-$VER
install -d -m 0755 "$ROOT/usr/bin" "$ROOT/etc/telegraf/telegraf.d" "$ROOT/etc/logrotate.d" \
    "$ROOT/var/log/telegraf" "$ROOT/usr/lib/telegraf/scripts" "$ROOT/usr/share/doc/telegraf"
install -m 0755 "$BIN" "$ROOT/usr/bin/telegraf"
# etc/telegraf.conf is generated at release time (make config = telegraf config); it is not in
# the module zip. Generated by our binary it lists exactly the compiled-in plugins.
"$BIN" config > "$ROOT/etc/telegraf/telegraf.conf"
chmod 0644 "$ROOT/etc/telegraf/telegraf.conf"
[[ -s $ROOT/etc/telegraf/telegraf.conf ]] || { log "telegraf config produced nothing"; exit 1; }
[[ -f $MODDIR/etc/logrotate.d/telegraf ]] && install -m 0644 "$MODDIR/etc/logrotate.d/telegraf" "$ROOT/etc/logrotate.d/telegraf"
[[ -f $MODDIR/scripts/telegraf.service ]] && install -m 0644 "$MODDIR/scripts/telegraf.service" "$ROOT/usr/lib/telegraf/scripts/telegraf.service"
[[ -f $MODDIR/scripts/init.sh ]] && install -m 0755 "$MODDIR/scripts/init.sh" "$ROOT/usr/lib/telegraf/scripts/init.sh"
install -m 0644 "$MODDIR/LICENSE" "$ROOT/usr/share/doc/telegraf/LICENSE"

TMP_ARCHIVE=$(mktemp "$STORE_DIR/.$ARCHIVE.XXXXXX")
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_EPOCH" \
    --format=gnu -C "$STAGE" -cf - "telegraf-$VER" | gzip -n -9 > "$TMP_ARCHIVE"
chmod 0644 "$TMP_ARCHIVE"
gzip -t "$TMP_ARCHIVE"
SHA256=$(sha256sum "$TMP_ARCHIVE" | cut -d' ' -f1)

END=$(date +%s)
json_str() { local s=$1; s=${s//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
SOURCE="built from Go module $MODULE@$MODVER (${MODSUM}${COMMIT_FULL:+, commit $COMMIT_FULL}), package ./cmd/telegraf, GOTOOLCHAIN=local CGO_ENABLED=0 -trimpath, build tags $BUILD_TAGS, ldflags \"$LDFLAGS\""
TMP_PROV=$(mktemp "$STORE_DIR/.$ARCHIVE.provenance.XXXXXX")
{
    printf '{\n'
    printf '  "component": "telegraf",\n'
    printf '  "version": %s,\n' "$(json_str "$VER")"
    printf '  "file": %s,\n' "$(json_str "$ARCHIVE")"
    printf '  "sha256": "%s",\n' "$SHA256"
    printf '  "source": %s,\n' "$(json_str "$SOURCE")"
    printf '  "toolchain": %s,\n' "$(json_str "$TOOLCHAIN")"
    printf '  "build_seconds": %d,\n' "$((END - START))"
    printf '  "created": "%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf '}\n'
} > "$TMP_PROV"
chmod 0644 "$TMP_PROV"

# Archive first, provenance last: a crash in between leaves an archive without provenance,
# which the next run rebuilds (never trusted).
mv -f "$TMP_ARCHIVE" "$ARCHIVE_PATH"; TMP_ARCHIVE=""
mv -f "$TMP_PROV" "$PROV_PATH"; TMP_PROV=""
log "wrote $ARCHIVE_PATH (sha256 $SHA256, $((END - START)) s)"
