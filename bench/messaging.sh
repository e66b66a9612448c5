#!/usr/bin/env bash
# Messaging relay on this machine, in one run: phonexd (mutual TLS, contact
# checks, durable storage, delivery to registered devices) and, as the
# reference, Kamailio relaying MESSAGEs from SIPp (UDP, no auth, no storage).
# Prints a Markdown table and the ratio. Needs kamailio and sip-tester; it
# installs them with apt-get when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
for pkg in kamailio:kamailio sipp:sip-tester; do
  command -v "${pkg%%:*}" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg#*:}" >/dev/null; }
done
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# phonexd, with the per-account rate limit raised so that it measures the
# relay, not the limiter (the check itself still runs on every MESSAGE).
go build -o "$work/phonexd" ./cmd/phonexd
"$work/phonexd" init --data "$work/data" --domain bench.test --host 127.0.0.1 >/dev/null
sed -i 's/^message_rate = .*/message_rate = 1000000/; s/^message_burst = .*/message_burst = 1000000/' "$work/data/phonexd.conf"
sed -i 's/^log_level = .*/log_level = warn/' "$work/data/phonexd.conf"
# The relay bench enrolls its devices with a cheap KDF (log_n 14) to start fast.
sed -i 's/^kdf_min_log_n = .*/kdf_min_log_n = 14/' "$work/data/phonexd.conf"
ulimit -n 8192 2>/dev/null || true
"$work/phonexd" serve --data "$work/data" --api-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^sip:' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
api=$(sed -n 's#^api: https://\([^ ]*\).*#\1#p' "$work/serve.out")
sip=$(sed -n 's#^sip: sips:\([^ ]*\).*#\1#p' "$work/serve.out")
echo "## Messaging relay ($(nproc) cores, $(go version | cut -d' ' -f3), $(kamailio -v 2>/dev/null | head -1 | cut -d' ' -f1-3), SIPp $(sipp -v 2>/dev/null | grep -o 'v[0-9.]*' | head -1))"
echo
echo "| measure | value |"
echo "|---|---|"
go run ./bench/relay -api "$api" -sip "$sip" -data "$work/data" "$@" | tee "$work/relay.out" | grep -v '^RATE'
ours=$(sed -n 's/^RATE //p' "$work/relay.out")
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

# Kamailio with SIPp: a sink registers, a source sends MESSAGEs through it.
kport=$(free_port); sink=$(free_port); src=$(free_port); regp=$(free_port)
mpath=$(dirname "$(find /usr/lib -name tm.so -path '*kamailio*' | head -1)")/
sed "s#@PORT@#$kport#; s#@MPATH@#$mpath#" bench/kamailio/kamailio.cfg >"$work/kamailio.cfg"
kamailio -f "$work/kamailio.cfg" -DD -E -w "$work" >"$work/kam.log" 2>&1 &
pids+=($!)
sleep 1
cp bench/sipp/*.xml "$work/"
sed "s/@PORT@/$sink/" bench/sipp/sink.csv >"$work/sink.csv"
(cd "$work" && sipp -sf msg_uas.xml -i 127.0.0.1 -p "$sink" -nostdin >/dev/null 2>&1) &
pids+=($!)
(cd "$work" && sipp -sf reg.xml -s sink -inf sink.csv -i 127.0.0.1 -p "$regp" "127.0.0.1:$kport" -m 1 -nostdin -timeout 10s >/dev/null 2>&1)
# Sweep the offered rate; Kamailio's figure is the best rate at which at
# least 99% of MESSAGEs got their 200 (the SIPp source and sink share the
# machine, as phonexd's test clients do).
best=0; bestok=0
for r in ${KAMAILIO_RATES:-250 500 750 1000 1500 2000 3000}; do
  rm -f "$work"/msg_uac_*_screen.log
  start=$(date +%s.%N)
  (cd "$work" && sipp -sf msg_uac.xml -s sink -i 127.0.0.1 -p "$src" "127.0.0.1:$kport" -r "$r" -m $((r*5)) -l 5000 \
     -nostdin -timeout 60s -trace_screen >/dev/null 2>&1) || true
  end=$(date +%s.%N)
  ok=$(grep 'Successful call' "$work"/msg_uac_*_screen.log | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  bad=$(grep 'Failed call' "$work"/msg_uac_*_screen.log | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  rate=$(awk -v n="${ok:-0}" -v s="$start" -v e="$end" 'BEGIN{printf "%.0f", n/(e-s)}')
  echo "  Kamailio at offered $r/s: $ok ok, $bad failed, $rate/s" >&2
  if [ "${bad:-1}" -le $(( (ok + bad) / 100 )) ] && [ "$rate" -gt "$best" ]; then best=$rate; bestok=$ok; fi
done
kam=$best
echo "| Kamailio (UDP, stateful t_relay, no auth, no storage): MESSAGEs relayed per second from SIPp, best rate with >= 99% answered 200 | $kam |"
awk -v a="$ours" -v b="$kam" 'BEGIN{ if (b > 0) printf "| ratio phonexd / Kamailio | %.2f |\n", a/b; else print "| ratio phonexd / Kamailio | Kamailio run failed |" }'
