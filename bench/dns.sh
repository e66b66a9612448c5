#!/usr/bin/env bash
# Authoritative answers per second for DNSSEC-signed NAPTR queries with the
# DO bit (dnsperf -D), for a 10,000-number ENUM zone, in one run:
#  - phonexd's zone server (internal/dnszone, what 'phonexd serve --dns-addr'
#    runs), signing ahead of time;
#  - Knot DNS and BIND 9 from Debian serving the very same signed zone
#    (exported by the helper), each configured for its best figure: one
#    worker per core, no query logging, minimal responses.
# Prints a Markdown table, each server's settings and the ratios.
# Needs dnsperf, knot and bind9; installs them with apt-get when missing (as
# root).
#
# Environment: NUMBERS (default 10000), SECONDS_PER_RUN (default 10),
# CLIENTS (dnsperf -c, default 20), ROUNDS (runs per server, best kept,
# default 3), PHONEXD_ONLY.
set -euo pipefail
cd "$(dirname "$0")/.."
numbers=${NUMBERS:-10000}
secs=${SECONDS_PER_RUN:-10}
clients=${CLIENTS:-20}
rounds=${ROUNDS:-3}
cores=$(nproc)
. bench/lib/scratch.sh
wait_dns() {
  for _ in $(seq 200); do
    dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" bench.example. SOA >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server on port $1 did not answer" >&2
  return 1
}
need=()
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
if [ -z "${PHONEXD_ONLY:-}" ]; then
  command -v knotd >/dev/null 2>&1 || [ -x /usr/sbin/knotd ] || need+=(knot)
  command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || need+=(bind9)
fi
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
export PATH=$PATH:/usr/sbin

# perf PORT: queries per second of one dnsperf run.
# Every answer must be NOERROR (a server that failed to load the zone
# would answer fast and wrong).
perf() {
  local out
  out=$(dnsperf -D -s 127.0.0.1 -p "$1" -d "$work/queries.txt" -l "$secs" -c "$clients" -T 1 -q 500 2>&1)
  if ! grep -q 'Response codes: *NOERROR [0-9]* (100.00%)' <<<"$out"; then
    echo "port $1: not every answer was NOERROR:" >&2
    grep -E 'Response codes|Queries (sent|completed|lost)' <<<"$out" >&2
    return 1
  fi
  sed -n 's/^ *Queries per second: *\([0-9.]*\).*/\1/p' <<<"$out"
}
best() { awk -v a="$1" -v b="$2" 'BEGIN{print (a+0>b+0)?a:b}'; }

go build -o "$work/dnszone" ./bench/dnszone
port=$(free_port udp)
"$work/dnszone" -n "$numbers" -out "$work" -serve "127.0.0.1:$port" >"$work/phonexd.out" 2>"$work/phonexd.err" &
pids+=($!)
for _ in $(seq 600); do grep -q '^serving' "$work/phonexd.out" 2>/dev/null && break; sleep 0.1; done
wait_dns "$port"
servers=(phonexd)
ports=("$port")

if [ -z "${PHONEXD_ONLY:-}" ]; then
  # Knot DNS: the same signed zone, no signing of its own, one UDP worker
  # per core, no query log (knotd logs no queries unless a module is
  # configured), no zone file rewrites.
  kport=$(free_port udp)
  mkdir -p "$work/knot"
  cat >"$work/knot/knot.conf" <<CONF
server:
    rundir: "$work/knot"
    listen: 127.0.0.1@$kport
    udp-workers: $cores
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$work/knot"
template:
  - id: default
    storage: "$work"
    dnssec-signing: off
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: bench.example.
    file: zone.db
CONF
  knotd -c "$work/knot/knot.conf" 2>"$work/knot.err" &
  pids+=($!)
  wait_dns "$kport"

  # BIND 9: the same signed zone as a primary, no recursion, no query log,
  # minimal responses, one worker thread per core (-n).
  bport=$(free_port udp)
  mkdir -p "$work/bind"
  cp "$work/zone.db" "$work/bind/zone.db"
  cat >"$work/bind/named.conf" <<CONF
options {
    directory "$work/bind";
    listen-on port $bport { 127.0.0.1; };
    listen-on-v6 { none; };
    pid-file none;
    recursion no;
    querylog no;
    minimal-responses yes;
    dnssec-validation no;
    notify no;
};
logging { category default { null; }; category queries { null; }; };
controls { };
zone "bench.example" { type primary; file "$work/bind/zone.db"; };
CONF
  named -g -n "$cores" -c "$work/bind/named.conf" -u "$(id -un)" >"$work/bind.err" 2>&1 &
  pids+=($!)
  wait_dns "$bport"
  servers+=(knot bind)
  ports+=("$kport" "$bport")
fi

echo "zone: $numbers numbers, $(grep -c . "$work/zone.db") records ($(sed -n 's/^signed .*: \(.*\)$/\1/p' "$work/phonexd.err")); dnsperf -D -c $clients -T 1 -l $secs; servers take turns, $rounds rounds, best kept; $cores cores shared with dnsperf"
# The servers take turns round by round (all are started, the idle ones
# use no CPU), so that load from elsewhere on the machine falls on each
# alike.
declare -A top
for r in $(seq "$rounds"); do
  for i in "${!servers[@]}"; do
    q=$(perf "${ports[$i]}")
    echo "round $r: ${servers[$i]} $q" >&2
    top[${servers[$i]}]=$(best "$q" "${top[${servers[$i]}]:-0}")
  done
done
echo
echo "| server | settings | answers/s |"
echo "|---|---|---|"
printf '| phonexd (dnszone) | GOMAXPROCS=%s, one UDP reader per core, answers signed ahead of time | %.0f |\n' "$cores" "${top[phonexd]}"
[ -n "${PHONEXD_ONLY:-}" ] && exit 0
printf '| Knot DNS %s | udp-workers: %s, tcp-workers: 1, dnssec-signing: off (pre-signed zone), no query log | %.0f |\n' "$(knotd -V | sed -n 's/.*version //p')" "$cores" "${top[knot]}"
printf '| BIND %s | -n %s (worker threads), recursion no, querylog no, minimal-responses yes | %.0f |\n' "$(named -v | awk '{print $2}')" "$cores" "${top[bind]}"
ours=${top[phonexd]}; knot=${top[knot]}; bind=${top[bind]}
echo
awk -v o="$ours" -v k="$knot" -v b="$bind" 'BEGIN{
  printf "phonexd / BIND: %.2f (goal >= 1)\nphonexd / Knot: %.2f (goal >= 0.5)\n", o/b, o/k }'
