#!/usr/bin/env bash
# Message latency across two clusters against one, in one run: two phonexd
# nodes (a.bench and b.bench, their own CAs, pinned by each other with
# 'phonexd federation add') on loopback; alpha@a.bench sends to
# bravo@b.bench and to charlie@a.bench turn and turn about, and
# bench/federation measures each message from the start of Send until the
# recipient's device has decrypted it. Prints Markdown rows and the ratio.
#
# Environment: ROUNDS (messages to each recipient, default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-50}
. bench/lib/twoclusters.sh
go build -o "$work/federation" ./bench/federation
px() { "$work/phonex" "$@" --password-file "$work/pw" >/dev/null; }
px contacts add bravo@b.bench --profile "$work/p-alpha"
px contacts add charlie@a.bench --profile "$work/p-alpha"
px contacts add alpha@a.bench --profile "$work/p-bravo"
px contacts add alpha@a.bench --profile "$work/p-charlie"

echo "phonexd $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, $rounds messages to each recipient, alternating"
echo
"$work/federation" -alpha "$work/p-alpha" -bravo "$work/p-bravo" -charlie "$work/p-charlie" -password-file "$work/pw" -rounds "$rounds"
