#!/usr/bin/env bash
# Build kafka_2.13-<version>.tgz from the jars on Maven Central, in the official tarball's layout
# (kafka_2.13-<ver>/libs/*.jar, config/), because the upstream download site is out of reach.
#
#   tools/artifacts/build-kafka.sh 4.1.1
#
# Env: ISOBAR_CACHE, STORE_DIR, WORK_DIR (see CONVENTIONS.md); MAVEN_REPO_LOCAL to use another
# local repository than ~/.m2/repository; KAFKA_MAX_CLASS_MAJOR (default 61 = Java 17): the build
# fails if any class in libs/ needs a newer JVM.
# Writes $STORE_DIR/kafka_2.13-<ver>.tgz (temp file, then rename) and <archive>.provenance.json.
# If both exist and the sha256 matches, exits 0 at once. The tarball is deterministic: sorted
# entries, fixed owner/mode/mtime, gzip -n; a rebuild of the same version gives the same sha256.
set -euo pipefail

usage() { echo "usage: $0 <kafka-version>   (e.g. 4.1.1)" >&2; exit 2; }
[[ $# -eq 1 ]] || usage
VERSION=$1
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "build-kafka: bad version '$VERSION'" >&2; usage; }

SCALA=2.13
NAME=kafka_${SCALA}-${VERSION}
ISOBAR_CACHE=${ISOBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isobar}
STORE_DIR=${STORE_DIR:-$ISOBAR_CACHE/store}
WORK_DIR=${WORK_DIR:-$ISOBAR_CACHE/work/kafka}
ARCHIVE=$STORE_DIR/$NAME.tgz
PROV=$ARCHIVE.provenance.json

log() { echo "build-kafka: $*" >&2; }

# ---- fast path: archive + provenance present and the sha256 matches --------------------------
recorded_sha() { grep -o '"sha256": *"[0-9a-f]\{64\}"' "$1" 2>/dev/null | grep -o '[0-9a-f]\{64\}' || true; }
if [[ -f $ARCHIVE && -f $PROV ]]; then
  want=$(recorded_sha "$PROV")
  if [[ -n $want ]] && [[ $(sha256sum "$ARCHIVE" | cut -d' ' -f1) == "$want" ]]; then
    log "$ARCHIVE is up to date (sha256 $want)"
    exit 0
  fi
  log "$ARCHIVE or its provenance does not match: rebuilding"
fi

# ---- build ----------------------------------------------------------------------------------
start_ns=$(date +%s%N)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM=$HERE/kafka/pom.xml
CONF_SRC=$HERE/kafka/config
MAX_MAJOR=${KAFKA_MAX_CLASS_MAJOR:-61}
for tool in mvn java tar gzip sha256sum unzip python3; do
  command -v "$tool" >/dev/null || { log "needs '$tool' on PATH"; exit 1; }
done

W=$WORK_DIR/$VERSION
mkdir -p "$W" "$STORE_DIR"
exec 9>"$W/.lock"
flock 9   # one build of a version at a time; a second caller waits, then takes the fast path
if [[ -f $ARCHIVE && -f $PROV ]] && [[ $(sha256sum "$ARCHIVE" | cut -d' ' -f1) == "$(recorded_sha "$PROV")" ]]; then
  log "$ARCHIVE was built meanwhile"; exit 0
fi

# Temp files live next to their final names (same filesystem: the rename is atomic). Remove those
# a killed earlier run left behind; the lock above means no other build of $NAME is writing them.
rm -f "$STORE_DIR/.$NAME.tgz.tmp."* "$STORE_DIR/.$NAME.tgz.provenance.json.tmp."*
TMP_ARCHIVE=$STORE_DIR/.$NAME.tgz.tmp.$$
TMP_PROV=$STORE_DIR/.$NAME.tgz.provenance.json.tmp.$$
cleanup() { rm -f "$TMP_ARCHIVE" "$TMP_PROV"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

MVN=(mvn -B -q -f "$POM" -Dstyle.color=never -Dkafka.version="$VERSION")
[[ -n ${MAVEN_REPO_LOCAL:-} ]] && MVN+=(-Dmaven.repo.local="$MAVEN_REPO_LOCAL")
mvn_run() {  # mvn output goes to $W/mvn.log; shown on failure
  if ! "${MVN[@]}" "$@" >>"$W/mvn.log" 2>&1; then
    log "mvn $* failed; last lines of $W/mvn.log:"; tail -n 40 "$W/mvn.log" >&2; exit 1
  fi
}
: >"$W/mvn.log"

# 1. Which Log4j 2 does Kafka itself bring (kafka-server -> log4j-core)? Align the backend to it.
rm -f "$W/probe.txt"
mvn_run dependency:list -Disobar.probe -DincludeScope=runtime -DincludeArtifactIds=log4j-core \
  -DoutputFile="$W/probe.txt"
LOG4J=$(grep -o 'org.apache.logging.log4j:log4j-core:jar:[^:]*' "$W/probe.txt" | head -n1 | cut -d: -f4 || true)
if [[ -n $LOG4J ]]; then
  log "Kafka $VERSION resolves log4j-core $LOG4J; using it for the whole Log4j 2 backend"
  MVN+=(-Dlog4j2.version="$LOG4J")
else
  LOG4J=$(sed -n 's:.*<log4j2.version>\(.*\)</log4j2.version>.*:\1:p' "$POM")
  log "Kafka $VERSION brings no log4j-core; using the pom default $LOG4J"
fi

# 2. Collect the runtime jar set (a fresh directory each time; the Maven repo is the cache).
rm -rf "$W/libs" "$W/stage"
mvn_run dependency:copy-dependencies dependency:list -DincludeScope=runtime \
  -DoutputDirectory="$W/libs" -DoutputFile="$W/deps.txt" -Dsort=true
n_jars=$(find "$W/libs" -maxdepth 1 -name '*.jar' | wc -l)
log "collected $n_jars jars ($(du -sh "$W/libs" | cut -f1))"

for j in "$NAME.jar" "kafka-clients-$VERSION.jar" "kafka-tools-$VERSION.jar" "kafka-server-$VERSION.jar" \
         "kafka-storage-$VERSION.jar" "kafka-raft-$VERSION.jar" "kafka-metadata-$VERSION.jar" \
         "log4j-api-$LOG4J.jar" "log4j-core-$LOG4J.jar" "log4j-slf4j-impl-$LOG4J.jar" "log4j-1.2-api-$LOG4J.jar"; do
  [[ -f $W/libs/$j ]] || { log "expected jar missing: $j"; exit 1; }
done
compgen -G "$W/libs/slf4j-api-1.*.jar" >/dev/null || { log "expected slf4j-api 1.x (log4j-slf4j-impl binds to it)"; exit 1; }
compgen -G "$W/libs/jackson-dataformat-yaml-*.jar" >/dev/null || { log "jackson-dataformat-yaml missing (needed for log4j2.yaml)"; exit 1; }

# 3. Every class (outside META-INF/versions/) must load on Java 17: class-file major <= MAX_MAJOR.
python3 - "$W/libs" "$MAX_MAJOR" >"$W/class-majors.txt" <<'PY'
import sys, zipfile, glob, os
d, limit = sys.argv[1], int(sys.argv[2])
bad = []
for j in sorted(glob.glob(os.path.join(d, "*.jar"))):
    majors = set()
    with zipfile.ZipFile(j) as z:
        for n in z.namelist():
            if n.endswith(".class") and not n.startswith("META-INF/versions/") and not n.endswith("module-info.class"):
                with z.open(n) as f:
                    majors.add(int.from_bytes(f.read(8)[6:8], "big"))
    top = max(majors) if majors else 0
    print(f"{top}\t{os.path.basename(j)}")
    if top > limit:
        bad.append(f"{os.path.basename(j)} (major {top})")
if bad:
    print("too new for the JVM limit %d: %s" % (limit, ", ".join(bad)), file=sys.stderr)
    sys.exit(1)
PY
server_major=$(grep -E "	(kafka_${SCALA}|kafka-server)-$VERSION\.jar$" "$W/class-majors.txt" | cut -f1 | sort -n | tail -n1)
log "class-file major: kafka server jars $server_major, highest in libs/ $(cut -f1 "$W/class-majors.txt" | sort -n | tail -n1) (limit $MAX_MAJOR)"

# 4. Stage the official layout.
S=$W/stage/$NAME
mkdir -p "$S/libs" "$S/config"
cp -p "$W/libs/"*.jar "$S/libs/"
cp "$CONF_SRC/"* "$S/config/"
unzip -p "$W/libs/$NAME.jar" LICENSE >"$S/LICENSE"
unzip -p "$W/libs/$NAME.jar" NOTICE >"$S/NOTICE"
[[ -s $S/LICENSE && -s $S/NOTICE ]] || { log "LICENSE/NOTICE not found in $NAME.jar"; exit 1; }

# Maven coordinates of every jar (the official LICENSE-binary list is not on Maven Central; each
# third-party jar carries its own license under META-INF/).
{
  echo "# Maven coordinates of libs/*.jar (group:artifact:type:version:scope), from Maven Central"
  grep -E '^ +[^ ]+:[^ ]+:jar:' "$W/deps.txt" | awk '{print $1}' | sort
} >"$S/LIBS.txt"

# Main classes present in this version (some moved between 4.x releases).
main_class() {  # $1 = candidate classes (dotted) in preference order
  local c jar
  for c in "$@"; do
    for jar in "$S/libs/"kafka*.jar; do
      if unzip -Z1 "$jar" "${c//.//}.class" >/dev/null 2>&1; then echo "$c"; return; fi
    done
  done
  echo "(not present)"
}
{
  cat <<EOF
Apache Kafka $VERSION (Scala $SCALA), assembled by Isobar from Maven Central
==========================================================================

The jars in libs/ are the unmodified artifacts of org.apache.kafka:kafka_$SCALA:$VERSION and
org.apache.kafka:kafka-tools:$VERSION with their runtime dependencies (see LIBS.txt), plus the
Log4j 2 backend of the official tarball (log4j-core/-api, log4j-slf4j-impl, log4j-1.2-api $LOG4J).
Not included: Kafka Streams, MirrorMaker, Connect file connectors, trogdor, kafka-shell.

There is no bin/ directory: the bin/*.sh scripts exist only in the source/binary tarballs on the
Apache download site. Run the classes directly with  java -cp '<this dir>/libs/*' <main class> ...
Requires Java 17 or newer (class-file major of the server jars: $server_major).

Broker/controller:
  java -Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \\
       -Djava.awt.headless=true \\
       -Dlog4j2.configurationFile=<dir>/config/log4j2.yaml -Dkafka.logs.dir=<log dir> \\
       -cp '<dir>/libs/*' kafka.Kafka <dir>/config/server.properties
Tools (add -Dlog4j2.configurationFile=<dir>/config/tools-log4j2.yaml to keep stdout clean):

  script (official tarball)        main class in this version
EOF
  printf '  %-32s %s\n' \
    kafka-server-start.sh          "kafka.Kafka" \
    kafka-storage.sh               "$(main_class kafka.tools.StorageTool)" \
    kafka-topics.sh                "$(main_class org.apache.kafka.tools.TopicCommand)" \
    kafka-console-producer.sh      "$(main_class org.apache.kafka.tools.ConsoleProducer)" \
    kafka-console-consumer.sh      "$(main_class org.apache.kafka.tools.consumer.ConsoleConsumer)" \
    kafka-producer-perf-test.sh    "$(main_class org.apache.kafka.tools.ProducerPerformance)" \
    kafka-consumer-perf-test.sh    "$(main_class org.apache.kafka.tools.ConsumerPerformance)" \
    kafka-metadata-quorum.sh       "$(main_class org.apache.kafka.tools.MetadataQuorumCommand)" \
    kafka-acls.sh                  "$(main_class org.apache.kafka.tools.AclCommand kafka.admin.AclCommand)" \
    kafka-configs.sh               "$(main_class org.apache.kafka.tools.ConfigCommand kafka.admin.ConfigCommand)" \
    kafka-leader-election.sh       "$(main_class org.apache.kafka.tools.LeaderElectionCommand)" \
    kafka-consumer-groups.sh       "$(main_class org.apache.kafka.tools.consumer.group.ConsumerGroupCommand)" \
    kafka-features.sh              "$(main_class org.apache.kafka.tools.FeatureCommand)" \
    kafka-broker-api-versions.sh   "$(main_class org.apache.kafka.tools.BrokerApiVersionsCommand kafka.admin.BrokerApiVersionsCommand)" \
    kafka-log-dirs.sh              "$(main_class org.apache.kafka.tools.LogDirsCommand)" \
    kafka-get-offsets.sh           "$(main_class org.apache.kafka.tools.GetOffsetShell)"
  cat <<EOF

Storage: java -cp '<dir>/libs/*' kafka.tools.StorageTool random-uuid
         java -cp '<dir>/libs/*' kafka.tools.StorageTool format -t <uuid> -c server.properties \\
              [--add-scram 'SCRAM-SHA-512=[name=admin,password=...]']
EOF
} >"$S/README.isobar"

# 5. Deterministic tarball -> temp file in STORE_DIR -> rename.
# Fixed mtime: 2000-01-01T00:00:00Z (the jars' own contents carry their real build dates).
tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner --mtime=@946684800 \
    --mode='u+rwX,go+rX,go-w' -C "$W/stage" -cf - "$NAME" | gzip -n -9 >"$TMP_ARCHIVE"
gzip -t "$TMP_ARCHIVE"
sha=$(sha256sum "$TMP_ARCHIVE" | cut -d' ' -f1)
size=$(stat -c %s "$TMP_ARCHIVE")
mv -f "$TMP_ARCHIVE" "$ARCHIVE"

# 6. Provenance (written after the archive, so a half-done run never looks complete).
mvn_ver=$(mvn -v 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | sed -n 's/^Apache Maven \([^ ]*\).*/\1/p' | head -n1)
java_ver=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.runtime.version = //p')
java_vendor=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.vendor = //p')
end_ns=$(date +%s%N)
build_seconds=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN{printf "%.1f", (b-a)/1e9}')
json_escape() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '%s' "$s"; }
cat >"$TMP_PROV" <<EOF
{
  "component": "kafka",
  "version": "$VERSION",
  "file": "$NAME.tgz",
  "sha256": "$sha",
  "size": $size,
  "source": "$(json_escape "assembled from Maven Central: org.apache.kafka:kafka_$SCALA:$VERSION + org.apache.kafka:kafka-tools:$VERSION + runtime deps + log4j-slf4j-impl/log4j-1.2-api $LOG4J via mvn dependency:copy-dependencies (tools/artifacts/kafka/pom.xml); config/ from tools/artifacts/kafka/config; no bin/ scripts")",
  "jars": $n_jars,
  "log4j2": "$LOG4J",
  "class_file_major_max": $(cut -f1 "$W/class-majors.txt" | sort -n | tail -n1),
  "toolchain": "$(json_escape "Apache Maven $mvn_ver; Java $java_ver ($java_vendor); maven-dependency-plugin 3.8.1; GNU tar $(tar --version | head -n1 | awk '{print $NF}'); gzip -n -9")",
  "build_seconds": $build_seconds,
  "created": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
mv -f "$TMP_PROV" "$PROV"
log "wrote $ARCHIVE ($((size / 1024 / 1024)) MiB, sha256 $sha, ${build_seconds}s)"
