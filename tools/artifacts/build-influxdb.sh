#!/usr/bin/env bash
# build-influxdb.sh <version>
#
# Builds the InfluxDB 2.x server (influxd) from its Go module
# github.com/influxdata/influxdb/v2 plus libflux (Rust, via cargo) and packages
# it like the official archive:
#
#   $STORE_DIR/influxdb2-<ver>_linux_amd64.tar.gz   (top dir influxdb2-<ver>/: influxd, or usr/bin/influxd for 2.7.x)
#   $STORE_DIR/influxdb2-<ver>_linux_amd64.tar.gz.provenance.json
#
# See tools/artifacts/CONVENTIONS.md. Offline-friendly: needs only the Go module
# proxy, crates.io and (if a build package is missing) Debian's mirror.
#
# How it works (all state under $WORK_DIR, kept between runs, so an interrupted
# build resumes where it stopped):
#   1. a generated wrapper Go module requires github.com/influxdata/influxdb/v2@v<ver>
#      and repeats its replace/exclude directives (go install ...@v<ver> refuses
#      modules with replace directives);
#   2. cgo finds libflux through `#cgo pkg-config: flux`; PKG_CONFIG points at
#      github.com/influxdata/pkg-config (built here, kept off PATH), which runs
#      `cargo build --release --target x86_64-unknown-linux-gnu` in a writable copy
#      of the flux module at $GOCACHE/pkgconfig/github.com/influxdata/flux@<fluxver>.
#      We create that copy ourselves, atomically, and run the same cargo build
#      first so its progress is visible in the log;
#   3. flux's crates set #![deny(warnings)] (feature "strict") and newer rustc
#      versions add lints (some deny-by-default), so every rustc call goes through
#      a RUSTC_WRAPPER that adds --cap-lints=warn (RUSTFLAGS would not reach the
#      host build of flux-core used by flux's build script);
#   4. go build with tags sqlite_foreign_keys,sqlite_json (not assets: no UI
#      bundle in the module zip, the API is complete; not static_build: musl).
#
# Versions: built and smoke-tested here (go1.26.8, rustc 1.95.0): 2.9.1 (flux v0.200.0) and
# 2.8.0 (flux v0.196.1). v2.10.0 needs Go >= 1.26.9 (GOTOOLCHAIN=local refuses it).
# Note: the proxy's version list (go list -m -versions) omits v2.9.1; query versions directly.
#
# Environment:
#   ISOBAR_CACHE  cache root   (default ${XDG_CACHE_HOME:-$HOME/.cache}/isobar)
#   STORE_DIR     archives     (default $ISOBAR_CACHE/store)
#   WORK_DIR      build state  (default $ISOBAR_CACHE/work/influxdb)
#   RUSTUP_TOOLCHAIN           (default stable; nothing is downloaded)
set -euo pipefail

