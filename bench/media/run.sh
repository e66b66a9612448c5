#!/usr/bin/env bash
# Media benchmarks: the IP-level bandwidth of one call direction for each
# Opus setting against the 8-20 kbit/s budget, and SRTP protect+unprotect
# per second in internal/media/srtp (pion) against libsrtp on this machine,
# in the same run, with an interop check (libsrtp unprotects our packets).
# Installs libopus-dev, libsrtp2-dev, pkg-config and gcc when missing.
# Usage: bench/media/run.sh [-wav speech.wav] [-n packets]
set -euo pipefail
cd "$(dirname "$0")/../.."
wavarg=() n=200000
while [ $# -gt 0 ]; do
	case "$1" in
	-wav) wavarg=(-wav "$2"); shift 2 ;;
	-n) n=$2; shift 2 ;;
	*) echo "usage: $0 [-wav speech.wav] [-n packets]" >&2; exit 2 ;;
	esac
done

need=()
command -v gcc >/dev/null || need+=(gcc)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists opus 2>/dev/null || need+=(libopus-dev)
pkg-config --exists libsrtp2 2>/dev/null || need+=(libsrtp2-dev)
if [ ${#need[@]} -gt 0 ]; then
	sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
	$sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -Wall -o "$work/libsrtp_harness" bench/media/libsrtp_harness.c $(pkg-config --cflags --libs libsrtp2)
go build -o "$work/srtpbench" ./bench/media/srtpbench
go build -o "$work/bandwidth" ./bench/media/bandwidth

echo "## Media benchmarks ($(nproc) cores, $(go version | cut -d' ' -f3), libsrtp2 $(pkg-config --modversion libsrtp2), libopus $(pkg-config --modversion opus))"
echo
echo "### One call direction at the IP level (budget: 8-20 kbit/s one way)"
echo
"$work/bandwidth" "${wavarg[@]}"
echo
echo "### SRTP protect+unprotect, 160-byte payload, $n packets, best of 3"
echo
echo "| profile | internal/media/srtp (pion) packets/s | libsrtp packets/s | pion / libsrtp | interop (libsrtp unprotects ours) |"
echo "|---|---:|---:|---:|:---|"
best() { sort -n | tail -1; }
for p in AES1_HS32 AES1_HS80 AES3_HS32 AES3_HS80; do
	"$work/srtpbench" -profile "$p" -payload 160 -n 1000 -vectors "$work/$p.vec" >/dev/null
	interop=$("$work/libsrtp_harness" "$p" 160 1 "$work/$p.vec" | head -1)
	# Alternate the two so both see the same machine load.
	go_r=() c_r=()
	for _ in 1 2 3; do
		go_r+=("$("$work/srtpbench" -profile "$p" -payload 160 -n "$n")")
		c_r+=("$("$work/libsrtp_harness" "$p" 160 "$n")")
	done
	g=$(printf '%s\n' "${go_r[@]}" | best)
	c=$(printf '%s\n' "${c_r[@]}" | best)
	echo "| $p | $g | $c | $(awk -v g="$g" -v c="$c" 'BEGIN{printf "%.2f", g/c}') | $interop |"
done
