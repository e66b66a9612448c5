#!/usr/bin/env bash
# Messaging relay on this machine, in one run: phonexd (mutual TLS, contact
# checks, delivery to registered devices in order, each MESSAGE durable
# before the sender's 200: taken by the online, idle receiver before it, or
# stored) and, as the
# reference, Kamailio relaying MESSAGEs between SIPp processes over UDP
# and over TCP (no auth, no storage, no TLS), plus SIPp talking to itself
# with no proxy in between, which is the ceiling of the load generator.
# Prints a Markdown table and both ratios. Needs kamailio and sip-tester; it
# installs them with apt-get when missing (as root).
#
# Environment: KAM_CHILDREN (UDP workers, default 4), KAM_TCP_CHILDREN
# (default 4), KAM_SHM_MB (default 4096), KAM_PKG_MB (default 64),
# SIPP_STREAMS (SIPp sources and sinks, each on its own socket, that share
# the offered rate; default 4; Kamailio-TCP also runs with one),
# UDP_RATES and TCP_RATES (offered MESSAGEs/s to sweep), SWEEP_SECONDS
# (length of each step, default 5), PHONEXD_ONLY, PHONEXD_BIN, PAIRS (the
# numbers of sender/receiver device pairs phonexd is measured with, default
# "20 40 60": each device has one MESSAGE in flight, so with few devices the
# rate is bound by the store's commit latency rather than by the node; the
# best run without a failed send counts, as Kamailio's best step does).
# Arguments go to bench/relay (e.g. -duration).
set -euo pipefail
cd "$(dirname "$0")/.."
for pkg in kamailio:kamailio sipp:sip-tester; do
  command -v "${pkg%%:*}" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg#*:}" >/dev/null; }
