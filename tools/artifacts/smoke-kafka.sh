#!/usr/bin/env bash
# Smoke-test a kafka_2.13-<ver>.tgz built by build-kafka.sh: one KRaft node (broker+controller)
# on 127.0.0.1, started with `java -cp '<dir>/libs/*' kafka.Kafka` (the archive has no bin/).
#
#   tools/artifacts/smoke-kafka.sh ~/.cache/isobar/store/kafka_2.13-4.1.1.tgz
#
# Proof 1 (plaintext): StorageTool random-uuid + format, start, TopicCommand create, console
#   producer/consumer round trip, MetadataQuorumCommand, logs in files via config/log4j2.yaml.
# Proof 2 (secure): SASL_SSL client/inter-broker listener with SCRAM-SHA-512 (admin bootstrapped
#   at format time with --add-scram), SSL controller listener with mutual TLS, PEM keystore and
#   truststore from a throwaway openssl CA, StandardAuthorizer with super.users. Checks: admin
#   round trip works, a wrong password is refused, a user without ACLs is denied and is allowed
#   after AclCommand adds an ACL.
# Exits non-zero on any failure; always kills the java process it started and removes its temp dir
# (KEEP_SMOKE_DIR=1 keeps the dir for inspection).
# Env: SMOKE_KAFKA_PORT (default 19092), SMOKE_KAFKA_CONTROLLER_PORT (default 19093), JAVA (java).
set -euo pipefail

