#!/usr/bin/env bash
# kafka-local.sh - a local Apache Kafka 4.3.1 (KRaft, combined broker+controller) on 127.0.0.1,
# run straight from Maven Central jars. Needs java 17+, mvn, and pom.xml + log4j2.properties beside it.
#   kafka-local.sh fetch              jars -> $KL_LIBS (once, then cached; KL_TOOLS=1 adds the CLI tools)
#   kafka-local.sh single [PORT]      1 node: client PORT (default 9092), controller PORT+1
#   kafka-local.sh cluster [PORT]     3 nodes: node N on client PORT+10(N-1), controller +1
#                                     (default PORT 19092: 19092, 19102, 19112; RF=3, min ISR 2)
#   kafka-local.sh netcluster NS=ADDR NS=ADDR NS=ADDR
#                                     3 nodes, node N in network namespace NS listening on ADDR
#                                     (client 9092, controller 9093): hosts of a test network
#                                     (tests/support/testnet.py); RF=3, min ISR 2
#   KL_AUTHORIZER=1 (with single, cluster, netcluster): Kafka's StandardAuthorizer, every
#   principal allowed where no ACL says otherwise, so an ACL can deny a write (fault tests)
#   kafka-local.sh kill N             SIGKILL node N (fault injection)
#   kafka-local.sh term N             SIGTERM node N (controlled shutdown), SIGKILL after 20 s
#   kafka-local.sh start N            (re)start node N and wait until it reports started
#   kafka-local.sh stop | clean       stop every node this script started | kill them, delete $KL_RUN
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KL_HOME=${KL_HOME:-$HERE}                       # pom.xml, log4j2.properties, libs/
# Jars are cached outside the work tree, so a fresh clone on the same machine reuses them.
LIBS=${KL_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/plug-pipeline/kafka-4.3.1${KL_TOOLS:+-tools}/libs}
KL_RUN=${KL_RUN:-$(cd "$HERE/../.." && pwd)/.kafka}   # per-node config, data, logs, pid
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
HEAP=${KL_HEAP:-512m}
CLUSTER_ID=${KL_CLUSTER_ID:-MkU3OEVBNTcwNTJENDM2Qk}   # 22-char base64url UUID; must not start with '-'
# the flags kafka-run-class.sh 4.3.1 uses (KAFKA_JVM_PERFORMANCE_OPTS); JMX/GC-log flags left out
JVM_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
          -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true)

die() { echo "kafka-local: $*" >&2; exit 1; }

fetch() {
  [[ -f $LIBS/.complete ]] && return 0
  command -v java >/dev/null || die "java 17+ is needed (OpenJDK 17 works)"
  command -v mvn >/dev/null || die "mvn is needed to fetch Kafka's jars from Maven Central"
  echo "kafka-local: fetching Kafka 4.3.1 jars from Maven Central into $LIBS (once)" >&2
  mvn -B -q -f "$KL_HOME/pom.xml" ${KL_TOOLS:+-Ptools} \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS"
  compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null || die "kafka_2.13 jar missing in $LIBS"
  touch "$LIBS/.complete"
}

# run_java LOGDIR HEAP MAIN ARGS... -- execs, so a backgrounded call's $! is the JVM's own pid
# close_inherited_fds: a daemon must not keep the caller's locks (see the file)
source "$HERE/../daemon-fds.sh"

# NETNS_EXEC: words before java (ip netns exec NS), for a node on a test network's host
NETNS_EXEC=()
run_java() {
  local logdir=$1 heap=$2; shift 2
  close_inherited_fds
  exec "${NETNS_EXEC[@]}" "$JAVA" -Xms"$heap" -Xmx"$heap" "${JVM_OPTS[@]}" \
       -Dkafka.logs.dir="$logdir" -Dlog4j2.configurationFile="$KL_HOME/log4j2.properties" \
       -cp "$LIBS/*" "$@"
}

# write_conf N CLIENT_PORT CONTROLLER_PORT VOTERS RF MIN_ISR [ADDRESS]
write_conf() {
  local n=$1 bp=$2 cp=$3 voters=$4 rf=$5 isr=$6 host=${7:-127.0.0.1} d=$KL_RUN/node$1
  mkdir -p "$d/data" "$d/logs"
  cat >"$d/server.properties" <<CONF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://$host:$bp,CONTROLLER://$host:$cp
advertised.listeners=PLAINTEXT://$host:$bp
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
num.partitions=3
# a transcript can be large: room for the ingress's body limit and its envelope
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
unclean.leader.election.enable=false
# faster failure detection for kill -9 tests (defaults 2000 / 9000 / 30000 ms)
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
replica.lag.time.max.ms=5000
# a 2-core box runs up to three of these
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.segment.bytes=67108864
CONF
  if [[ ${KL_AUTHORIZER:-} == 1 ]]; then
    cat >>"$d/server.properties" <<CONF
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=true
CONF
  fi
}

