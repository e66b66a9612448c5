#!/usr/bin/env bash
# TURN relay on this machine, in one run: phonexd's relay (phonexd relay,
# with its credential check and its allocation and bandwidth quotas running
# but set not to limit) and coturn, the reference, with the same shared
# secret (use-auth-secret), the same load generator (bench/turnload) and
# the same offered rates. Prints a Markdown table and the ratio.
#
# 1. Throughput: 8 pairs of TURN clients, each client sending ChannelData
#    to its partner's relayed address (as the two ends of a relayed call);
#    offered rates are swept, and a relay's figure is the best received
#    rate (datagrams per second that crossed the relay) with at most 1%
#    lost. ROUNDS sweeps per relay, alternating (default 2); the best counts.
# 2. Relayed calls, on the node (phonexd serve with its relay, API and SIP
#    in one process) and on coturn: N pairs at 50 packets per second each way, 100-byte
#    datagrams (an SRTP Opus packet); N steps up; for each step the relay's
#    RSS above its idle RSS and its CPU share, per call; the most calls
#    carried (at most 1% lost, and the generator kept up with the offered
#    rate), and the number the relay's CPU alone would allow.
#
# Environment: COTURN_THREADS (relay-threads, default: number of CPUs),
# RATES, CALLS, STEP_SECONDS (default 4), ROUNDS. Needs coturn (installed
# with apt-get when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v turnserver >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn >/dev/null; }
. bench/lib/scratch.sh

cpus=$(nproc)
threads=${COTURN_THREADS:-$cpus}
rates=${RATES:-10000,20000,30000,40000,50000,60000,70000,80000,100000,120000}
calls=${CALLS:-50,100,200,400,800,1200,1600}
secs=${STEP_SECONDS:-4}
rounds=${ROUNDS:-2}
ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null || true

go build -o "$work/phonexd" ./cmd/phonexd
go build -o "$work/turnload" ./bench/turnload
"$work/phonexd" init --data "$work/data" --domain bench.test --host 127.0.0.1 >/dev/null
# Quotas: checked on every datagram, set so that they do not limit.
sed -i 's/^log_level = .*/log_level = warn/;
  s/^relay_max_allocations = .*/relay_max_allocations = 100000/;
  s/^relay_allocation_rate = .*/relay_allocation_rate = 1000000000/;
  s/^relay_user_rate = .*/relay_user_rate = 1000000000/;
  s/^relay_min_port = .*/relay_min_port = 20000/; s/^relay_max_port = .*/relay_max_port = 29999/' "$work/data/phonexd.conf"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/data/relay.secret"
secret=$(cat "$work/data/relay.secret")

pport=$(free_port udp)
"$work/phonexd" relay --data "$work/data" --relay-addr "127.0.0.1:$pport" --relay-tls-addr off >"$work/relay.out" 2>"$work/relay.err" &
ppid=$!; pids+=($ppid)
for _ in $(seq 50); do grep -q '^relay:' "$work/relay.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^relay:' "$work/relay.out" || { cat "$work/relay.err" >&2; exit 1; }

# The node itself (API, SIP and the relay in one process, the collector at
# Go's default), for the per-call figures "on the node".
nport=$(free_port udp)
"$work/phonexd" serve --data "$work/data" --api-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 --sip-phone-addr off \
  --relay-addr "127.0.0.1:$nport" --relay-tls-addr off >"$work/serve.out" 2>"$work/serve.err" &
npid=$!; pids+=($npid)
for _ in $(seq 100); do grep -q '^relay:' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
grep -q "^relay: udp 127.0.0.1:$nport" "$work/serve.out" || { cat "$work/serve.out" "$work/serve.err" >&2; exit 1; }

cport=$(free_port udp)
mkdir -p "$work/coturn"
# coturn for its best figure: relay-threads = CPUs (COTURN_THREADS to
# change), no logging (log file /dev/null, no stdout log), no CLI, no TLS
# or DTLS listeners, no TCP relay, REST credentials from the static secret
# (no database lookups), no per-user or total quota, no bandwidth cap.
cat >"$work/coturn/turnserver.conf" <<CONF
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$cport
min-port=30000
max-port=39999
realm=bench.test
use-auth-secret
static-auth-secret=$secret
relay-threads=$threads
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
pidfile=$work/coturn/turnserver.pid
userdb=$work/coturn/turndb
CONF
turnserver -c "$work/coturn/turnserver.conf" >/dev/null 2>&1 &
cpid=$!; pids+=($cpid)
sleep 1
kill -0 $cpid 2>/dev/null || { echo "turnserver did not start" >&2; exit 1; }

load() { # name port pid args...
  local name=$1 port=$2 pid=$3; shift 3
  "$work/turnload" -server "127.0.0.1:$port" -realm bench.test -secret-file "$work/data/relay.secret" -pid "$pid" -duration "${secs}s" "$@" \
    2> >(sed "s/^/$name /" >&2)
}
for r in $(seq "$rounds"); do
  load phonexd "$pport" $ppid -mode rate -pairs 8 -rates "$rates" >>"$work/rate.phonexd"
  load coturn "$cport" $cpid -mode rate -pairs 8 -rates "$rates" >>"$work/rate.coturn"
