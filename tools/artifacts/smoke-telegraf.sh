#!/usr/bin/env bash
# Smoke-test a Telegraf archive built by build-telegraf.sh (or an official one).
#
#   tools/artifacts/smoke-telegraf.sh <path>/telegraf-<ver>_linux_amd64.tar.gz
#
# Checks: archive layout, provenance sha256 (if present), --version, the compiled-in plugins,
# inputs.execd -> --test, a real agent run execd -> outputs.file (influx + json serializers),
# outputs.kafka config with SASL SCRAM-SHA-512 + tls_ca (parsed and initialised; never
# connected), and the kafka usage text. Exits non-zero on the first failure.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 <telegraf-<ver>_linux_amd64.tar.gz>" >&2; exit 2; }
ARCHIVE=$1
[[ -f $ARCHIVE ]] || { echo "smoke-telegraf: no such file: $ARCHIVE" >&2; exit 2; }
NAME=$(basename "$ARCHIVE")
[[ $NAME =~ ^telegraf-([0-9]+\.[0-9]+\.[0-9]+)_linux_amd64\.tar\.gz$ ]] \
    || { echo "smoke-telegraf: unexpected archive name $NAME" >&2; exit 2; }
VER=${BASH_REMATCH[1]}

T=$(mktemp -d "${TMPDIR:-/tmp}/smoke-telegraf.XXXXXX")
AGENT_PID=""
cleanup() {
    if [[ -n $AGENT_PID ]]; then kill "$AGENT_PID" 2>/dev/null || true; wait "$AGENT_PID" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT

n=0
ok()   { n=$((n + 1)); printf 'ok %d - %s\n' "$n" "$*"; }
fail() { printf 'not ok - %s\n' "$*" >&2; exit 1; }
expect_in() { # <file> <fixed string> <what>
    grep -qF -- "$2" "$1" || { echo "--- $1:" >&2; tail -n 40 "$1" >&2; fail "$3: '$2' not found"; }
}

# --- provenance ------------------------------------------------------------------------
if [[ -f $ARCHIVE.provenance.json ]]; then
    want=$(sed -n 's/.*"sha256"[[:space:]]*:[[:space:]]*"\([0-9a-f]\{64\}\)".*/\1/p' "$ARCHIVE.provenance.json")
    got=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)
    [[ $want == "$got" ]] || fail "sha256 $got differs from provenance $want"
    for k in component version file sha256 source toolchain build_seconds created; do
        grep -q "\"$k\"" "$ARCHIVE.provenance.json" || fail "provenance lacks $k"
    done
    grep -q '"component": *"telegraf"' "$ARCHIVE.provenance.json" || fail "provenance component is not telegraf"
    grep -q "\"version\": *\"$VER\"" "$ARCHIVE.provenance.json" || fail "provenance version is not $VER"
    ok "provenance matches (sha256 $got)"
fi

# --- layout ----------------------------------------------------------------------------
gzip -t "$ARCHIVE" || fail "archive is not valid gzip"
tops=$(tar -tzf "$ARCHIVE" | cut -d/ -f1 | sed 's/^\.$//' | sort -u | grep -v '^$' || true)
[[ $tops == "telegraf-$VER" ]] || fail "archive top-level entries are '$tops', expected telegraf-$VER"
tar -xzf "$ARCHIVE" -C "$T"
R=$T/telegraf-$VER
for f in usr/bin/telegraf etc/telegraf/telegraf.conf etc/logrotate.d/telegraf \
         usr/lib/telegraf/scripts/telegraf.service; do
    [[ -f $R/$f ]] || fail "missing $f"
done
[[ -x $R/usr/bin/telegraf ]] || fail "usr/bin/telegraf is not executable"
[[ -f $R/usr/share/doc/telegraf/LICENSE || -f $R/LICENSE ]] || fail "no LICENSE in archive"
ok "layout telegraf-$VER/{usr/bin/telegraf,etc/telegraf/telegraf.conf,etc/logrotate.d/telegraf,usr/lib/telegraf/scripts/telegraf.service,LICENSE}"