format_node() {   # N ; idempotent
  local d=$KL_RUN/node$1
  [[ -f $d/data/meta.properties ]] && return 0
  ( run_java "$d/logs" 256m kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$d/server.properties" ) \
      >"$d/logs/format.out" 2>&1 || { cat "$d/logs/format.out" >&2; die "format of node$1 failed"; }
}

alive() { [[ -f $KL_RUN/node$1/pid ]] && kill -0 "$(cat "$KL_RUN/node$1/pid")" 2>/dev/null; }

start_node() {    # N ; returns at once, see wait_ready
  local d=$KL_RUN/node$1
  alive "$1" && return 0
  touch "$d/logs/server.log"
  wc -l <"$d/logs/server.log" >"$d/logmark"     # only log lines after this count are this run's
  NETNS_EXEC=()
  [[ -f $d/netns ]] && NETNS_EXEC=(ip netns exec "$(cat "$d/netns")")
  run_java "$d/logs" "$HEAP" kafka.Kafka "$d/server.properties" >>"$d/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$d/pid"
}

wait_ready() {    # N [TIMEOUT_S] ; "Kafka Server started" is logged after the broker is unfenced
  local d=$KL_RUN/node$1 t=${2:-120} mark end
  mark=$(cat "$d/logmark"); end=$((SECONDS + t))
  while ((SECONDS < end)); do
    # awk, not tail | grep -q: grep exiting early kills tail with SIGPIPE, and under
    # pipefail a broker that is already up (a long log after the mark) looks not started
    awk -v m="$mark" 'NR > m && /Kafka Server started/ { found = 1; exit } END { exit !found }' \
        "$d/logs/server.log" && return 0
    alive "$1" || { tail -n 40 "$d/logs/stdout.log" "$d/logs/server.log" >&2; die "node$1 exited during startup"; }
    sleep 0.2
  done
  die "node$1 not started after ${t}s (a multi-node quorum needs a majority of nodes running)"
}

kill_node() {
  if alive "$1"; then
    local pid; pid=$(cat "$KL_RUN/node$1/pid")
    kill -9 "$pid"
    # gone, or a zombie its parent has yet to reap (it holds nothing then)
    for _ in $(seq 50); do [[ $(ps -o stat= -p "$pid" 2>/dev/null) == [!Z]* ]] || break; sleep 0.1; done
  fi
  rm -f "$KL_RUN/node$1/pid"
}

term_node() {
  alive "$1" || return 0
  local pid; pid=$(cat "$KL_RUN/node$1/pid")
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$KL_RUN/node$1/pid"
}

nodes() { local p; for p in "$KL_RUN"/node*/; do [[ -d $p ]] && basename "$p" | tr -dc 0-9 && echo; done; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

single() {
  local bp=${1:-9092}; local cp=$((bp + 1))
  fetch
  if ! alive 1 && port_busy "$bp"; then
    die "127.0.0.1:$bp is already in use by another process; stop it or pick another port"
  fi
  write_conf 1 "$bp" "$cp" "1@127.0.0.1:$cp" 1 1
  format_node 1; start_node 1; wait_ready 1
  echo "bootstrap.servers=127.0.0.1:$bp"
}

cluster() {
  local base=${1:-19092} n voters=""
  for n in 1 2 3; do voters+="${voters:+,}$n@127.0.0.1:$((base + 10 * (n - 1) + 1))"; done
  fetch
  for n in 1 2 3; do
    write_conf "$n" "$((base + 10 * (n - 1)))" "$((base + 10 * (n - 1) + 1))" "$voters" 3 2
  done
  for n in 1 2 3; do format_node "$n" & done; wait
  for n in 1 2 3; do start_node "$n"; done          # all at once: each waits for the quorum
  for n in 1 2 3; do wait_ready "$n"; done
  echo "bootstrap.servers=127.0.0.1:$base,127.0.0.1:$((base + 10)),127.0.0.1:$((base + 20))"
}

netcluster() {
  (($# == 3)) || die "netcluster NS=ADDR NS=ADDR NS=ADDR"
  local n=0 spec voters="" addrs=() nss=()
  for spec in "$@"; do nss+=("${spec%%=*}"); addrs+=("${spec#*=}"); done
  for n in 1 2 3; do voters+="${voters:+,}$n@${addrs[n - 1]}:9093"; done
  fetch
  for n in 1 2 3; do
    write_conf "$n" 9092 9093 "$voters" 3 2 "${addrs[n - 1]}"
    echo "${nss[n - 1]}" >"$KL_RUN/node$n/netns"
  done
  for n in 1 2 3; do format_node "$n" & done; wait
  for n in 1 2 3; do start_node "$n"; done
  for n in 1 2 3; do wait_ready "$n"; done
  echo "bootstrap.servers=${addrs[0]}:9092,${addrs[1]}:9092,${addrs[2]}:9092"
}

cmd=${1:-}; shift || true
case $cmd in
  fetch)   fetch ;;
  single)  single "$@" ;;
  cluster) cluster "$@" ;;
  netcluster) netcluster "$@" ;;
  start)   start_node "$1"; wait_ready "$1" ;;
  kill)    kill_node "$1" ;;
  term)    term_node "$1" ;;
  stop)    [[ -d $KL_RUN ]] && for n in $(nodes); do term_node "$n"; done; true ;;
  # the data goes too: no controlled shutdown to wait for (a cluster's took 25 s)
  clean)   [[ -d $KL_RUN ]] && for n in $(nodes); do kill_node "$n"; done; rm -rf "$KL_RUN" ;;
  *)       sed -n '2,18p' "$0"; exit 2 ;;
esac