die() { echo "build-influxdb: ERROR: $*" >&2; exit 1; }
log() { printf '[build-influxdb %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

[[ $# -eq 1 ]] || die "usage: $0 <version>   (e.g. 2.8.0)"
VERSION=${1#v}
[[ $VERSION =~ ^2\.[0-9]+\.[0-9]+$ ]] || die "expected a 2.x release version like 2.8.0, got '$1'"

ISOBAR_CACHE=${ISOBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isobar}
STORE_DIR=${STORE_DIR:-$ISOBAR_CACHE/store}
WORK_DIR=${WORK_DIR:-$ISOBAR_CACHE/work/influxdb}

ARCHIVE=influxdb2-${VERSION}_linux_amd64.tar.gz
ARCHIVE_PATH=$STORE_DIR/$ARCHIVE
PROV_PATH=$ARCHIVE_PATH.provenance.json

# --- fast path: archive + provenance present and sha256 matches ----------------
up_to_date() {
  [[ -f $ARCHIVE_PATH && -f $PROV_PATH ]] || return 1
  local want have
  want=$(sed -n 's/^[[:space:]]*"sha256":[[:space:]]*"\([0-9a-f]\{64\}\)".*/\1/p' "$PROV_PATH")
  [[ -n $want ]] || return 1
  have=$(sha256sum "$ARCHIVE_PATH") && have=${have%% *}
  [[ $want == "$have" ]]
}
if up_to_date; then
  echo "build-influxdb: $ARCHIVE_PATH is up to date (sha256 matches provenance)"
  exit 0
fi
if [[ -f $ARCHIVE_PATH ]]; then
  log "existing $ARCHIVE has no valid provenance or its sha256 differs: rebuilding"
fi

START=$(date +%s)

# --- build prerequisites ---------------------------------------------------------
missing_debian_packages() {
  local missing=()
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkgconf)      # real pkg-config, used by influxdata/pkg-config
  command -v gcc        >/dev/null 2>&1 || missing+=(gcc)          # cgo + cc crate
  [[ -e /usr/include/stdio.h ]]         || missing+=(libc6-dev)    # C headers / crt files
  command -v tar        >/dev/null 2>&1 || missing+=(tar)
  command -v gzip       >/dev/null 2>&1 || missing+=(gzip)
  command -v flock      >/dev/null 2>&1 || missing+=(util-linux)
  command -v sha256sum  >/dev/null 2>&1 || missing+=(coreutils)
  echo "${missing[*]}"
}
need_pkgs=$(missing_debian_packages)
if [[ -n $need_pkgs ]]; then
  echo "build-influxdb: missing Debian packages: $need_pkgs" >&2
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing with apt-get: $need_pkgs"
    apt-get update || die "apt-get update failed"
    # shellcheck disable=SC2086  # word splitting intended: one package per word
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need_pkgs \
      || die "apt-get could not install: $need_pkgs"
    need_pkgs=$(missing_debian_packages)
    [[ -z $need_pkgs ]] || die "still missing after apt-get: $need_pkgs"
  else
    die "install them first: sudo apt-get install $need_pkgs"
  fi
fi

export RUSTUP_TOOLCHAIN=${RUSTUP_TOOLCHAIN:-stable}
export RUSTUP_AUTO_INSTALL=0       # never let rustup download a toolchain
command -v go    >/dev/null 2>&1 || die "'go' not on PATH (need the Go toolchain, >= the go line of influxdb's go.mod)"
command -v cargo >/dev/null 2>&1 || die "'cargo' not on PATH (need Rust via rustup, toolchain '$RUSTUP_TOOLCHAIN' installed)"
command -v rustc >/dev/null 2>&1 || die "'rustc' not on PATH"
RUSTC_VERSION=$(rustc --version) || die "rustc ($RUSTUP_TOOLCHAIN) does not run; is that toolchain installed?"
CARGO_VERSION=$(cargo --version) || die "cargo ($RUSTUP_TOOLCHAIN) does not run"

# --- environment -------------------------------------------------------------------
mkdir -p "$STORE_DIR" "$WORK_DIR"
WORK_DIR=$(cd "$WORK_DIR" && pwd)
STORE_DIR=$(cd "$STORE_DIR" && pwd)
ARCHIVE_PATH=$STORE_DIR/$ARCHIVE
PROV_PATH=$ARCHIVE_PATH.provenance.json

export GOTOOLCHAIN=local
export GOCACHE=$WORK_DIR/gocache   # holds the libflux build too (kept between runs)
export CGO_ENABLED=1
export GOFLAGS=-buildvcs=false
export CARGO_TERM_COLOR=never CARGO_TERM_PROGRESS_WHEN=never
# anything that would change where/how cargo builds libflux, or its fingerprints
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_TARGET_DIR CARGO_BUILD_TARGET \
      CARGO_BUILD_TARGET_DIR RUSTC RUSTC_WORKSPACE_WRAPPER GOOS GOARCH PKG_CONFIG GO CARGO
mkdir -p "$GOCACHE" "$WORK_DIR/bin"

# one build per WORK_DIR at a time
exec 9>"$WORK_DIR/.lock"
if ! flock -n 9; then
  log "another build holds $WORK_DIR/.lock; waiting"
  flock 9
fi
if up_to_date; then
  echo "build-influxdb: $ARCHIVE_PATH was built by a concurrent run"
  exit 0
fi

# leftovers of a run killed hard (SIGKILL/power loss) while holding the lock
rm -f "$STORE_DIR/.$ARCHIVE".tmp.* "$STORE_DIR/.$ARCHIVE".provenance.json.tmp.*
rm -rf "$GOCACHE"/pkgconfig/github.com/influxdata/flux@*.tmp.*

TMP_FILES=()
cleanup() { local f; for f in "${TMP_FILES[@]}"; do rm -rf -- "$f"; done; }
trap cleanup EXIT

GO_VERSION=$(go env GOVERSION)
log "influxdb v$VERSION; $GO_VERSION; $RUSTC_VERSION; GOCACHE=$GOCACHE"

# --- 1. wrapper module ------------------------------------------------------------------
SERVER_MOD=github.com/influxdata/influxdb/v2
WRAP=$WORK_DIR/wrapper-v$VERSION
mkdir -p "$WRAP"
cd "$WRAP"

log "downloading $SERVER_MOD@v$VERSION"
mod_json=$(go mod download -json "$SERVER_MOD@v$VERSION") || die "cannot download $SERVER_MOD@v$VERSION: $mod_json"
json_field() { sed -n "s/^[[:space:]]*\"$1\":[[:space:]]*\"\(.*\)\",\{0,1\}$/\1/p" <<<"$mod_json" | head -n1; }
SERVER_DIR=$(json_field Dir)
SERVER_GOMOD=$(json_field GoMod)
SERVER_SUM=$(json_field Sum)
SERVER_TIME=$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$SERVER_MOD@v$VERSION")
[[ -d $SERVER_DIR && -f $SERVER_GOMOD ]] || die "unexpected 'go mod download' output: $mod_json"
SERVER_GO_LINE=$(awk '$1=="go"{print $2; exit}' "$SERVER_GOMOD")

# replace/exclude directives of the server's go.mod (single-line and block forms)
directives() {  # $1 = replace|exclude
  awk -v kw="$1" '
    { sub(/\/\/.*/, "") }
    $0 ~ "^"kw"[ \t]*\\(" { blk=1; next }
    blk && /^[ \t]*\)/ { blk=0; next }
    blk && NF { sub(/^[ \t]+/, ""); print; next }
    $1 == kw && NF > 1 { sub("^"kw"[ \t]+", ""); print }
  ' "$SERVER_GOMOD"
}
{
  echo "// Generated by tools/artifacts/build-influxdb.sh: builds $SERVER_MOD/cmd/influxd."
  echo "// Never run 'go mod tidy' here (there is no Go code; it would drop everything)."
  echo "module isobar.local/influxdb-wrapper"
  echo
  echo "go ${SERVER_GO_LINE:-1.21}"
  echo
  echo "require $SERVER_MOD v$VERSION"
  while IFS= read -r r; do
    [[ -n $r ]] || continue
    target=${r#*=>}; target=${target#"${target%%[![:space:]]*}"}
    [[ $target == .* || $target == /* ]] && die "upstream replace points at a local path, cannot reproduce: $r"
    echo "replace $r"
  done < <(directives replace)
  while IFS= read -r e; do [[ -n $e ]] && echo "exclude $e"; done < <(directives exclude)
} > go.mod.new
mv go.mod.new go.mod            # go.sum is kept: it only ever holds verified hashes
touch go.sum

log "resolving $SERVER_MOD/cmd/influxd@v$VERSION in the wrapper module"
go get "$SERVER_MOD/cmd/influxd@v$VERSION"
PKGCFG_VER=$(go list -m -f '{{.Version}}' github.com/influxdata/pkg-config)
FLUX_VER=$(go list -m -f '{{.Version}}' github.com/influxdata/flux)
[[ -n $PKGCFG_VER && -n $FLUX_VER ]] || die "could not determine flux / pkg-config versions"
go get "github.com/influxdata/pkg-config@$PKGCFG_VER"
up_flux=$(awk '$1=="github.com/influxdata/flux"{print $2; exit}' "$SERVER_GOMOD")
[[ -z $up_flux || $up_flux == "$FLUX_VER" ]] || die "wrapper selected flux $FLUX_VER but $SERVER_MOD@v$VERSION pins $up_flux"
log "flux $FLUX_VER, influxdata/pkg-config $PKGCFG_VER"

# --- 2. pkg-config wrapper + rustc wrapper (kept off PATH) --------------------------------
PKG_CONFIG_BIN=$WORK_DIR/bin/influxdata-pkg-config-$PKGCFG_VER
if [[ ! -x $PKG_CONFIG_BIN ]]; then
  go build -o "$PKG_CONFIG_BIN.tmp" github.com/influxdata/pkg-config
  mv "$PKG_CONFIG_BIN.tmp" "$PKG_CONFIG_BIN"
fi

RUSTC_CAP=$WORK_DIR/bin/rustc-cap-lints
cat > "$RUSTC_CAP.tmp" <<'EOF'
#!/bin/sh
# RUSTC_WRAPPER: cargo calls "$0 <rustc> <args...>". Cap lint levels at warn so that
# flux's #![deny(warnings)] and newer deny-by-default lints cannot fail the build.
# Calls that already carry --cap-lints (registry crates: allow) are left alone.
rustc=$1; shift
case " $* " in
  *" --cap-lints"*) exec "$rustc" "$@" ;;
esac
exec "$rustc" "$@" --cap-lints=warn
EOF
chmod 0755 "$RUSTC_CAP.tmp"
if cmp -s "$RUSTC_CAP.tmp" "$RUSTC_CAP"; then rm -f "$RUSTC_CAP.tmp"; else mv "$RUSTC_CAP.tmp" "$RUSTC_CAP"; fi
export RUSTC_WRAPPER=$RUSTC_CAP

# --- 3. libflux ------------------------------------------------------------------------------
# influxdata/pkg-config copies the read-only flux module to this path and silently reuses
# whatever it finds there, so we create it ourselves, atomically (copy, then rename).
flux_json=$(go mod download -json "github.com/influxdata/flux@$FLUX_VER")
FLUX_MODDIR=$(sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p' <<<"$flux_json")
[[ -d $FLUX_MODDIR/libflux ]] || die "flux module dir not found: $flux_json"
FLUX_SRC=$GOCACHE/pkgconfig/github.com/influxdata/flux@$FLUX_VER
if [[ ! -f $FLUX_SRC/.isobar-copy-complete ]]; then
  [[ -e $FLUX_SRC ]] && { log "removing incomplete flux copy $FLUX_SRC"; chmod -R u+w "$FLUX_SRC"; rm -rf "$FLUX_SRC"; }
  log "copying flux $FLUX_VER sources to $FLUX_SRC"
  mkdir -p "${FLUX_SRC%/*}"
  tmp=$FLUX_SRC.tmp.$$
  TMP_FILES+=("$tmp")
  cp -R "$FLUX_MODDIR" "$tmp"
  chmod -R u+w "$tmp"
  touch "$tmp/.isobar-copy-complete"
  mv "$tmp" "$FLUX_SRC"
fi

CARGO_TARGET=x86_64-unknown-linux-gnu   # what influxdata/pkg-config passes for linux/amd64 (non-static)
log "cargo build --release --target $CARGO_TARGET in $FLUX_SRC/libflux (cold: long, LTO)"
( cd "$FLUX_SRC/libflux" && cargo build --release --target "$CARGO_TARGET" )
[[ -f $FLUX_SRC/libflux/target/$CARGO_TARGET/release/libflux.a ]] || die "cargo did not produce libflux.a"

# --- 4. influxd -----------------------------------------------------------------------------
OUT=$WORK_DIR/out-v$VERSION
mkdir -p "$OUT"
log "go build influxd (tags sqlite_foreign_keys,sqlite_json)"
PKG_CONFIG=$PKG_CONFIG_BIN \
  go build \
    -trimpath \
    -buildmode=pie \
    -tags sqlite_foreign_keys,sqlite_json \
    -ldflags "-s -w -X main.version=v$VERSION -X main.commit=gomod -X main.date=$SERVER_TIME" \
    -o "$OUT/influxd.tmp" \
    "$SERVER_MOD/cmd/influxd"
mv "$OUT/influxd.tmp" "$OUT/influxd"
ver_out=$("$OUT/influxd" version) || die "built influxd does not run"
echo "$ver_out"
[[ $ver_out == "InfluxDB v$VERSION "* ]] || die "built influxd reports an unexpected version: $ver_out"

# --- 5. archive (layout of the official archive of that version) ---
# 2.7.x archives carry a package tree (usr/bin/influxd, systemd unit, logrotate); from 2.8.0 the
# official archive is flat: influxdb2-<ver>/{influxd,LICENSE,README.md} (the image build for 2.9.1
# copies influxdb2-2.9.1/influxd). The roles find the binary in either place.
STAGE=$WORK_DIR/stage-v$VERSION
rm -rf "$STAGE"
TOP=$STAGE/influxdb2-$VERSION
if [[ $VERSION == 2.[0-7].* ]]; then
  mkdir -p "$TOP/usr/bin" "$TOP/usr/share/influxdb"
  install -m 0755 "$OUT/influxd" "$TOP/usr/bin/influxd"
  DOC_DIR=$TOP/usr/share/influxdb
  PKG_FS=$SERVER_DIR/.circleci/packages/influxdb2/fs
  if [[ -d $PKG_FS ]]; then
    # upstream's package tree (.circleci/packages/influxdb2/fs): systemd unit, scripts, logrotate,
    # empty var/lib/influxdb + var/log/influxdb; placeholder files (.keepdir/.gitkeep) dropped
    (cd "$PKG_FS" && find . -mindepth 1 -type d) | while IFS= read -r d; do mkdir -p "$TOP/$d"; done
    (cd "$PKG_FS" && find . -type f ! -name .keepdir ! -name .gitkeep) | while IFS= read -r f; do
      mode=0644
      case $f in *.sh) mode=0755 ;; esac
      install -D -m "$mode" "$PKG_FS/$f" "$TOP/$f"
    done
  fi
else
  mkdir -p "$TOP"
  install -m 0755 "$OUT/influxd" "$TOP/influxd"
  DOC_DIR=$TOP
fi
for f in LICENSE README.md; do
  [[ -f $SERVER_DIR/$f ]] && install -m 0644 "$SERVER_DIR/$f" "$DOC_DIR/$f"
done
find "$STAGE" -type d -exec chmod 0755 {} +

TMP_ARCHIVE=$STORE_DIR/.$ARCHIVE.tmp.$$
TMP_PROV=$STORE_DIR/.$ARCHIVE.provenance.json.tmp.$$
TMP_FILES+=("$TMP_ARCHIVE" "$TMP_PROV")
MTIME=$(date -u -d "$SERVER_TIME" +%s)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$MTIME" \
    -C "$STAGE" -cf - "influxdb2-$VERSION" | gzip -n -9 > "$TMP_ARCHIVE"
gzip -t "$TMP_ARCHIVE"
SHA=$(sha256sum "$TMP_ARCHIVE") && SHA=${SHA%% *}

END=$(date +%s)
cat > "$TMP_PROV" <<EOF
{
  "component": "influxdb",
  "version": "$VERSION",
  "file": "$ARCHIVE",
  "sha256": "$SHA",
  "source": "built from Go module $SERVER_MOD@v$VERSION ($SERVER_SUM) + libflux (github.com/influxdata/flux $FLUX_VER) via cargo; tags sqlite_foreign_keys,sqlite_json; no UI assets",
  "toolchain": "$GO_VERSION linux/amd64; $RUSTC_VERSION; $CARGO_VERSION; gcc $(gcc -dumpfullversion)",
  "build_seconds": $((END - START)),
  "created": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
mv "$TMP_ARCHIVE" "$ARCHIVE_PATH"
mv "$TMP_PROV" "$PROV_PATH"
rm -rf "$STAGE"
log "wrote $ARCHIVE_PATH (sha256 $SHA, $((END - START)) s)"
