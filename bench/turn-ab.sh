#!/usr/bin/env bash
# CPU time per relayed datagram of two builds of phonexd's relay and of
# coturn, interleaved in one run so that the machine's load of the moment
# falls on all of them alike: before/after figures for a change to the
# relay. Each round starts `phonexd relay` of each build and coturn (set
# up as in bench/turn.sh, for its best figure) in turn and drives it with
# bench/turnload at fixed offered rates.
#
#   bash bench/turn-ab.sh [REV_A [REV_B]]   (default: main and HEAD)
#
# Environment: ARGS (turnload arguments, default 8 pairs at 30000 and 60000
# datagrams/s; "-mode calls -calls 300" for calls), ROUNDS (default 3),
# STEP_SECONDS (default 4). Prints one line per build, round and step:
# build, pairs, offered/s, sent/s, received/s, loss, relay CPU µs per
# datagram.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v turnserver >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn >/dev/null; }
a=${1:-main}; b=${2:-HEAD}
args=${ARGS:--mode rate -pairs 8 -rates 30000,60000}
rounds=${ROUNDS:-3}
secs=${STEP_SECONDS:-4}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
. bench/lib/ports.sh
ulimit -n 65536 2>/dev/null || true

for rev in "$a" "$b"; do
  mkdir -p "$work/src-$rev"
  git archive "$rev" | tar -x -C "$work/src-$rev"
  (cd "$work/src-$rev" && go build -o "$work/phonexd-$rev" ./cmd/phonexd)
  echo "build $rev: $(git rev-parse --short "$rev")"
done
go build -o "$work/turnload" ./bench/turnload
"$work/phonexd-$b" init --data "$work/data" --domain bench.test --host 127.0.0.1 >/dev/null
sed -i 's/^log_level = .*/log_level = warn/;
  s/^relay_max_allocations = .*/relay_max_allocations = 100000/;
  s/^relay_allocation_rate = .*/relay_allocation_rate = 1000000000/;
  s/^relay_user_rate = .*/relay_user_rate = 1000000000/;
  s/^relay_min_port = .*/relay_min_port = 20000/; s/^relay_max_port = .*/relay_max_port = 29999/' "$work/data/phonexd.conf"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/data/relay.secret"
cport=$(free_port udp)
cat >"$work/turnserver.conf" <<CONF
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$cport
min-port=30000
max-port=39999
realm=bench.test
use-auth-secret
static-auth-secret=$(cat "$work/data/relay.secret")
relay-threads=$(nproc)
allow-loopback-peers
no-tls
no-dtls
no-cli
no-tcp-relay
no-multicast-peers
no-stdout-log
log-file=/dev/null
user-quota=0
total-quota=0
max-bps=0
pidfile=$work/turnserver.pid
userdb=$work/turndb
CONF
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); turnload $args, ${secs}s steps, $rounds rounds"
for r in $(seq "$rounds"); do
  for build in "$a" "$b" coturn; do
    if [ "$build" = coturn ]; then
      turnserver -c "$work/turnserver.conf" >/dev/null 2>&1 & pid=$!; port=$cport; sleep 1
    else
      port=$(free_port udp)
      "$work/phonexd-$build" relay --data "$work/data" --relay-addr "127.0.0.1:$port" --relay-tls-addr off >/dev/null 2>&1 & pid=$!; sleep 0.5
    fi
    # shellcheck disable=SC2086
    "$work/turnload" -server "127.0.0.1:$port" -realm bench.test -secret-file "$work/data/relay.secret" -pid "$pid" -duration "${secs}s" $args 2>/dev/null |
      python3 -c '
import sys, json
for l in sys.stdin:
    r = json.loads(l)
    print("%8s %d %.0f %.0f %.0f %.2f%% %.1f" % (sys.argv[1], r["pairs"], r["offered_pps"], r["sent"]/r["seconds"],
          r["received_pps"], 100*r["loss"], r["relay_cpu_us_per_packet"]))' "$build"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
