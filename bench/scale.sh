#!/usr/bin/env bash
# Scale-out on this machine, in one run:
#  - relay rate (MESSAGEs end to end through the node, every check on,
#    bench/relay's 20 sender and 20 receiver TLS devices) with one node on
#    SQLite, one node on PostgreSQL, and two nodes on PostgreSQL + NATS
#    (senders on node 1, receivers on node 2, so every MESSAGE crosses the
#    bus); the PostgreSQL and NATS rows run when this phonexd has
#    --store/--bus and initdb/nats-server are installed, and say why not
#    otherwise;
#  - the CPU time each configuration spends per MESSAGE (all nodes), and
#    the load generator's own CPU per MESSAGE and share of the machine, so
#    an operator can size a cluster from the per-node cost rather than from
#    what a 2-core machine can show of two nodes;
#  - failover time: kill -9 of the node a device account's FAILOVER_DEVICES
#    devices are registered with, to the last of them taking a message
#    sent through the surviving node (two nodes on one SQLite data
#    directory; each device lists both API addresses).
#
# Environment: PAIRS (default 20), DURATION (each relay run, default 8s),
# FAILOVER_DEVICES (default 4), FAILOVER_ONLY=1 (skip the relay runs).
# Prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
track() { echo "$1" >>"$work/pids"; }
stop() {
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do
    wait "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
}
cleanup() {
  [ -f "$work/pids" ] && stop $(cat "$work/pids")
  [ -n "${pgdata:-}" ] && [ -d "$pgdata" ] && pg_as "$pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. bench/lib/ports.sh
now_ms() { date +%s%3N; }

pairs=${PAIRS:-20}
duration=${DURATION:-8s}
ndev=${FAILOVER_DEVICES:-4}

go build -o "$work/phonexd" ./cmd/phonexd
go build -o "$work/phonex" ./cmd/phonex
go build -o "$work/relay" ./bench/relay
ulimit -n 8192 2>/dev/null || true

has_flag() { "$work/phonexd" serve --help 2>&1 | grep -q -- "--$1"; }

# tune DATA: the settings bench/messaging.sh uses (the rate limit raised so
# the relay is measured, not the limiter; a cheap KDF floor for the bench
# devices), no relay and no metrics listener (ports shared by nodes).
tune() {
  sed -i 's/^message_rate = .*/message_rate = 1000000/; s/^message_burst = .*/message_burst = 1000000/;
          s/^log_level = .*/log_level = warn/; s/^kdf_min_log_n = .*/kdf_min_log_n = 14/;
          s/^relay_enabled = .*/relay_enabled = false/; s/^metrics_addr = .*/metrics_addr = off/' "$1/phonexd.conf"
}

# serve NAME DATA [ARGS...]: starts a node; sets NAME_api, NAME_sip, NAME_pid.
serve() {
  local name=$1 data=$2; shift 2
  "$work/phonexd" serve --data "$data" --api-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 --sip-phone-addr off "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!; track $pid
  for _ in $(seq 200); do grep -q '^sip:' "$work/$name.out" 2>/dev/null && break; sleep 0.1; done
  grep -q '^sip:' "$work/$name.out" || { echo "$name did not start:" >&2; cat "$work/$name.err" >&2; exit 1; }
  printf -v "${name}_api" '%s' "$(sed -n 's#^api: https://\([^ ]*\).*#\1#p' "$work/$name.out")"
  printf -v "${name}_sip" '%s' "$(sed -n 's#^sip: sips:\([^ ]*\).*#\1#p' "$work/$name.out")"
  printf -v "${name}_pid" '%s' "$pid"
}

rows=()
# relay LABEL DATA API SIP PID [RECV_SIP PID2 [-split]]: one bench/relay
# run, one row; with PostgreSQL running (dbpid set), its CPU per MESSAGE too.
dbpid=0 runs=0
relay() {
  local label=$1 data=$2 api=$3 sip=$4 pid=$5 rsip=${6:-} pid2=${7:-0} split=${8:-}
  local out="$work/relay-$(echo "$label" | tr -c 'a-zA-Z0-9' _).out"
  runs=$((runs + 1)) # each run its own accounts: a shared store keeps the earlier ones
  "$work/relay" -api "$api" -sip "$sip" -data "$data" -pid "$pid" ${rsip:+-recv-sip "$rsip" -pid2 "$pid2"} -db-pid "$dbpid" $split -prefix "run$runs" \
    -pairs "$pairs" -duration "$duration" >"$out" 2>&1 || { rows+=("| $label | failed: $(tail -1 "$out") | | | |"); return; }
  local rate cpu gen share nshare dbcpu
  rate=$(sed -n 's/^RATE //p' "$out"); cpu=$(sed -n 's/^CPU //p' "$out"); dbcpu=$(sed -n 's/^DBCPU //p' "$out")
  gen=$(sed -n 's/^GENCPU //p' "$out"); share=$(sed -n 's/^GENSHARE //p' "$out"); nshare=$(sed -n 's/^NODESHARE //p' "$out")
  rows+=("| $label | $rate | $cpu µs${dbcpu:+ (+ PostgreSQL $dbcpu µs)} | $nshare% | $gen µs ($share% of the machine) |")
}

if [ -z "${FAILOVER_ONLY:-}" ]; then
# --- one node on SQLite ---
"$work/phonexd" init --data "$work/sqlite" --domain bench.test --host 127.0.0.1 >/dev/null
tune "$work/sqlite"
serve one "$work/sqlite"
relay "1 node, SQLite" "$work/sqlite" "$one_api" "$one_sip" "$one_pid"
stop "$one_pid"

# --- PostgreSQL (and NATS) ---
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
initdb=$(command -v initdb || echo "$pg_bin/initdb"); pg_ctl=$(command -v pg_ctl || echo "$pg_bin/pg_ctl")
# PostgreSQL refuses to run as root: as root it runs as nobody.
# It runs from its data directory, which that user can enter.
pg_as() { (cd "$pgdata" && if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi); }
pg_skip=""
has_flag store || pg_skip="phonexd serve has no --store here (the node does not open PostgreSQL yet)"
[ -z "$pg_skip" ] && { [ -x "$initdb" ] || pg_skip="PostgreSQL (initdb) not installed"; }
if [ -z "$pg_skip" ]; then
  pgdata="$work/pg"; mkdir -p "$pgdata"; chmod 700 "$pgdata"
  [ "$(id -u)" -eq 0 ] && chown nobody "$pgdata" "$work" && chmod 755 "$work"
  pgport=$(free_port)
  pg_as "$initdb" -D "$pgdata" -U phonex --auth=trust >/dev/null
  pg_as "$pg_ctl" -D "$pgdata" -o "-p $pgport -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=on" -l "$pgdata/log" -w start >/dev/null
  pgurl="postgres://phonex@127.0.0.1:$pgport/postgres?sslmode=disable"
  dbpid=$(head -1 "$pgdata/postmaster.pid")
  "$work/phonexd" init --data "$work/pgnode" --domain bench.test --host 127.0.0.1 --store "$pgurl" >/dev/null
  tune "$work/pgnode"
  serve pg1 "$work/pgnode" --store "$pgurl"
  relay "1 node, PostgreSQL" "$work/pgnode" "$pg1_api" "$pg1_sip" "$pg1_pid"
  # A second node on the same store (init --join), each device pair on one
  # of the two: what two nodes cost per MESSAGE without routing between them.
  "$work/phonexd" init --data "$work/pgnode2" --join "$work/pgnode" --host 127.0.0.1 >/dev/null
  tune "$work/pgnode2"
  serve pg2 "$work/pgnode2"
  relay "2 nodes, PostgreSQL, each device pair on one node (no routing between nodes)" "$work/pgnode" "$pg1_api" "$pg1_sip" "$pg1_pid" "$pg2_sip" "$pg2_pid" -split
  stop "$pg2_pid"
  nats_skip=""
  has_flag bus || nats_skip="phonexd serve has no --bus here (no routing between nodes yet)"
  [ -z "$nats_skip" ] && { command -v nats-server >/dev/null || nats_skip="nats-server not installed"; }
  if [ -z "$nats_skip" ]; then
    natsport=$(free_port)
    nats-server -a 127.0.0.1 -p "$natsport" >"$work/nats.log" 2>&1 &
    track $!
    sleep 0.5
    serve pg2 "$work/pgnode2" --bus "nats://127.0.0.1:$natsport"
    stop "$pg1_pid"
    serve pg1 "$work/pgnode" --store "$pgurl" --bus "nats://127.0.0.1:$natsport"
    relay "2 nodes, PostgreSQL + NATS (senders on node 1, receivers on node 2)" "$work/pgnode" "$pg1_api" "$pg1_sip" "$pg1_pid" "$pg2_sip" "$pg2_pid"
    stop "$pg2_pid"
  else
    rows+=("| 2 nodes, PostgreSQL + NATS | not run: $nats_skip | | | |")
  fi
  stop "$pg1_pid"
  dbpid=0
else
  rows+=("| 1 node, PostgreSQL | not run: $pg_skip | | | |")
  rows+=("| 2 nodes, PostgreSQL + NATS | not run: $pg_skip | | | |")
fi

echo "## Scale-out ($(nproc) cores, $(go version | cut -d' ' -f3)$( [ -x "$initdb" ] && echo ", $("$initdb" --version | sed 's/initdb (//; s/)//')")$(command -v nats-server >/dev/null && echo ", nats-server $(nats-server --version | grep -o 'v[0-9][0-9.]*' | head -1)"))"
echo
echo "| configuration | MESSAGEs relayed end to end per second | node CPU per MESSAGE (all nodes, user + system; and the database server's) | nodes' share of the machine | load generator CPU per MESSAGE |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
fi

# --- failover: two nodes on one SQLite data directory ---
fo="$work/failover"
"$work/phonexd" init --data "$fo" --domain bench.test --host 127.0.0.1 >/dev/null
tune "$fo"
serve n1 "$fo"
# Node 2's metrics count the devices that register with it.
maddr=127.0.0.1:$(free_port)
serve n2 "$fo" --metrics-addr "$maddr"
registered() { curl -fsS "http://$maddr/metrics" 2>/dev/null | sed -n 's/^phonex_sip_registrations_total{kind="device"} //p'; }
export PHONEX_PASSWORD="failover bench password"
enroll() { # USER DEVICE SERVERS FIRST
  local cmd=login code=()
  if [ "$4" = first ]; then
    cmd=enroll
    code=(--code "$("$work/phonexd" user add --data "$fo" "$1@bench.test" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')")
  fi
  "$work/phonex" "$cmd" "$1@bench.test" --profile "$work/p-$1-$2" --server "$3" --ca-file "$fo/ca.pem" --device "$2" "${code[@]}" >/dev/null
}
enroll alpha a "$n2_api" first # the sender uses the surviving node only: its own failover is not timed
for i in $(seq "$ndev"); do enroll bravo "b$i" "$n1_api,$n2_api" $([ "$i" = 1 ] && echo first || echo next); done
"$work/phonex" contacts add bravo@bench.test --profile "$work/p-alpha-a" >/dev/null
"$work/phonex" contacts add alpha@bench.test --profile "$work/p-bravo-b1" >/dev/null
lpids=()
for i in $(seq "$ndev"); do
  "$work/phonex" listen --json --profile "$work/p-bravo-b$i" >"$work/listen-$i.out" 2>"$work/listen-$i.err" &
  lpids+=($!); track $!
done
for i in $(seq "$ndev"); do
  for _ in $(seq 200); do grep -q '"type":"ready"' "$work/listen-$i.out" 2>/dev/null && break; sleep 0.1; done
done
# Every device is on node 1 (the first address of each profile).
before=$(registered)
# (The group's stderr hides the shell's "Killed" notice.)
{ kill -9 "$n1_pid"; t0=$(now_ms); wait "$n1_pid"; } 2>/dev/null || true
("$work/phonex" send bravo@bench.test "failover probe" --profile "$work/p-alpha-a" >/dev/null; echo $(( $(now_ms) - t0 )) >"$work/sent") &
sender=$!
last=0 moved=""
declare -A got=()
while [ ${#got[@]} -lt "$ndev" ] && [ $(( $(now_ms) - t0 )) -lt 60000 ]; do
  if [ -z "$moved" ] && [ "$(registered)" -ge $((before + ndev)) ] 2>/dev/null; then moved=$(( $(now_ms) - t0 )); fi
  for i in $(seq "$ndev"); do
    [ -n "${got[$i]:-}" ] && continue
    if grep -q 'failover probe' "$work/listen-$i.out"; then got[$i]=$(( $(now_ms) - t0 )); last=${got[$i]}; fi
  done
  sleep 0.02
done
wait "$sender" || true
echo "| failover (kill -9 of the node $ndev devices of one account are registered with; 2 nodes on one SQLite directory) | value |"
echo "|---|---|"
if [ ${#got[@]} -lt "$ndev" ]; then
  echo "| devices that got the message within 60 s | ${#got[@]} of $ndev |"
else
  echo "| kill -9 to the last device taking a message sent through the other node | $last ms |"
  echo "| kill -9 to the first device taking it | $(printf '%s\n' "${got[@]}" | sort -n | head -1) ms |"
fi
echo "| kill -9 to all $ndev devices registered with the other node (its phonex_sip_registrations_total) | ${moved:-not seen} ms |"
echo "| the sender's 'phonex send' (unlock, seal, MESSAGE to node 2), started at the kill | $(cat "$work/sent" 2>/dev/null || echo '?') ms |"
stop "${lpids[@]}" "$n2_pid"