TG=$R/usr/bin/telegraf
if command -v ldd >/dev/null; then
    if ldd "$TG" 2>&1 | grep -q '=>'; then fail "telegraf is dynamically linked (expected CGO_ENABLED=0)"; fi
    ok "binary is statically linked"
fi

# --- version -----------------------------------------------------------------------------
"$TG" --version > "$T/version.txt" 2>&1 || fail "telegraf --version failed"
read -r v_line < "$T/version.txt"
[[ $v_line == "Telegraf $VER" || $v_line == "Telegraf $VER "* ]] || fail "--version printed '$v_line', expected Telegraf $VER"
ok "--version: $v_line"

# --- compiled-in plugins -----------------------------------------------------------------
"$TG" plugins > "$T/plugins.txt" 2>&1 || fail "telegraf plugins failed"
# The selection build-telegraf.sh compiles in (tools/artifacts/telegraf-plugins.txt).
selected=$(grep -v '^[[:space:]]*\(#\|$\)' "$(dirname "$0")/telegraf-plugins.txt" | grep -vx custom)
for p in $selected; do
    grep -qx "$p" "$T/plugins.txt" || fail "plugin $p is not compiled in"
done
# Custom build: no inputs/outputs beyond the selection (parsers may come along as dependencies).
extra=$(grep -E '^(inputs|outputs|processors|aggregators)\.' "$T/plugins.txt" | grep -vxF "$selected" || true)
[[ -z $extra ]] || fail "unexpected plugins compiled in: $(echo $extra)"
ok "plugins: $(tr '\n' ' ' < "$T/plugins.txt" | sed 's/ $//')"

# The sample config shipped in the archive must load.
"$TG" --config "$R/etc/telegraf/telegraf.conf" --test --test-wait 1 > "$T/sample.out" 2>&1 \
    || { cat "$T/sample.out" >&2; fail "shipped etc/telegraf/telegraf.conf does not load"; }
expect_in "$T/sample.out" "> cpu," "shipped sample config gathers cpu"
ok "shipped telegraf.conf loads and gathers (cpu/mem)"

# --- inputs.execd -> --test ----------------------------------------------------------------
cat > "$T/weather-gen.sh" <<'EOF'
#!/bin/sh
# Emits influx line protocol weather points, one batch per second, until stdout closes.
i=0
while :; do
    echo "weather,station=s1 temperature=21.5,humidity=40" || exit 0
    echo "weather,station=s2 temperature=1${i}.25,humidity=55i" || exit 0
    i=$(( (i + 1) % 10 ))
    sleep 1
done
EOF
chmod +x "$T/weather-gen.sh"

cat > "$T/execd-file.conf" <<EOF
[agent]
  interval = "1s"
  flush_interval = "1s"
  omit_hostname = true

[[inputs.execd]]
  command = ["$T/weather-gen.sh"]
  signal = "none"
  restart_delay = "1s"
  data_format = "influx"

[[outputs.file]]
  files = ["stdout", "$T/out.influx"]
  data_format = "influx"

[[outputs.file]]
  files = ["$T/out.json"]
  data_format = "json"
EOF

"$TG" --config "$T/execd-file.conf" --test --test-wait 3 > "$T/test.out" 2>&1 \
    || { cat "$T/test.out" >&2; fail "telegraf --test with inputs.execd failed"; }
expect_in "$T/test.out" "weather,station=s1 humidity=40,temperature=21.5" "--test execd output"
ok "--test inputs.execd emitted: $(grep -m1 -F 'weather,station=s1' "$T/test.out")"

# --- real agent run: execd -> outputs.file (influx to stdout+file, json to file) -----------
"$TG" --config "$T/execd-file.conf" > "$T/run.out" 2> "$T/run.err" &
AGENT_PID=$!
t0=$SECONDS
for _ in $(seq 1 30); do
    [[ -s $T/out.json ]] && grep -q 'station=s2' "$T/out.influx" 2>/dev/null && break
    kill -0 "$AGENT_PID" 2>/dev/null || { cat "$T/run.err" >&2; fail "telegraf agent exited early"; }
    sleep 0.5
