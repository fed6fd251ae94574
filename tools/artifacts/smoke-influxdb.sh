#!/usr/bin/env bash
# smoke-influxdb.sh <influxdb2-<ver>_linux_amd64.tar.gz>
#
# Proves a built InfluxDB 2 archive works: extracts it to a temp dir, starts
# influxd on 127.0.0.1 (explicit bolt/sqlite/engine paths, reporting disabled),
# checks GET /health, onboards via POST /api/v2/setup, writes points with the
# Python influxdb-client and reads them back with a Flux query; then does the
# same over HTTPS (--tls-cert/--tls-key, self-signed cert made with openssl).
# influxd is stopped afterwards. Exits non-zero on any failure.
#
# The Python client lives in a throwaway venv (SMOKE_VENV, default
# /tmp/isobar-smoke-influxdb-venv), created and filled from PyPI if needed.
set -euo pipefail

die() { echo "smoke-influxdb: FAIL: $*" >&2; exit 1; }
log() { printf '[smoke-influxdb %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

[[ $# -eq 1 ]] || die "usage: $0 <influxdb2-<ver>_linux_amd64.tar.gz>"
ARCHIVE=$(readlink -f "$1")
[[ -f $ARCHIVE ]] || die "no such archive: $1"
for c in curl openssl python3 tar; do command -v "$c" >/dev/null 2>&1 || die "'$c' is required"; done

SMOKE_VENV=${SMOKE_VENV:-/tmp/isobar-smoke-influxdb-venv}
TMP=$(mktemp -d /tmp/smoke-influxdb.XXXXXX)
INFLUXD_PID=
stop_influxd() {
  [[ -n $INFLUXD_PID ]] || return 0
  if kill -0 "$INFLUXD_PID" 2>/dev/null; then
    kill -TERM "$INFLUXD_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$INFLUXD_PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$INFLUXD_PID" 2>/dev/null; then
      echo "smoke-influxdb: influxd did not stop on SIGTERM, killing" >&2
      kill -KILL "$INFLUXD_PID" 2>/dev/null || true
    fi
  fi
  wait "$INFLUXD_PID" 2>/dev/null || true
  INFLUXD_PID=
}
on_exit() {
  local rc=$?
  stop_influxd
  if [[ $rc -ne 0 ]]; then
    for l in "$TMP"/run-*/influxd.log; do
      [[ -f $l ]] && { echo "--- last lines of $l" >&2; tail -n 30 "$l" >&2; }
    done
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# --- extract ----------------------------------------------------------------------
log "extracting $ARCHIVE"
tar -xzf "$ARCHIVE" -C "$TMP"
INFLUXD=$(find "$TMP" \( -path '*/usr/bin/influxd' -o -path '*/influxdb2-*/influxd' \) -type f | head -n1)
[[ -n $INFLUXD && -x $INFLUXD ]] || die "archive has no influxd (flat or usr/bin layout)"
top=${INFLUXD#"$TMP"/}; top=${top%%/*}
[[ $(basename "$ARCHIVE") == "${top}_linux_amd64.tar.gz" ]] || die "top dir '$top' does not match archive name"
log "$("$INFLUXD" version)"

# --- python client ------------------------------------------------------------------
if ! "$SMOKE_VENV/bin/python" -c 'import influxdb_client' 2>/dev/null; then
  log "creating venv $SMOKE_VENV with influxdb-client"
  python3 -m venv "$SMOKE_VENV"
  "$SMOKE_VENV/bin/pip" install --quiet --disable-pip-version-check influxdb-client
fi
cat > "$TMP/client.py" <<'EOF'
import os, sys, time
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

url, token, org, bucket = (os.environ[k] for k in ("URL", "TOKEN", "ORG", "BUCKET"))
ca = os.environ.get("CA") or None
now = int(time.time())
points = [
    Point("weather").tag("station", "lab-%d" % i).field("temperature", 20.5 + i)
    .field("humidity", 40 + i).time(now - 10 * i, WritePrecision.S)
    for i in range(3)
]
with InfluxDBClient(url=url, token=token, org=org, ssl_ca_cert=ca, timeout=20000) as client:
    assert client.ping(), "ping failed"
    client.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, record=points)
    flux = f'''
from(bucket: "{bucket}")
  |> range(start: -1h)
  |> filter(fn: (r) => r._measurement == "weather" and r._field == "temperature")
  |> sort(columns: ["station"])
'''
    got = [(r.values["station"], r.get_value())
           for table in client.query_api().query(flux) for r in table.records]
    got.sort()
    want = [("lab-%d" % i, 20.5 + i) for i in range(3)]
    print("flux query returned:", got)
    if got != want:
        sys.exit("unexpected query result, want %r" % (want,))
    # an aggregate too, so flux's planner/functions run, not only a plain read
    mean = client.query_api().query(
        f'from(bucket: "{bucket}") |> range(start: -1h) '
        f'|> filter(fn: (r) => r._field == "humidity") |> group() |> mean()')
    m = [r.get_value() for t in mean for r in t.records]
    print("flux mean(humidity):", m)
    if m != [41.0]:
        sys.exit("unexpected mean: %r" % (m,))
print("OK")
EOF

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- one full run: start, health, setup, write/query, stop ---------------------------
run() {  # $1 = http|https
  local scheme=$1 dir=$TMP/run-$1 port url curl_tls=() tls_args=() ca=
  mkdir -p "$dir"
  port=$(free_port)
  url=$scheme://127.0.0.1:$port
  if [[ $scheme == https ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null || die "openssl could not make a cert"
    tls_args=(--tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem")
    curl_tls=(--cacert "$dir/cert.pem")
    ca=$dir/cert.pem
  fi

  log "[$scheme] starting influxd on 127.0.0.1:$port"
  # run from the run dir with no INFLUXD_* variables, so no stray config is picked up
  local unset_env=() v
  for v in $(compgen -e); do [[ $v == INFLUXD_* ]] && unset_env+=(-u "$v"); done
  (cd "$dir" && exec env "${unset_env[@]}" "$INFLUXD" \
      --http-bind-address "127.0.0.1:$port" \
      --bolt-path "$dir/influxd.bolt" \
      --sqlite-path "$dir/influxd.sqlite" \
      --engine-path "$dir/engine" \
      --reporting-disabled \
      "${tls_args[@]}" > "$dir/influxd.log" 2>&1) &
  INFLUXD_PID=$!

  local health=''
  for _ in $(seq 1 120); do
    kill -0 "$INFLUXD_PID" 2>/dev/null || die "[$scheme] influxd exited during startup"
    if health=$(curl -fsS "${curl_tls[@]}" "$url/health" 2>/dev/null); then break; fi
    sleep 0.5
  done
  [[ $health == *'"status":"pass"'* || $health == *'"status": "pass"'* ]] || die "[$scheme] GET /health did not pass: ${health:-no answer}"
  log "[$scheme] GET /health -> $health"

  local setup_allowed
  setup_allowed=$(curl -fsS "${curl_tls[@]}" "$url/api/v2/setup")
  [[ $setup_allowed == *'"allowed":true'* || $setup_allowed == *'"allowed": true'* ]] || die "[$scheme] not onboardable: $setup_allowed"

  local token=isobar-smoke-token-$RANDOM$RANDOM code
  code=$(curl -sS "${curl_tls[@]}" -o "$dir/setup.json" -w '%{http_code}' -X POST "$url/api/v2/setup" \
    -H 'Content-Type: application/json' \
    -d "{\"username\":\"smoke\",\"password\":\"smoke-password-123\",\"org\":\"isobar\",\"bucket\":\"weather\",\"token\":\"$token\",\"retentionPeriodSeconds\":0}")
  [[ $code == 201 ]] || die "[$scheme] POST /api/v2/setup -> HTTP $code: $(cat "$dir/setup.json")"
  grep -q "\"$token\"" "$dir/setup.json" || die "[$scheme] setup response does not carry our token"
  log "[$scheme] POST /api/v2/setup -> 201 (org isobar, bucket weather)"
  setup_allowed=$(curl -fsS "${curl_tls[@]}" "$url/api/v2/setup")
  [[ $setup_allowed == *'"allowed":false'* || $setup_allowed == *'"allowed": false'* ]] || die "[$scheme] setup still allowed after onboarding"

  if [[ $scheme == https ]]; then
    # the TLS listener must not answer plain HTTP
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; then
      die "[https] plain HTTP answered on the TLS port"
    fi
    openssl s_client -connect "127.0.0.1:$port" -CAfile "$dir/cert.pem" -verify_return_error </dev/null \
      > "$dir/s_client.txt" 2>&1 || die "[https] openssl s_client failed: $(tail -n5 "$dir/s_client.txt")"
    log "[https] $(grep -m1 -E '^ *(Protocol|New, )' "$dir/s_client.txt" | sed 's/^ *//'), certificate verified against our CA"
  fi

  log "[$scheme] writing 3 points with influxdb-client, reading them back with Flux"
  URL=$url TOKEN=$token ORG=isobar BUCKET=weather CA=$ca "$SMOKE_VENV/bin/python" "$TMP/client.py" \
    || die "[$scheme] write/query with influxdb-client failed"

  log "[$scheme] stopping influxd"
  stop_influxd
  ! grep -q 'lvl=error' "$dir/influxd.log" || { grep 'lvl=error' "$dir/influxd.log" | head -n5 >&2; die "[$scheme] influxd logged errors"; }
}

run http
run https
log "PASS: $(basename "$ARCHIVE")"