done
work=$(mktemp -d)
# Every background process is started with exec (directly or in its
# subshell), so the recorded pid is the real process, not a wrapper shell.
# The pids go to a file because the Kamailio runs happen in subshells,
# whose variables the EXIT trap would not see.
track() { echo "$1" >>"$work/pids"; }
stop() {
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do
    wait "$p" 2>/dev/null || true # reaps our own children
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

children=${KAM_CHILDREN:-4}
tcp_children=${KAM_TCP_CHILDREN:-4}
shm=${KAM_SHM_MB:-4096}
pkg=${KAM_PKG_MB:-64}
secs=${SWEEP_SECONDS:-5}

# phonexd, with the per-account rate limit raised so that it measures the
# relay, not the limiter (the check itself still runs on every MESSAGE).
# PHONEXD_BIN: a phonexd built elsewhere (another commit), to compare
# builds in alternating runs on the same load generator.
if [ -n "${PHONEXD_BIN:-}" ]; then cp "$PHONEXD_BIN" "$work/phonexd"; else go build -o "$work/phonexd" ./cmd/phonexd; fi
go build -o "$work/relay" ./bench/relay
"$work/phonexd" init --data "$work/data" --domain bench.test --host 127.0.0.1 >/dev/null
sed -i 's/^message_rate = .*/message_rate = 1000000/; s/^message_burst = .*/message_burst = 1000000/' "$work/data/phonexd.conf"
sed -i 's/^log_level = .*/log_level = warn/' "$work/data/phonexd.conf"
# Every bench device connects from 127.0.0.1: lift the per-source cap (200
# by default, against one hostile address) above the sweep's connections.
sed -i 's/^sip_max_connections_per_source = .*/sip_max_connections_per_source = 2000/' "$work/data/phonexd.conf"
# The relay bench enrolls its devices with a cheap KDF (log_n 14) to start fast.
sed -i 's/^kdf_min_log_n = .*/kdf_min_log_n = 14/' "$work/data/phonexd.conf"
ulimit -n 8192 2>/dev/null || true
"$work/phonexd" serve --data "$work/data" --api-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
phonexd=$!; track $phonexd
for _ in $(seq 100); do grep -q '^sip:' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
api=$(sed -n 's#^api: https://\([^ ]*\).*#\1#p' "$work/serve.out")
sip=$(sed -n 's#^sip: sips:\([^ ]*\).*#\1#p' "$work/serve.out")
echo "## Messaging relay ($(nproc) cores, $(go version | cut -d' ' -f3), $(kamailio -v 2>/dev/null | head -1 | cut -d' ' -f1-3), SIPp $(sipp -v 2>/dev/null | grep -o 'v[0-9.]*' | head -1))"
echo
echo "| measure | value |"
echo "|---|---|"
ours=0 ours_cpu=0 best= runs=
for n in ${PAIRS:-20 40 60}; do
  "$work/relay" -api "$api" -sip "$sip" -data "$work/data" -pid "$phonexd" -pairs "$n" -prefix "p$n" "$@" >"$work/relay-$n.out"
  r=$(sed -n 's/^RATE //p' "$work/relay-$n.out"); c=$(sed -n 's/^CPU //p' "$work/relay-$n.out")
  if grep -q '^| phonexd: refused or failed' "$work/relay-$n.out"; then
    runs="$runs, $n pairs ${r:-0}/s with failed sends (not counted)"
    continue
  fi
  runs="$runs, $n pairs ${r:-0}/s at ${c:-?} µs"
  if awk -v a="${r:-0}" -v b="$ours" 'BEGIN{exit !(a > b)}'; then ours=${r:-0} ours_cpu=${c:-0} best=$n; fi
done
if [ -n "$best" ]; then
  grep -v '^RATE\|^CPU\|^GEN\|^NODESHARE' "$work/relay-$best.out"
else
  echo "| phonexd: no run without failed sends | |"
fi
echo "| phonexd: runs by device pairs (the best counts) | ${runs#, } |"
stop $phonexd
# PHONEXD_ONLY=1 measures phonexd alone (for iterating on the relay).
[ -n "${PHONEXD_ONLY:-}" ] && exit 0

cp bench/sipp/*.xml "$work/"
mpath=$(dirname "$(find /usr/lib -name tm.so -path '*kamailio*' | head -1)")/

# pid_ticks PID: CPU clock ticks (1/100 s) used so far by one process.
pid_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# kam_ticks: CPU clock ticks (1/100 s) used so far by all Kamailio processes.
kam_ticks() {
  local p t=0
  for p in $(pgrep -f "kamailio -f $work/kamailio.cfg" || true); do
    t=$((t + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

# sweep TRANSPORT RATES...: $streams SIPp sources, each on its own socket,
# send MESSAGEs for their sinks (the i-th to services[i] at targets[i]),
# sharing each offered rate, for $secs seconds per rate, and it prints the
# best achieved rate (the sum of the sources') at which at least 99% got
# their 200. A source's achieved rate is from SIPp's own statistics, once a
# second: 200s received while it was still sending over the time it had
# been sending, so a straggler's retransmissions after the end do not count
# against the run and answers that lag behind do. It stops after two steps
# in a row achieve less than 90% of what was offered or fail more than 1%:
# past the ceiling (one such step alone may be the shared machine's noise).
# With Kamailio running it also prints Kamailio's CPU time per MESSAGE at
# that best step, and the SIPp processes' (sources and sinks).
sweep() {
  local tr=$1 enough=${ENOUGH:-0}; shift
  local best=0 bestcpu=0 bestgen=0 misses=0 r per i ok bad rate cpu k0 k1 kcpu s0 s1 gen p pids
  for r in "$@"; do
    per=$(( (r + streams - 1) / streams ))
    rm -f "$work"/msg_uac_*_.csv "$work"/cpu.*
    k0=$(kam_ticks); s0=0; for p in "${sink_pids[@]}"; do s0=$((s0 + $(pid_ticks "$p"))); done
    pids=()
    for i in $(seq 0 $((streams - 1))); do
      # A transaction not answered within 5 s fails (over TCP SIPp does not
      # retransmit), and a SIPp that still hangs is stopped.
      # timeout leads its own process group and passes a signal on to it,
      # so stopping it stops time and SIPp too.
      (cd "$work" && exec timeout -k 3 $((secs * 3 + 10)) /usr/bin/time -f '%P %U %S' -o "$work/cpu.$i" sipp -sf msg_uac.xml -s "${services[$i]}" -t "$tr" \
         -i 127.0.0.1 -p "$(free_port)" "${targets[$i]}" -r "$per" -m $((per * secs)) -l 20000 -buff_size 4194304 -recv_timeout 5000 -nostdin \
         -trace_stat -fd 1 >/dev/null 2>&1) &
      track $!; pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    k1=$(kam_ticks); s1=0; for p in "${sink_pids[@]}"; do s1=$((s1 + $(pid_ticks "$p"))); done
    # Columns: 1 StartTime, 3 CurrentTime (date, time, epoch separated by
    # tabs), 12 OutgoingCall(C), 16 SuccessfulCall(C). Calls sent but not
    # answered by the end count as failed. Summed over the sources.
    read -r ok bad rate < <(for f in "$work"/msg_uac_*_.csv; do
        awk -F';' -v total=$((per * secs)) 'NR > 1 {
          n = split($1, a, "\t"); t0 = a[n]; n = split($3, b, "\t"); t = b[n]
          if ($12 + 0 < total && t > t0) rate = $16 / (t - t0)
          ok = $16; bad = $12 - $16
        } END { printf "%d %d %.0f\n", ok, bad, rate }' "$f" 2>/dev/null
      done | awk '{ ok += $1; bad += $2; rate += $3 } END { printf "%d %d %.0f\n", ok, bad, rate }')
    ok=${ok:-0}; bad=${bad:-0}; rate=${rate:-0}
    read -r cpu gen < <(for f in "$work"/cpu.*; do tail -1 "$f"; done | awk -v ok="$ok" -v sink=$((s1 - s0)) \
      '{ sub(/%/, "", $1); p += $1; u += $2 + $3 } END { printf "%d%% %d\n", p, (ok > 0 ? (u + sink / 100) * 1e6 / ok : 0) }')
    kcpu=$(( ok > 0 ? (k1 - k0) * 10000 / ok : 0 ))
    echo "  $label at offered $((per * streams))/s: $ok ok, $bad failed, $rate/s, SIPp sources CPU $cpu, SIPp sources and sinks ${gen} µs/MESSAGE$( [ "$kcpu" -gt 0 ] && echo ", Kamailio CPU ${kcpu} µs/MESSAGE")" >&2
    if [ "$bad" -le $(( (ok + bad) / 100 )) ] && [ "$ok" -gt 0 ]; then
      [ "$rate" -gt "$best" ] && { best=$rate; bestcpu=$kcpu; bestgen=$gen; }
    fi
    # ENOUGH: a rate past which the sweep has shown what it is for.
    [ "$enough" -gt 0 ] && [ "$best" -gt "$enough" ] && break
    if [ "$bad" -gt $(( (ok + bad) / 100 )) ] || [ "$rate" -lt $(( r * 9 / 10 )) ]; then
      misses=$((misses + 1))
      [ "$misses" -ge 2 ] && break
    else
      misses=0
    fi
  done
  echo "$best $bestcpu $bestgen"
}

# run_pair TRANSPORT WITH_KAMAILIO RATES...: starts $streams SIPp sinks on
# TRANSPORT, and Kamailio when asked (sink i registers there as "sink$i"),
# sweeps, stops them, and prints the best rate.
run_pair() {
  local tr=$1 kam=$2; shift 2
  local kport port i own=()
  targets=() services=() sink_pids=()
  local ports=()
  for i in $(seq 0 $((streams - 1))); do
    port=$(free_port); ports+=("$port")
    sed "s/@PORT@/$port/" bench/sipp/sink.csv >"$work/sink$i.csv"
    (cd "$work" && exec sipp -sf msg_uas.xml -t "$tr" -i 127.0.0.1 -p "$port" -buff_size 4194304 -nostdin >/dev/null 2>&1) &
    own+=($!); track $!; sink_pids+=($!)
    targets+=("127.0.0.1:$port"); services+=("sink$i")
  done
  if [ "$kam" = yes ]; then
    kport=$(free_port)
    sed "s#@PORT@#$kport#; s#@MPATH@#$mpath#; s#@CHILDREN@#$children#; s#@TCP_CHILDREN@#$tcp_children#" \
      bench/kamailio/kamailio.cfg >"$work/kamailio.cfg"
    kamailio -f "$work/kamailio.cfg" -m "$shm" -M "$pkg" -DD -E -w "$work" >"$work/kam.log" 2>&1 &
    own+=($!); track $!
    for _ in $(seq 50); do grep -q 'tcp: 127.0.0.1' "$work/kam.log" 2>/dev/null && break; sleep 0.1; done
    sleep 0.5
    for i in $(seq 0 $((streams - 1))); do
      (cd "$work" && exec sipp -sf reg.xml -s "sink$i" -t "$tr" -inf "sink$i.csv" -i 127.0.0.1 -p "$(free_port)" "127.0.0.1:$kport" \
        -m 1 -nostdin -timeout 10s >/dev/null 2>&1) || { echo "  registration at Kamailio failed" >&2; cat "$work/kam.log" >&2; }
      targets[$i]=127.0.0.1:$kport
    done
  else
    sleep 0.3
  fi
  sweep "$tr" "$@"
  stop "${own[@]}"
}

udp_rates=${UDP_RATES:-1000 2000 4000 5000 6000 7000 8000 10000 12000 14000 16000 20000 24000}
tcp_rates=${TCP_RATES:-2000 4000 6000 8000 10000 12000 14000 16000 20000 24000}
# Each run goes in the background and the script waits for it, so that an
# interrupt reaches the EXIT trap at once rather than after the run.
pair() {
  local out=$1; shift
  run_pair "$@" >"$work/$out" &
  track $!
  wait $!
}
# Kamailio over TCP serves a connection's requests one at a time in one of
# its TCP workers, so with one connection each way its TCP rate is bound
# by one worker, not by the machine; its users spread load over many
# connections. So TCP runs both with one SIPp stream (one connection each
# way) and with SIPP_STREAMS (default 4, as many as tcp_children) sources
# and sinks, each on its own connection, and the better counts. UDP and
# SIPp alone use SIPP_STREAMS too, so the single-threaded SIPp is not the
# bound.
many=${SIPP_STREAMS:-4}
streams=$many; label="Kamailio UDP"; pair kam_udp u1 yes $udp_rates; read -r kam_udp kam_udp_cpu _ <"$work/kam_udp"
streams=1; label="Kamailio TCP, 1 connection each way"; pair kam_tcp1 t1 yes $tcp_rates 28000 32000 40000; read -r kam_tcp1 kam_tcp1_cpu kam_tcp1_gen <"$work/kam_tcp1"
streams=$many; label="Kamailio TCP, $many connections each way"; pair kam_tcpn t1 yes $tcp_rates 28000 32000 40000; read -r kam_tcpn kam_tcpn_cpu kam_tcpn_gen <"$work/kam_tcpn"
if [ "$kam_tcpn" -ge "$kam_tcp1" ]; then kam_tcp=$kam_tcpn kam_tcp_cpu=$kam_tcpn_cpu kam_tcp_gen=$kam_tcpn_gen; else kam_tcp=$kam_tcp1 kam_tcp_cpu=$kam_tcp1_cpu kam_tcp_gen=$kam_tcp1_gen; fi
# SIPp alone only needs to show whether it goes clearly past Kamailio.
label="SIPp alone UDP"; ENOUGH=$((kam_udp * 3 / 2)) pair sipp_udp u1 no $udp_rates 28000 32000 40000; read -r sipp_udp _ <"$work/sipp_udp"
label="SIPp alone TCP"; ENOUGH=$((kam_tcp * 3 / 2)) pair sipp_tcp t1 no $tcp_rates 28000 32000 40000 48000; read -r sipp_tcp _ <"$work/sipp_tcp"

settings="shared memory ${shm} MB (-m), private ${pkg} MB per process (-M), children=${children} (UDP workers), tcp_children=${tcp_children}, stateful t_relay, no auth, no storage, no TLS"
echo "| Kamailio settings | $settings |"
echo "| Kamailio over UDP ($many SIPp sources and sinks): MESSAGEs relayed per second, best with >= 99% answered 200 | $kam_udp |"
echo "| Kamailio over TCP, one SIPp connection each way: MESSAGEs relayed per second, best with >= 99% answered 200; its CPU time per MESSAGE | $kam_tcp1 at ${kam_tcp1_cpu} µs |"
echo "| Kamailio over TCP, $many SIPp connections each way: MESSAGEs relayed per second, best with >= 99% answered 200; its CPU time per MESSAGE | $kam_tcpn at ${kam_tcpn_cpu} µs |"
echo "| Kamailio-TCP, the better of the two (the ratios' reference) | $kam_tcp |"
echo "| SIPp sources straight to SIPp sinks, no proxy ($many each; the load generator's own ceiling; the sweep stops once past 1.5 times Kamailio): UDP / TCP | $sipp_udp / $sipp_tcp |"
echo "| Kamailio: CPU time per relayed MESSAGE at its best rate (all processes), UDP / TCP | ${kam_udp_cpu} µs / ${kam_tcp_cpu} µs |"
echo "| load generator for Kamailio (SIPp sources and sinks) at Kamailio-TCP's best rate: CPU time per MESSAGE | ${kam_tcp_gen:-?} µs |"
awk -v a="$ours" -v b="$kam_udp" 'BEGIN{ if (b > 0) printf "| ratio phonexd / Kamailio-UDP | %.2f |\n", a/b; else print "| ratio phonexd / Kamailio-UDP | Kamailio run failed |" }'
awk -v a="$ours" -v b="$kam_tcp" 'BEGIN{ if (b > 0) printf "| ratio phonexd / Kamailio-TCP | %.2f |\n", a/b; else print "| ratio phonexd / Kamailio-TCP | Kamailio run failed |" }'
# The machine is shared, so rates move with the load; CPU time per MESSAGE
# moves less and says what each relay would do with the cores to itself.
awk -v a="${ours_cpu:-0}" -v b="$kam_tcp_cpu" 'BEGIN{ if (a > 0 && b > 0) printf "| CPU-cost ratio Kamailio-TCP / phonexd (above 1: phonexd cheaper per MESSAGE) | %.2f |\n", b/a }'
