#!/usr/bin/env bash
# End-to-end file transfer through phonexd on loopback, with the real
# binaries: `phonex send-file` (hash, encrypt to the spool, upload) and
# `phonex get` (download, verify and decrypt, rename) of a random file, at
# two sizes, with the peak resident memory of each phonex run (GNU time's
# maximum RSS) and of phonexd (VmHWM) after each size. The rates are wall
# time of the whole command, password KDF and TLS setup included, so they
# understate the transfer itself; memory flat in the size is the goal.
#
# Environment: SIZES_MB (default "64 1024").
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES_MB:-64 1024}
work=$(mktemp -d)
node_pid=
cleanup() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work" ./cmd/phonex ./cmd/phonexd
px() { "$work/phonex" "$@"; }
data=$work/data
echo "bench password" >"$work/pw"
"$work/phonexd" init --data "$data" --domain example.org --host 127.0.0.1 >/dev/null
"$work/phonexd" serve --data "$data" --api-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 >"$work/node.out" 2>"$work/node.err" &
node_pid=$!
for _ in $(seq 100); do grep -q '^sip: ' "$work/node.out" 2>/dev/null && break; sleep 0.2; done
api=$(sed -n 's|^api: https://\([^ ]*\).*|\1|p' "$work/node.out" | head -1)
for u in alpha bravo; do
  code=$("$work/phonexd" user add --data "$data" "$u@example.org" --json | sed -n 's/.*"code":"\([^"]*\)".*/\1/p')
  px enroll "$u@example.org" --profile "$work/$u" --server "$api" --ca-file "$data/ca.pem" --code "$code" \
    --device dev --password-file "$work/pw" >/dev/null
done
px contacts add bravo@example.org --profile "$work/alpha" --password-file "$work/pw" >/dev/null
px contacts add alpha@example.org --profile "$work/bravo" --password-file "$work/pw" >/dev/null

echo "| file | send-file (hash, encrypt, upload) | get (download, decrypt) | phonex peak RSS send / get | phonexd peak RSS |"
echo "|---|---|---|---|---|"
for mb in $sizes; do
  px listen --for 3s --profile "$work/bravo" --password-file "$work/pw" >/dev/null # offers slots
  head -c $((mb << 20)) /dev/urandom >"$work/f-$mb"
  /usr/bin/time -f '%e %M' -o "$work/t-send" "$work/phonex" send-file bravo@example.org "$work/f-$mb" --json \
    --profile "$work/alpha" --password-file "$work/pw" >"$work/send.out"
  id=$(tail -1 "$work/send.out" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  /usr/bin/time -f '%e %M' -o "$work/t-get" "$work/phonex" get "$id" -o "$work/g-$mb" \
    --profile "$work/bravo" --password-file "$work/pw" >/dev/null
  cmp "$work/f-$mb" "$work/g-$mb"
  read -r s_sec s_kb <"$work/t-send"
  read -r g_sec g_kb <"$work/t-get"
  node_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$node_pid/status")
  awk -v mb="$mb" -v ss="$s_sec" -v sk="$s_kb" -v gs="$g_sec" -v gk="$g_kb" -v nk="$node_kb" 'BEGIN {
    printf "| %d MiB | %.1f s, %.0f MB/s | %.1f s, %.0f MB/s | %.0f MiB / %.0f MiB | %.0f MiB |\n",
      mb, ss, mb * 1.048576 / ss, gs, mb * 1.048576 / gs, sk / 1024, gk / 1024, nk / 1024 }'
  rm -f "$work/f-$mb" "$work/g-$mb"
done
echo "(machine load: $(cut -d' ' -f1-3 /proc/loadavg))"