done
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || true
AGENT_PID=""
expect_in "$T/run.out" "weather,station=s1 temperature=21.5,humidity=40 " "outputs.file to stdout"
expect_in "$T/out.influx" ",humidity=55i " "outputs.file to file (influx)"
expect_in "$T/out.json" '"name":"weather"' "outputs.file to file (json serializer)"
expect_in "$T/out.json" '"station":"s1"' "outputs.file to file (json serializer)"
ok "agent run execd -> outputs.file: $(grep -c . "$T/out.influx") influx lines, $(grep -c . "$T/out.json") json lines after $((SECONDS - t0)) s"

# --- outputs.kafka with SASL_SSL / SCRAM-SHA-512 and our own CA ------------------------------
"$TG" --usage kafka > "$T/usage-kafka.txt" 2>&1 || true
expect_in "$T/usage-kafka.txt" "[[outputs.kafka]]" "--usage kafka"
expect_in "$T/usage-kafka.txt" "SCRAM-SHA-512" "--usage kafka lists SCRAM-SHA-512"
expect_in "$T/usage-kafka.txt" "sasl_mechanism" "--usage kafka"
expect_in "$T/usage-kafka.txt" "tls_ca" "--usage kafka"
ok "--usage kafka documents sasl_mechanism (SCRAM-SHA-512) and tls_ca"

# A throw-away CA certificate (TLS config loading parses it at plugin Init).
if command -v openssl >/dev/null; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=isobar-smoke-ca" \
        -keyout "$T/ca.key" -out "$T/ca.pem" >/dev/null 2>&1 || fail "openssl could not make a test CA"
else
    fail "openssl is needed to create a test CA"
fi

kafka_conf() { # <file> <tls_ca path> [extra line]
    cat > "$1" <<EOF
[agent]
  omit_hostname = true

[[inputs.execd]]
  command = ["$T/weather-gen.sh"]
  signal = "none"
  data_format = "influx"

[[outputs.kafka]]
  brokers = ["kafka1.isobar.test:9093"]
  topic = "weather"
  client_id = "telegraf-isobar"
  required_acks = -1
  max_retry = 3
  compression_codec = 4
  enable_tls = true
  tls_ca = "$2"
  sasl_mechanism = "SCRAM-SHA-512"
  sasl_username = "telegraf"
  sasl_password = "not-a-secret"
  data_format = "influx"
  ${3:-}
EOF
}
kafka_conf "$T/kafka.conf" "$T/ca.pem"
"$TG" --config "$T/kafka.conf" --test --test-wait 2 > "$T/kafka.out" 2>&1 \
    || { cat "$T/kafka.out" >&2; fail "config with outputs.kafka (SASL_SSL/SCRAM-SHA-512) does not load"; }
expect_in "$T/kafka.out" "weather,station=s1" "kafka config --test gathers"
ok "outputs.kafka config (enable_tls, tls_ca, sasl_mechanism=SCRAM-SHA-512) loads and initialises"

# Negative checks: the options are really consumed (not silently ignored).
kafka_conf "$T/kafka-badca.conf" "$T/does-not-exist.pem"
if "$TG" --config "$T/kafka-badca.conf" --test --test-wait 1 > "$T/kafka-badca.out" 2>&1; then
    fail "outputs.kafka accepted a missing tls_ca file (tls_ca not wired?)"
fi
expect_in "$T/kafka-badca.out" "does-not-exist.pem" "missing tls_ca error"
kafka_conf "$T/kafka-typo.conf" "$T/ca.pem" 'sasl_mechanismz = "SCRAM-SHA-512"'
if "$TG" --config "$T/kafka-typo.conf" --test --test-wait 1 > "$T/kafka-typo.out" 2>&1; then
    fail "outputs.kafka accepted an unknown option (strict parsing expected)"
fi
expect_in "$T/kafka-typo.out" "sasl_mechanismz" "unknown option error"
ok "outputs.kafka rejects a missing tls_ca file and unknown options"

echo "smoke-telegraf: all $n checks passed for $NAME"
