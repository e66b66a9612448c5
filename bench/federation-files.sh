#!/usr/bin/env bash
# A file across two clusters against one, in one run: two phonexd nodes
# (a.bench and b.bench, their own CAs, pinned by each other) on loopback;
# alpha@a.bench sends a random file to bravo@b.bench (through both nodes:
# upload to a, a's forward to b, download from b) and to charlie@a.bench
# (upload and download at a), turn and turn about, with the real CLI.
# Each transfer is timed from the start of `send-file` until the
# recipient's `get` has verified the file; the time until the recipient's
# `files` lists it (polled every 50 ms) is shown apart. Prints Markdown
# rows and the ratio.
#
# Environment: SIZE_MB (default 64), ROUNDS (per recipient, 1-4, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${SIZE_MB:-64}
rounds=${ROUNDS:-3}
[ "$rounds" -ge 1 ] && [ "$rounds" -le 4 ] || { echo "ROUNDS must be 1-4 (the file slots a device offers)" >&2; exit 2; }
. bench/lib/twoclusters.sh
now() { date +%s.%N; }
px() { "$work/phonex" "$@" --password-file "$work/pw"; }
px contacts add bravo@b.bench --profile "$work/p-alpha" >/dev/null
px contacts add charlie@a.bench --profile "$work/p-alpha" >/dev/null
px contacts add alpha@a.bench --profile "$work/p-bravo" >/dev/null
px contacts add alpha@a.bench --profile "$work/p-charlie" >/dev/null
# The recipients come online once: each offers alpha its file slots.
for u in bravo charlie; do
  # Started directly, not through px, so that $! is phonex itself and the
  # kill below reaches it.
  "$work/phonex" listen --json --profile "$work/p-$u" --password-file "$work/pw" >"$work/listen-$u" 2>/dev/null &
  lp=$!
  for _ in $(seq 200); do grep -q '"file_slots"' "$work/listen-$u" && break; sleep 0.1; done
  kill "$lp"; wait "$lp" 2>/dev/null || true
done

head -c $((size_mb << 20)) /dev/urandom >"$work/payload.bin"
want=$(sha256sum <"$work/payload.bin" | cut -d' ' -f1)
declare -A total listed
for r in $(seq "$rounds"); do
  for to in charlie@a.bench bravo@b.bench; do
    u=${to%@*}
    cp "$work/payload.bin" "$work/send-$r-$u.bin"
    t0=$(now)
    px send-file "$to" "$work/send-$r-$u.bin" --profile "$work/p-alpha" >/dev/null
    id=""
    while [ -z "$id" ]; do
      id=$(px files --json --profile "$work/p-$u" | python3 -c '
import json,sys
for f in json.load(sys.stdin):
    if f["direction"] == "in" and f["name"] == sys.argv[1] and f["state"] == "offered":
        print(f["id"]); break' "send-$r-$u.bin")
      [ -n "$id" ] || sleep 0.05
    done
    t1=$(now)
    px get "$id" -o "$work/got-$r-$u.bin" --profile "$work/p-$u" >/dev/null
    t2=$(now)
    [ "$(sha256sum <"$work/got-$r-$u.bin" | cut -d' ' -f1)" = "$want" ] || { echo "round $r: $to got other bytes" >&2; exit 1; }
    rm -f "$work/got-$r-$u.bin" "$work/send-$r-$u.bin"
    total[$u]="${total[$u]:-} $(python3 -c "print($t2-$t0)")"
    listed[$u]="${listed[$u]:-} $(python3 -c "print($t1-$t0)")"
  done
done

median() { python3 -c 'import statistics,sys; print("%.2f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
echo "phonexd $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), ${size_mb} MiB random file, $rounds rounds per recipient, alternating"
echo "reference: the same file within one cluster (alpha@a.bench to charlie@a.bench, one node, default settings)"
echo
echo "| path | send-file start to listed at the recipient (median s) | to verified by get (median s) |"
echo "|---|---|---|"
lc=$(median ${listed[charlie]}); tc=$(median ${total[charlie]})
lb=$(median ${listed[bravo]}); tb=$(median ${total[bravo]})
echo "| within a.bench (reference) | $lc | $tc |"
echo "| a.bench to b.bench (both nodes) | $lb | $tb |"
echo
python3 -c "print('ratio across clusters / within one: %.2f (to verified)' % ($tb/$tc))"
