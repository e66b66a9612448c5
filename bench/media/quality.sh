#!/usr/bin/env bash
# Call quality as a user hears it: ITU-T P.862.2 (wideband PESQ) scores of
# synthetic English speech sent through a call on loopback, clean and with
# random packet loss, with the IP-level bitrate of the direction measured,
# for:
#   A. the media pipeline of bench/media/quality (encoder, SRTP, UDP, a
#      seeded loss injector between two sockets, RTCP reports back over
#      SRTCP, jitter buffer, FEC or concealment, decoder);
#   B. two phonex processes in a direct call (`phonex call --direct` and
#      `phonex answer --direct`), and, with -before BIN, the same with an
#      older phonex binary;
#   C. linphonec to linphonec, the reference, with its default settings.
# B and C run in a network namespace made for the run, where an nftables
# rule drops the given share of RTP packets (both directions, chosen by the
# kernel's random generator; ZRTP and SIP are spared), the same for both.
#
# PESQ is not part of this repository: build an ITU-T P.862 implementation
# that takes `+16000 +wb REF DEG` (the ITU reference code does) and point
# PESQ at it. B and C need root (network namespaces) and linphonec.
#
# Usage: PESQ=/path/to/pesq bench/media/quality.sh [-loss 5] [-runs 3] [-seeds 60] [-before /path/to/old/phonex]
#
# -seeds: loss seeds for the simulated-clock table (section S). A single
# seed moves the score by up to ±0.8 and the first ten seeds are kinder
# than most, so that table is the one to quote; the real-time sections
# take -runs seeds each.
set -euo pipefail
cd "$(dirname "$0")/../.."
loss=5 runs=3 seeds=60 before=""
while [ $# -gt 0 ]; do
	case "$1" in
	-loss) loss=$2; shift 2 ;;
	-runs) runs=$2; shift 2 ;;
	-seeds) seeds=$2; shift 2 ;;
	-before) before=$2; shift 2 ;;
	*) echo "usage: PESQ=/path/to/pesq $0 [-loss PERCENT] [-runs N] [-seeds N] [-before OLD_PHONEX]" >&2; exit 2 ;;
	esac
done
if [ -z "${PESQ:-}" ] || [ ! -x "$PESQ" ]; then
	echo "quality.sh: PESQ is not set to an executable (now: '${PESQ:-}')." >&2
	echo "Build an ITU-T P.862 implementation with P.862.2 wideband mode (the ITU reference C code takes +16000 +wb REF DEG)" >&2
	echo "and run: PESQ=/path/to/pesq $0" >&2
	exit 2
fi
need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v linphonec >/dev/null || need+=(linphone-cli)
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
	sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
	$sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