done
load phonexd "$nport" $npid -mode calls -calls "$calls" >"$work/calls.phonexd"
load coturn "$cport" $cpid -mode calls -calls "$calls" >"$work/calls.coturn"

version=$(turnserver --version 2>/dev/null | head -1)
python3 - "$work" "$cpus" "$threads" "$version" "$(go env GOVERSION)" <<'PY'
import json, sys, os, datetime
work, cpus, threads, version, gov = sys.argv[1:]
def rows(f):
    return [json.loads(l) for l in open(os.path.join(work, f)) if l.strip()]
def best(rs):
    ok = [r for r in rs if r["loss"] <= 0.01]
    return max(ok, key=lambda r: r["received_pps"]) if ok else None
def carried(r):
    # Every call got its packets: at most 1% lost in the relay, and the
    # generator sent at least 95% of the offered rate (beyond that the
    # load generator, on the same two cores, is what limits).
    return r["loss"] <= 0.01 and r["sent"] >= 0.95 * r["offered_pps"] * r["seconds"]
def calls(rs):
    ok = [r for r in rs if carried(r)]
    return max(ok, key=lambda r: r["pairs"]) if ok else None
pr, cr = best(rows("rate.phonexd")), best(rows("rate.coturn"))
pc, cc = calls(rows("calls.phonexd")), calls(rows("calls.coturn"))
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d at %H:%M UTC")
print(f"Run on {now} with `bash bench/turn.sh` ({cpus} cores, {gov}, coturn {version}):\n")
print("| measure | phonexd | coturn |")
print("|---|---|---|")
def f(r, k, fmt="{:.0f}"):
    return fmt.format(r[k]) if r else "n/a"
print(f"| relayed datagrams per second, best with <= 1% lost (8 pairs, 100-byte ChannelData both ways) | {f(pr,'received_pps')} | {f(cr,'received_pps')} |")
print(f"| relay CPU time per relayed datagram at that rate | {f(pr,'relay_cpu_us_per_packet','{:.1f} µs')} | {f(cr,'relay_cpu_us_per_packet','{:.1f} µs')} |")
def per_call(rs):
    # Memory: the slope of the relay's RSS over the calls steps it carried
    # with <= 1% lost (first to last), so the idle process does not count.
    # CPU: its CPU time per datagram at the largest such step, times the
    # 100 datagrams per second a call at 50 pkt/s each way makes.
    ok = [r for r in rs if r["loss"] <= 0.01]
    if not ok: return "n/a", "n/a", "n/a"
    lo, hi = ok[0], ok[-1]
    mem = f"{(hi['relay_rss_kib']-lo['relay_rss_kib'])/(hi['pairs']-lo['pairs']):.1f} KiB" if hi["pairs"] > lo["pairs"] else "n/a"
    share = hi["relay_cpu_us_per_packet"] * 100 / 1e6
    m = calls(rs)
    measured = f"{m['pairs']} measured" if m else "none measured"
    return (mem, f"{100*share:.3f}% of a core ({hi['relay_cpu_us_per_packet']:.1f} µs x 100 datagrams/s, at {hi['pairs']} calls)",
            f"{measured}; {int(float(cpus)/share)} by CPU ({cpus} cores / CPU per call)")
p1, p2, p3 = per_call(rows("calls.phonexd")); c1, c2, c3 = per_call(rows("calls.coturn"))
print(f"| memory per relayed call (RSS growth per call across the calls steps carried) | {p1} | {c1} |")
print(f"| CPU per relayed call (50 pkt/s each way) | {p2} | {c2} |")
print(f"| relayed calls at once, every call at 50 pkt/s each way with <= 1% lost: measured with the load generator on the same cores, and the relay's CPU limit | {p3} | {c3} |")
print(f"| settings | throughput: `phonexd relay` (GOGC=400); calls: the relay inside `phonexd serve` (API and SIP listening, Go's default GOGC); {cpus} UDP readers (SO_REUSEPORT), quotas checked on every datagram (set not to limit), log level warn | relay-threads={threads}, no log, no CLI, no TLS/DTLS, no TCP relay, REST secret (no database), no quotas |")
if pr and cr:
    print(f"\nratio phonexd / coturn (throughput): {pr['received_pps']/cr['received_pps']:.2f}")
    print(f"CPU-cost ratio coturn / phonexd (above 1: phonexd cheaper per datagram): {cr['relay_cpu_us_per_packet']/pr['relay_cpu_us_per_packet']:.2f}")
print("\nSteps (relay, mode, pairs, offered/s, sent/s, received/s, loss, relay CPU µs per datagram, RSS KiB):")
for name in ("phonexd", "coturn"):
    for f_ in ("rate", "calls"):
        for r in rows(f"{f_}.{name}"):
            print(f"    {name} {r['mode']} {r['pairs']} {r['offered_pps']:.0f} {r['sent']/r['seconds']:.0f} {r['received_pps']:.0f} {100*r['loss']:.2f}% {r.get('relay_cpu_us_per_packet',0):.1f} {r.get('relay_rss_kib',0)}")
PY
