#!/usr/bin/env bash
# Presence fan-out on this machine, in one run:
#  - phonexd with 2000 registered watcher devices, each on its own TLS
#    connection with its device certificate: memory per subscription with
#    10,000 subscriptions (RSS growth of the node), and the time from one
#    PUBLISH to the NOTIFY at the last of 1000 and of 2000 watchers;
#  - as the reference, Kamailio's presence server (presence, presence_xml
#    with force_active, subscriptions in memory; -m 1024) with SIPp
#    watchers over UDP, the same 10,000 subscriptions (shared memory growth)
#    and the same fan-outs.
# Prints Markdown rows and the ratios. Needs kamailio,
# kamailio-presence-modules and sip-tester; it installs them with apt-get
# when missing (as root).
#
# Environment: KAM_CHILDREN (UDP workers, default 4), KAM_SHM_MB (default
# 1024), KAM_PKG_MB (default 64), ROUNDS (default 9), PHONEXD_ONLY.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-9}
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
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. bench/lib/ports.sh

go build -o "$work/phonexd" ./cmd/phonexd
go build -o "$work/presence" ./bench/presence
ulimit -n 8192 2>/dev/null || true

echo "| measure | value |"
echo "|---|---|"
"$work/phonexd" init --data "$work/data" --domain bench.test --host 127.0.0.1 >/dev/null
"$work/phonexd" serve --data "$work/data" --api-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
track $pid
for _ in $(seq 100); do grep -q '^sip:' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
sip=$(sed -n 's#^sip: sips:\([^ ]*\).*#\1#p' "$work/serve.out")
"$work/presence" -sip "$sip" -data "$work/data" -pid "$pid" -rounds "$rounds" | tee "$work/phonexd.rows"
stop $pid
[ -n "${PHONEXD_ONLY:-}" ] && exit 0

for pkg in kamailio:kamailio sipp:sip-tester; do
  command -v "${pkg%%:*}" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg#*:}" >/dev/null; }
done
mpath=$(dirname "$(find /usr/lib -name presence_xml.so -path '*kamailio*' 2>/dev/null | head -1)")
if [ -z "$mpath" ] || [ "$mpath" = . ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kamailio-presence-modules >/dev/null
  mpath=$(dirname "$(find /usr/lib -name presence_xml.so -path '*kamailio*' | head -1)")
fi
children=${KAM_CHILDREN:-4}
shm=${KAM_SHM_MB:-1024}
pkg=${KAM_PKG_MB:-64}
port=$(free_port udp)
cp -r /usr/share/kamailio/dbtext/kamailio "$work/db"
sed -e "s#@PORT@#$port#g; s#@MPATH@#$mpath/#; s#@DB@#$work/db#; s#@CHILDREN@#$children#" bench/kamailio/presence.cfg >"$work/k.cfg"
printf 'loadmodule "ctl.so"\nmodparam("ctl", "binrpc", "unix:%s/k.ctl")\n' "$work" >>"$work/k.cfg"
# ctl's module line must come before the routing block: move the route last.
python3 - "$work/k.cfg" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
i = s.index("request_route")
j = s.index('loadmodule "ctl.so"')
open(p, "w").write(s[:i] + s[j:] + s[i:j])
PY
kamailio -f "$work/k.cfg" -m "$shm" -M "$pkg" -DD -E >"$work/k.log" 2>&1 &
track $!
for _ in $(seq 100); do [ -S "$work/k.ctl" ] && break; sleep 0.1; done
shm_used() { kamcmd -s "unix:$work/k.ctl" core.shmmem | awk '$1 == "used:" {print $2; exit}'; }
sleep 1
before=$(shm_used)
# SIPp watchers: 1000 of "half", 2000 of "star", 7000 of "rest".
i=0
for spec in half:1000 star:2000 rest:7000; do
  t=${spec%%:*} n=${spec#*:}
  sport=$(free_port udp)
  sipp -sf bench/sipp/presence_watcher.xml "127.0.0.1:$port" -s "$t" -t u1 -p "$sport" -m "$n" -r 1000 -l "$n" \
    -buff_size 4194304 -trace_logs -log_file "$work/$t.log" -nostdin -nd >"$work/sipp-$t.out" 2>&1 &
  track $!
  i=$((i + 1))
done
for spec in half:1000 star:2000 rest:7000; do
  t=${spec%%:*} n=${spec#*:}
  for _ in $(seq 600); do
    got=$(grep -c '^notify' "$work/$t.log" 2>/dev/null) || got=0
    [ "$got" -ge "$n" ] && break
    sleep 0.1
  done
done
# Transactions of the first NOTIFYs are gone after tm's wait timer (5 s).
sleep 8
after=$(shm_used)
echo "| Kamailio settings | presence + presence_xml (force_active=1), subs_db_mode=0 (subscriptions in memory), publ_cache=1, shared memory ${shm} MB (-m), private ${pkg} MB (-M), children=${children}, UDP, no auth, no TLS; watchers: SIPp over UDP |"
python3 -c "print('| Kamailio: shared memory per subscription (10000 subscriptions, core.shmmem growth) | %.0f B |' % (($after - $before) / 10000))"
"$work/presence" -kamailio "127.0.0.1:$port" -rounds "$rounds" -sipp-log "half=$work/half.log:1000" -sipp-log "star=$work/star.log:2000" | tee "$work/kam.rows"
python3 - "$work/phonexd.rows" "$work/kam.rows" <<'PY'
import re, sys
def ms(path):
    out = {}
    for line in open(path):
        m = re.search(r"last of (\d+) .*\| ([0-9.]+) ms", line)
        if m:
            out[int(m.group(1))] = float(m.group(2))
    return out
p, k = ms(sys.argv[1]), ms(sys.argv[2])
for n in sorted(p):
    if n in k:
        print("| fan-out to %d watchers, phonexd time / Kamailio time | %.2f |" % (n, p[n] / k[n]))
PY