ns="pxq$$"
cleanup() {
	wait 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/quality" ./bench/media/quality
go build -o "$work/phonex" ./cmd/phonex

# Harvard sentences (IEEE 1969), spoken by espeak-ng, at 16 kHz with half
# a second of silence before and a second after. PESQ reads a 44-byte WAV
# header, which sox writes.
espeak-ng -v en-us -s 150 -w "$work/raw.wav" "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. It is easy to tell the depth of a well. These days a chicken leg is a rare dish. Rice is often served in round bowls. The juice of lemons makes fine punch."
sox "$work/raw.wav" -r 16000 -c 1 -b 16 "$work/ref.wav" pad 0.5 1.0
dur=$(soxi -D "$work/ref.wav")

score() { # DEGRADED.wav (any rate) -> MOS-LQO
	sox "$1" -r 16000 -c 1 -b 16 "$1.16k.wav"
	(cd "$work" && "$PESQ" +16000 +wb ref.wav "$1.16k.wav" | awk -F'= *' '/P.862.2 Prediction/ {print $2}' | tail -1)
}
jget() { python3 -c 'import json,sys
d=json.loads(sys.argv[1])
for k in sys.argv[2].split("."): d=d[k]
print(round(d,2) if isinstance(d,float) else d)' "$1" "$2"; }
stats() { # scores... -> "mean (min-max)"
	printf '%s\n' "$@" | awk '{s+=$1; if(min==""||$1<min)min=$1; if($1>max)max=$1; n++} END {if(n==1) printf "%.2f", s; else printf "%.2f (%.2f-%.2f)", s/n, min, max}'
}

echo "## Call quality: wideband PESQ (ITU-T P.862.2) of $(printf %.1f "$dur") s of espeak-ng English speech at 16 kHz"
echo
echo "$(nproc) cores, $(go version | cut -d' ' -f3), libopus $(dpkg-query -W -f '${Version}' libopus0 2>/dev/null || echo '?'), PESQ: $("$PESQ" 2>&1 | grep -m1 -io 'version [0-9.]*' || echo "$PESQ"), loss $loss %, $runs runs per figure (mean, min-max). The bitrate: for the pipeline the mean over the packets of the file, its pauses included; for phonex the call's own figure, over the whole call (1.5 s of silence after the file included)."
echo
echo "### S. Media pipeline on a simulated clock (bench/media/quality -sim: deterministic, seeds 1-$seeds)"
echo
echo "| settings | IP kbit/s one way (mean, peak 1 s) | PESQ clean | PESQ at $loss % loss, mean ± standard error (min-max) | seeds 1-10 |"
echo "|---|---:|---:|---:|---:|"
simrow() { # label, quality flags...
	local label=$1; shift
	local j clean lossy=()
	j=$("$work/quality" -sim -in "$work/ref.wav" -out "$work/s0.wav" "$@")
	clean=$(score "$work/s0.wav")
	for s in $(seq 1 "$seeds"); do
		"$work/quality" -sim -in "$work/ref.wav" -out "$work/s1.wav" -loss "$loss" -seed "$s" "$@" >/dev/null
		lossy+=("$(score "$work/s1.wav")")
	done
	local st
	st=$(printf '%s\n' "${lossy[@]}" | awk '{x[NR]=$1; t+=$1; if(NR<=10)t10+=$1; if(min==""||$1<min)min=$1; if($1>max)max=$1}
		END {m=t/NR; for(i=1;i<=NR;i++) v+=(x[i]-m)^2; se=(NR>1)?sqrt(v/(NR-1)/NR):0
		printf "%.2f ± %.2f (%.2f-%.2f) | %s", m, se, min, max, (NR>=10)?sprintf("%.2f", t10/10):"-"}')
	echo "| $label | $(jget "$j" ip_kbps), $(jget "$j" ip_kbps_peak) | $clean | $st |"
}
simrow "Opus 22 kbit/s, mediumband, 120 ms, no FEC of its own (the default)" -bitrate 22000 -ptime 120ms -bandwidth mediumband -fec=false
simrow "Opus 22 kbit/s, mediumband, 120 ms, FEC from 5 % reported loss" -bitrate 22000 -ptime 120ms -bandwidth mediumband
echo

echo "### A. Media pipeline on loopback (bench/media/quality: real UDP, seeded loss injector, RTCP over SRTCP)"
echo
echo "| settings | IP kbit/s one way (mean, peak 1 s) | PESQ clean | PESQ at $loss % loss | redundancy / FEC rebuilt / concealed / late (lossy runs) |"
echo "|---|---:|---:|---:|---:|"
pipeline() { # label, quality flags...
	local label=$1; shift
	local j clean=() lossy=() red=0 fec=0 plc=0 late=0
	for s in $(seq 1 "$runs"); do
		j=$("$work/quality" -in "$work/ref.wav" -out "$work/a0.wav" "$@")
		clean+=("$(score "$work/a0.wav")")
		local jl
		jl=$("$work/quality" -in "$work/ref.wav" -out "$work/a$s.wav" -loss "$loss" -seed "$s" "$@")
		lossy+=("$(score "$work/a$s.wav")")
		red=$((red + $(jget "$jl" red_recovered))); fec=$((fec + $(jget "$jl" fec_recovered))); plc=$((plc + $(jget "$jl" concealed))); late=$((late + $(jget "$jl" late)))
	done
	echo "| $label | $(jget "$j" ip_kbps), $(jget "$j" ip_kbps_peak) | $(stats "${clean[@]}") | $(stats "${lossy[@]}") | $red / $fec / $plc / $late |"
}
pipeline "Opus 22 kbit/s, mediumband, 120 ms, no FEC of its own, expected loss from RTCP up to 5 % (the default)" -bitrate 22000 -ptime 120ms -bandwidth mediumband -fec=false
pipeline "Opus 21 kbit/s, wideband, 120 ms, FEC from 5 % reported loss (the earlier default's settings)" -bitrate 21000 -ptime 120ms
pipeline "Opus 22 kbit/s, mediumband, 120 ms, RFC 2198 redundancy at 6 kbit/s with the primary at 16 while loss is reported" -bitrate 22000 -ptime 120ms -bandwidth mediumband -fec=false -red -red-primary 16000 -red-bitrate 6000

if [ "$(id -u)" -ne 0 ]; then
	echo
	echo "B and C skipped: they need root for a network namespace."
	exit 0
fi

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
inns() { ip netns exec "$ns" "$@"; }
# RTP: UDP whose first payload byte has version 2 in its top bits; ZRTP
# (0x10) and SIP (text) do not match.
inns nft -f - <<EOF
table inet pxloss {
	counter rtp_from_7078 {}
	chain out {
		type filter hook output priority 0; policy accept;
		udp sport 7078 @th,64,8 & 0xc0 == 0x80 counter name rtp_from_7078
	}
}
EOF
setloss() { # PERCENT
	inns nft flush chain inet pxloss out
	inns nft add rule inet pxloss out udp sport 7078 '@th,64,8 & 0xc0 == 0x80' counter name rtp_from_7078
	if [ "$1" != 0 ]; then
		inns nft add rule inet pxloss out udp length '>' 19 '@th,64,8 & 0xc0 == 0x80' numgen random mod 100 '<' "$1" drop
	fi
}

forsec=$(awk -v d="$dur" 'BEGIN{printf "%.1fs", d+1.5}')
phonexcall() { # binary, loss, out.wav -> "kbit/s loss% fec plc"
	local bin=$1 l=$2 out=$3 d
	d=$(mktemp -d -p "$work")
	mkdir -p "$d/home"
	setloss "$l"
	HOME="$d/home" inns timeout 120 "$bin" answer --direct --listen 127.0.0.1:5090 --record "$out" --json --zrtp-cache "$d/b" >"$d/answer.json" 2>"$d/answer.err" &
	local apid=$!
	sleep 1
	HOME="$d/home" inns "$bin" call sip:b@127.0.0.1:5090 --direct --play "$work/ref.wav" --for "$forsec" --json --zrtp-cache "$d/a" >"$d/call.json" 2>"$d/call.err" || true
	wait "$apid" 2>/dev/null || true
	local ca an
	ca=$(grep '"event":"ended"' "$d/call.json" | tail -1)
	an=$(grep '"event":"ended"' "$d/answer.json" | tail -1)
	if [ -z "$ca" ] || [ -z "$an" ]; then
		echo "phonex call failed; see:" >&2; cat "$d"/*.err >&2
		return 1
	fi
	local kbps
	kbps=$(python3 -c 'import json,sys
s=json.loads(sys.argv[1])["stats"]
if "send_kbps_ip" in s: print("%.1f" % s["send_kbps_ip"])
else: print("?")' "$ca")
	python3 -c 'import json,sys
s=json.loads(sys.argv[1])["stats"]
print(sys.argv[2], "%.1f" % s.get("loss_percent", -1), "%s/%s" % (s.get("red_recovered", "-"), s.get("fec_recovered", "-")), s.get("concealed", s.get("lost", "-")))' "$an" "$kbps"
}
cli_rows() { # label, binary
	local label=$1 bin=$2 r kb clean=() lossy=() info=()
	for s in $(seq 1 "$runs"); do
		r=$(phonexcall "$bin" 0 "$work/b0.wav")
		kb=${r%% *}
		clean+=("$(score "$work/b0.wav")")
		r=$(phonexcall "$bin" "$loss" "$work/b$s.wav")
		lossy+=("$(score "$work/b$s.wav")")
		info+=("$(echo "$r" | awk '{printf "%s%% lost, %s/%s", $2, $3, $4}')")
	done
	echo "| $label | $kb | $(stats "${clean[@]}") | $(stats "${lossy[@]}") | $(IFS=';'; echo "${info[*]}") |"
}
echo
echo "### B, C. Calls between two processes in a network namespace, nftables dropping $loss % of RTP packets at random"
echo
echo "| call | IP kbit/s one way | PESQ clean | PESQ at $loss % loss | measured loss, redundancy/FEC rebuilt/concealed per lossy run |"
echo "|---|---:|---:|---:|---|"
cli_rows "phonex → phonex (this tree: Opus 22 kbit/s, mediumband, 120 ms)" "$work/phonex"
if [ -n "$before" ]; then
	cli_rows "phonex → phonex ($before)" "$before"
fi

# linphonec to linphonec: alice (SIP 5071, RTP 7078) plays, bob (5072,
# 7088) auto-answers and records. Commands go through FIFOs.
lprc() { # name sipport rtpport
	cat <<EOF
[sip]
bind_address=127.0.0.1
sip_port=$2
sip_tcp_port=0
sip_tls_port=0
use_ipv6=0
ipv6_migration_done=1
contact="$1" <sip:$1@127.0.0.1:$2>
media_encryption=zrtp
media_encryption_mandatory=1
verify_server_certs=0
guess_hostname=0
inc_timeout=60
[rtp]
bind_address=127.0.0.1
audio_rtp_port=$3
[sound]
echocancellation=0
[video]
display=0
capture=0
automatically_initiate=0
automatically_accept=0
EOF
}
lpcall() { # loss out.wav -> "kbit/s"
	# It runs in a command substitution: it stops what it started itself.
	local l=$1 out=$2 d mine=()
	d=$(mktemp -d -p "$work")
	setloss "$l"
	inns nft reset counters >/dev/null
	for who in alice:5071:7078 bob:5072:7088; do
		IFS=: read -r n sp rp <<<"$who"
		mkdir -p "$d/$n/.local/share/linphone"
		lprc "$n" "$sp" "$rp" >"$d/$n/rc"
		mkfifo "$d/$n/in"
		local aa=""; [ "$n" = bob ] && aa=-a
		HOME="$d/$n" inns linphonec -c "$d/$n/rc" $aa <"$d/$n/in" >"$d/$n/out" 2>&1 &
		mine+=("$!")
		# Keeps the FIFO open between commands (linphonec exits on EOF).
		sleep 100000 >"$d/$n/in" &
		mine+=("$!")
		eval "in_$n=\$d/\$n/in"
	done
	sleep 2
	echo "soundcard use files" >"$in_alice"; echo "soundcard use files" >"$in_bob"
	echo "record $out" >"$in_bob"
	echo "play $work/ref.wav" >"$in_alice"
	sleep 0.5
	echo "call sip:bob@127.0.0.1:5072" >"$in_alice"
	# Media flows once ZRTP has its keys (encryption is mandatory).
	local i=0
	until grep -q "auth token is" "$d/alice/out" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
	local t0 t1
	t0=$(date +%s.%N)
	sleep "$(awk -v d="$dur" 'BEGIN{print d+2}')"
	echo "terminate" >"$in_alice"
	t1=$(date +%s.%N)
	sleep 1
	echo "quit" >"$in_alice"; echo "quit" >"$in_bob"
	sleep 1
	kill "${mine[@]}" 2>/dev/null || true
	wait "${mine[@]}" 2>/dev/null || true
	local bytes
	bytes=$(inns nft list counter inet pxloss rtp_from_7078 | awk '/bytes/ {print $4}')
	awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN{printf "%.1f", b*8/(z-a)/1000}'
}
lprow() {
	local kb clean=() lossy=()
	for s in $(seq 1 "$runs"); do
		kb=$(lpcall 0 "$work/c0.wav")
		clean+=("$(score "$work/c0.wav")")
		lpcall "$loss" "$work/c$s.wav" >/dev/null
		lossy+=("$(score "$work/c$s.wav")")
	done
	echo "| linphonec → linphonec ($(linphonec --version 2>&1 | head -1 | tr -d '\r'), its defaults: Opus with its own rate control, ZRTP) | $kb | $(stats "${clean[@]}") | $(stats "${lossy[@]}") | (not reported by linphonec) |"
}
lprow