[[ $# -eq 1 && -f $1 ]] || { echo "usage: $0 <kafka_2.13-<ver>.tgz>" >&2; exit 2; }
ARCHIVE=$(readlink -f "$1")
PORT=${SMOKE_KAFKA_PORT:-19092}
CPORT=${SMOKE_KAFKA_CONTROLLER_PORT:-19093}
JAVA=${JAVA:-java}
HOST=127.0.0.1

T=$(mktemp -d "${TMPDIR:-/tmp}/isobar-smoke-kafka.XXXXXX")
PID=""
say() { echo "smoke-kafka: $*"; }
fail() { echo "smoke-kafka: FAIL: $*" >&2; exit 1; }

stop_node() {  # TERM, wait up to 60 s for the controlled shutdown, then KILL
  [[ -n $PID ]] || return 0
  local pid=$PID i
  PID=""
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "smoke-kafka: java $pid did not stop in 60 s after SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
  fi
  wait "$pid" 2>/dev/null || true
  say "node stopped ${i}s after SIGTERM"
}
cleanup() {
  local rc=$?
  stop_node || true
  if [[ ${KEEP_SMOKE_DIR:-0} == 1 ]]; then
    echo "smoke-kafka: kept $T" >&2
  else
    rm -rf "$T"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -xzf "$ARCHIVE" -C "$T"
D=$(find "$T" -mindepth 1 -maxdepth 1 -type d -name 'kafka_2.13-*' | head -n1)
[[ -n $D && -d $D/libs && -f $D/config/log4j2.yaml ]] || fail "archive lacks kafka_2.13-*/libs and config/log4j2.yaml"
CP="$D/libs/*"
say "archive $(basename "$ARCHIVE"): $(find "$D/libs" -name '*.jar' | wc -l) jars; $("$JAVA" -version 2>&1 | head -n1)"

tool() {  # run a Kafka command-line class; tools log WARN+ to stderr only
  timeout 120 "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$D/config/tools-log4j2.yaml" -cp "$CP" "$@"
}
has_class() { local j; for j in "$D"/libs/kafka*.jar; do unzip -Z1 "$j" "${1//.//}.class" >/dev/null 2>&1 && return 0; done; return 1; }
CONFIG_CMD=org.apache.kafka.tools.ConfigCommand
has_class $CONFIG_CMD || CONFIG_CMD=kafka.admin.ConfigCommand   # 4.1.1: kafka.admin (core); 4.4.0: kafka-tools

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
for p in "$PORT" "$CPORT"; do port_in_use "$p" && fail "port $p on $HOST is already in use"; done

start_node() {  # $1 = node dir with server.properties
  local dir=$1 i
  mkdir -p "$dir/logs"
  "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$D/config/log4j2.yaml" -Dkafka.logs.dir="$dir/logs" \
    -cp "$CP" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  PID=$!
  for ((i = 0; i < 120; i++)); do
    if grep -q 'Kafka Server started' "$dir/logs/server.log" 2>/dev/null; then
      say "node up (pid $PID) after ${i}s"
      return 0
    fi
    if ! kill -0 "$PID" 2>/dev/null; then
      tail -n 30 "$dir/stdout.log" >&2; PID=""; fail "kafka.Kafka exited during startup"
    fi
    sleep 1
  done
  tail -n 30 "$dir/stdout.log" >&2
  fail "kafka.Kafka not started after 120 s"
}

check_logging() {  # $1 = node dir: log4j2.yaml was used, files written, binding found
  local dir=$1
  grep -q 'Kafka Server started' "$dir/logs/server.log" || fail "server.log lacks the startup line"
  [[ -s $dir/logs/controller.log ]] || fail "controller.log is empty (log4j2.yaml routing not applied)"
  if grep -E '^SLF4J: |StatusLogger|ERROR Unable|No Log4j 2 configuration' "$dir/stdout.log"; then
    fail "logging backend problem (SLF4J binding or log4j2 config), see above"
  fi
  if grep -E ' (ERROR|FATAL) ' "$dir/logs/server.log" | head -n 5 | grep .; then
    fail "ERROR lines in server.log"
  fi
  say "logs: $(cd "$dir/logs" && for f in *.log; do printf '%s=%s ' "$f" "$(wc -l <"$f")"; done)"
}

common_props() {  # $1 = data dir
  cat <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CPORT
controller.listener.names=CONTROLLER
log.dirs=$1
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

RUN=$(date +%s)-$$

########################################## proof 1: plaintext ##############################
say "== proof 1: plaintext KRaft combined node on $HOST:$PORT (controller $CPORT)"
N1=$T/plain
mkdir -p "$N1"
{
  common_props "$N1/data"
  cat <<EOF
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CPORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOF
} >"$N1/server.properties"

CLUSTER_ID=$(tool kafka.tools.StorageTool random-uuid)
[[ $CLUSTER_ID =~ ^[A-Za-z0-9_-]{22}$ ]] || fail "random-uuid gave '$CLUSTER_ID'"
say "StorageTool random-uuid -> $CLUSTER_ID"
tool kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$N1/server.properties" >"$N1/format.out" 2>&1 \
  || { cat "$N1/format.out" >&2; fail "StorageTool format"; }
grep -q "cluster.id=$CLUSTER_ID" "$N1/data/meta.properties" || fail "meta.properties lacks cluster.id"
say "StorageTool format: $(grep -o 'Formatting .*' "$N1/format.out")"

start_node "$N1"
BS=$HOST:$PORT
tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BS" --create --topic smoke \
  --partitions 1 --replication-factor 1 || fail "TopicCommand --create"
tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BS" --describe --topic smoke | grep -q 'Leader: 1' \
  || fail "TopicCommand --describe"
printf 'plain-1-%s\nplain-2-%s\nplain-3-%s\n' "$RUN" "$RUN" "$RUN" >"$N1/sent.txt"
tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$BS" --topic smoke <"$N1/sent.txt" \
  || fail "ConsoleProducer"
tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BS" --topic smoke \
  --from-beginning --max-messages 3 --timeout-ms 30000 >"$N1/got.txt" 2>"$N1/consumer.err" \
  || { cat "$N1/consumer.err" >&2; fail "ConsoleConsumer"; }
diff -u "$N1/sent.txt" "$N1/got.txt" || fail "consumed messages differ from produced"
say "round trip ok: $(paste -sd' ' "$N1/got.txt")"
tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$BS" describe --status >"$N1/quorum.txt" \
  || fail "MetadataQuorumCommand"
grep -qE '^LeaderId: +1$' "$N1/quorum.txt" || { cat "$N1/quorum.txt"; fail "quorum leader is not node 1"; }
say "MetadataQuorumCommand: $(grep -E '^(ClusterId|LeaderId|HighWatermark)' "$N1/quorum.txt" | tr -s ' ' | paste -sd';' -)"
stop_node || fail "plaintext node did not stop cleanly"
check_logging "$N1"
grep -q 'shut down completed' "$N1/logs/server.log" || fail "no clean-shutdown line in server.log"
say "proof 1 passed"

########################################## proof 2: secure #################################
say "== proof 2: SASL_SSL/SCRAM-SHA-512 + SSL controller listener + StandardAuthorizer"
N2=$T/secure
P=$N2/pki
mkdir -p "$P"
ADMIN_PW=$(openssl rand -hex 16)
ALICE_PW=$(openssl rand -hex 16)
KEY_PW=$(openssl rand -hex 16)
BROKER_CN=isobar-kafka-1

# A tiny CA, and a broker certificate (server + client auth: the node is its own controller's
# client on the mTLS controller listener), SAN for 127.0.0.1/localhost (hostname verification on).
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/O=Isobar/CN=Isobar smoke CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$P/ca.key" -out "$P/ca.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$P/broker.key" 2>/dev/null
openssl req -new -key "$P/broker.key" -subj "/O=Isobar/OU=kafka/CN=$BROKER_CN" -out "$P/broker.csr"
cat >"$P/broker.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EOF
openssl x509 -req -in "$P/broker.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial -days 2 -sha256 \
  -extfile "$P/broker.ext" -out "$P/broker.crt" 2>/dev/null
# PEM keystore: encrypted PKCS#8 key (ssl.key.password) + certificate chain. Kafka decrypts the key
# with javax.crypto.EncryptedPrivateKeyInfo: on Java 17 the OpenSSL 3 default (PBES2, e.g.
# -v2 aes-256-cbc) fails with "PBES2 SecretKeyFactory not available", so use a PKCS#12-style PBE.
openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in "$P/broker.key" -passout "pass:$KEY_PW" -out "$P/broker.key.enc"
cat "$P/broker.key.enc" "$P/broker.crt" "$P/ca.pem" >"$P/broker-keystore.pem"
chmod 600 "$P"/*.key "$P"/*.enc "$P/broker-keystore.pem"
openssl verify -CAfile "$P/ca.pem" "$P/broker.crt" >/dev/null || fail "certificate chain"
say "PKI: CA + $(openssl x509 -in "$P/broker.crt" -noout -subject)"

{
  common_props "$N2/data"
  cat <<EOF
listeners=SASL_SSL://$HOST:$PORT,CONTROLLER://$HOST:$CPORT
advertised.listeners=SASL_SSL://$HOST:$PORT
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
inter.broker.listener.name=SASL_SSL

# SCRAM on the client/inter-broker listener; the broker logs in to itself as admin
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$ADMIN_PW";

# TLS: PEM keystore (encrypted PKCS#8 key + chain) and PEM truststore (the CA)
ssl.keystore.type=PEM
ssl.keystore.location=$P/broker-keystore.pem
ssl.key.password=$KEY_PW
ssl.truststore.type=PEM
ssl.truststore.location=$P/ca.pem
ssl.endpoint.identification.algorithm=https
ssl.client.auth=none
# controller listener: mutual TLS; the principal is the certificate CN
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^.*CN=([^,]+).*\$/\$1/,DEFAULT

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:$BROKER_CN
allow.everyone.if.no.acl.found=false
EOF
} >"$N2/server.properties"

client_props() {  # $1 user, $2 password
  cat <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$1" password="$2";
ssl.truststore.type=PEM
ssl.truststore.location=$P/ca.pem
EOF
}
# Newer console tools (4.4.0; not 4.1.1) name the client config file --command-config and deprecate
# --producer.config/--consumer.config; older tools only know the latter.
PCONF=--producer.config
CCONF=--consumer.config
tool org.apache.kafka.tools.ConsoleProducer --help >"$T/producer-help.txt" 2>&1 || true  # --help exits 1
if grep -q -- '^--command-config' "$T/producer-help.txt"; then
  PCONF=--command-config
  CCONF=--command-config
fi
say "console tools take the client config as $PCONF / $CCONF"
client_props admin "$ADMIN_PW" >"$N2/admin.properties"
client_props admin "wrong-$ADMIN_PW" >"$N2/admin-wrong.properties"
client_props alice "$ALICE_PW" >"$N2/alice.properties"

CLUSTER_ID=$(tool kafka.tools.StorageTool random-uuid)
tool kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$N2/server.properties" \
  --add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PW]" \
  --add-scram "SCRAM-SHA-512=[name=alice,password=$ALICE_PW]" >"$N2/format.out" 2>&1 \
  || { cat "$N2/format.out" >&2; fail "StorageTool format --add-scram"; }
# the credentials land in the bootstrap checkpoint of the metadata log (user names in clear)
# (4.1: <log.dir>/bootstrap.checkpoint; 4.4: <log.dir>/__cluster_metadata-0/0...0-0...0.checkpoint)
grep -rqa --include='*.checkpoint' alice "$N2/data" || { ls -lR "$N2/data" >&2; fail "format did not bootstrap SCRAM credentials"; }
say "StorageTool format with --add-scram admin, alice: ok ($CLUSTER_ID)"

start_node "$N2"
BS=$HOST:$PORT
A=(--bootstrap-server "$BS" --command-config "$N2/admin.properties")
tool org.apache.kafka.tools.TopicCommand "${A[@]}" --create --topic secure-smoke \
  --partitions 1 --replication-factor 1 || fail "TopicCommand --create as admin over SASL_SSL"
printf 'secure-1-%s\nsecure-2-%s\nsecure-3-%s\n' "$RUN" "$RUN" "$RUN" >"$N2/sent.txt"
tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$BS" "$PCONF" "$N2/admin.properties" \
  --topic secure-smoke <"$N2/sent.txt" || fail "ConsoleProducer as admin"
tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BS" "$CCONF" "$N2/admin.properties" \
  --topic secure-smoke --from-beginning --max-messages 3 --timeout-ms 30000 >"$N2/got.txt" 2>"$N2/consumer.err" \
  || { cat "$N2/consumer.err" >&2; fail "ConsoleConsumer as admin"; }
diff -u "$N2/sent.txt" "$N2/got.txt" || fail "secure: consumed messages differ from produced"
say "admin round trip over SASL_SSL ok: $(paste -sd' ' "$N2/got.txt")"

# wrong password: the admin client must fail with an authentication error
if tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BS" --command-config "$N2/admin-wrong.properties" \
     --list >"$N2/wrong.out" 2>&1; then
  cat "$N2/wrong.out" >&2; fail "TopicCommand --list succeeded with a wrong password"
fi
grep -q 'SaslAuthenticationException' "$N2/wrong.out" || { cat "$N2/wrong.out" >&2; fail "wrong password: no SaslAuthenticationException"; }
say "wrong password refused: $(grep -o 'SaslAuthenticationException: [^.]*' "$N2/wrong.out" | head -n1)"

# authorizer: alice (valid SCRAM user, no ACLs) is denied, then allowed after an ACL is added
echo "alice-1-$RUN" | tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$BS" \
  "$PCONF" "$N2/alice.properties" --topic secure-smoke >"$N2/alice-denied.out" 2>&1 || true
grep -q 'TopicAuthorizationException' "$N2/alice-denied.out" \
  || { cat "$N2/alice-denied.out" >&2; fail "alice without ACL was not denied"; }
say "alice without ACL denied: $(grep -o 'TopicAuthorizationException: [^]]*]' "$N2/alice-denied.out" | head -n1)"
tool org.apache.kafka.tools.AclCommand "${A[@]}" --add --allow-principal User:alice \
  --operation Write --operation Describe --topic secure-smoke >"$N2/acl.out" || fail "AclCommand --add"
echo "alice-1-$RUN" | tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$BS" \
  "$PCONF" "$N2/alice.properties" --topic secure-smoke >"$N2/alice.out" 2>&1 \
  || { cat "$N2/alice.out" >&2; fail "ConsoleProducer as alice after ACL"; }
tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BS" "$CCONF" "$N2/admin.properties" \
  --topic secure-smoke --from-beginning --max-messages 4 --timeout-ms 30000 >"$N2/got4.txt" 2>"$N2/consumer.err" \
  || { cat "$N2/consumer.err" >&2; fail "ConsoleConsumer (4 messages)"; }
[[ $(tail -n1 "$N2/got4.txt") == "alice-1-$RUN" ]] || { cat "$N2/got4.txt"; fail "alice's message not in the topic"; }
say "AclCommand allowed alice; her message arrived"

tool "$CONFIG_CMD" "${A[@]}" --describe --entity-type users >"$N2/users.txt" || fail "$CONFIG_CMD --describe users"
grep -q 'SCRAM-SHA-512' "$N2/users.txt" || { cat "$N2/users.txt"; fail "no SCRAM credentials listed"; }
say "$CONFIG_CMD: $(paste -sd';' "$N2/users.txt")"
grep -q "Principal = User:$BROKER_CN" "$N2/logs/kafka-authorizer.log" 2>/dev/null \
  && say "authorizer log shows the controller-listener principal User:$BROKER_CN"

stop_node || fail "secure node did not stop cleanly"
check_logging "$N2"
grep -q 'shut down completed' "$N2/logs/server.log" || fail "no clean-shutdown line in server.log"
say "proof 2 passed"

# Negative check of the controller listener: the node authenticates to its controller with its
# certificate (mTLS), mapped to User:$BROKER_CN; without that principal in super.users the
# controller must deny the registration (CLUSTER_ACTION).
say "== proof 2b: without User:$BROKER_CN in super.users the controller refuses the node"
N3=$T/nosuper
mkdir -p "$N3/logs"
sed -e "s|^super.users=.*|super.users=User:admin|" -e "s|^log.dirs=.*|log.dirs=$N3/data|" \
  "$N2/server.properties" >"$N3/server.properties"
tool kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$N3/server.properties" \
  --add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PW]" >/dev/null 2>&1 || fail "format (2b)"
"$JAVA" -Xms256m -Xmx512m -Dlog4j2.configurationFile="$D/config/log4j2.yaml" -Dkafka.logs.dir="$N3/logs" \
  -cp "$CP" kafka.Kafka "$N3/server.properties" >"$N3/stdout.log" 2>&1 &
PID=$!
denied=""
for ((i = 0; i < 90; i++)); do
  denied=$(grep -m1 "Principal = User:$BROKER_CN is Denied operation = CLUSTER_ACTION" "$N3/logs/kafka-authorizer.log" 2>/dev/null || true)
  [[ -n $denied ]] && break
  grep -q 'Kafka Server started' "$N3/logs/server.log" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 1
done
grep -q 'Kafka Server started' "$N3/logs/server.log" 2>/dev/null && fail "node started without its CN in super.users"
[[ -n $denied ]] || { tail -n 20 "$N3/stdout.log" >&2; fail "no CLUSTER_ACTION denial for User:$BROKER_CN"; }
say "denied as expected: ${denied#*INFO }"
stop_node || true   # a node that cannot register may need the SIGKILL fallback
say "proof 2b passed"
say "PASS $(basename "$ARCHIVE")"
