#!/usr/bin/env bash
# Failover time on this machine: three phonexd nodes on one store (a shared
# SQLite data directory) and one NATS server (embedded in the test); alpha
# on node 1, bravo's device on node 2 behind a front door. Each round kills
# (SIGKILL) the node holding bravo, points the door at the other node,
# restarts bravo's device at once, and has alpha send a message while
# bravo is away: the figure is from the kill to bravo showing that message.
# The device restart (profile unlock with scrypt, API call, TLS, REGISTER)
# is part of it and shown apart. Prints a Markdown table.
#
# Environment: ROUNDS (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "failover: $(nproc) cores, rounds ${ROUNDS:-5}, store: SQLite (WAL) shared by the nodes, NATS embedded"
PHONEX_BENCH_FAILOVER=1 ROUNDS="${ROUNDS:-5}" go test -count=1 -timeout 20m -run '^TestFailoverTime$' -v ./internal/e2e 2>&1 |
  grep -E '^\||round [0-9]+:|^(ok|FAIL|---)' || true
