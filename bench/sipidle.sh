#!/usr/bin/env bash
# Measures phonexd's memory per idle authenticated SIP connection (TLS with a
# device certificate plus SIP, one REGISTER each). Prints a Markdown row.
# Usage: [PHONEXD=path/to/phonexd] bash bench/sipidle.sh [sipidle flags]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
# PHONEXD names a phonexd binary to measure instead of one built from this tree
# (to compare with another revision in the same run).
if [ -n "${PHONEXD:-}" ]; then
	cp "$PHONEXD" "$work/phonexd"
else
	go build -o "$work/phonexd" ./cmd/phonexd
fi
"$work/phonexd" init --data "$work/data" --domain bench.test --host 127.0.0.1 >/dev/null
ulimit -n 8192 2>/dev/null || true
"$work/phonexd" serve --data "$work/data" --api-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
for _ in $(seq 100); do grep -q '^sip:' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
api=$(sed -n 's#^api: https://\([^ ]*\).*#\1#p' "$work/serve.out")
sip=$(sed -n 's#^sip: sips:\([^ ]*\).*#\1#p' "$work/serve.out")
go run ./bench/sipidle -server "$api" -sip "$sip" -data "$work/data" -pid "$pid" "$@"
