#!/usr/bin/env bash
# Messaging relay of one phonexd node on its embedded SQLite store and of
# one node on PostgreSQL, on this machine in one run, with bench/relay (the
# same load, every check of the node on, each MESSAGE stored durably before
# its 200: message_store_first, so that the store is what is measured). PostgreSQL is a throwaway server started here from Debian's
# postgresql (initdb in a temporary directory, a free loopback port, fsync
# and synchronous_commit on, the settings printed). Prints a Markdown table
# and the ratio PostgreSQL / SQLite. Arguments go to bench/relay (e.g.
# -pairs, -duration).
set -euo pipefail
cd "$(dirname "$0")/.."
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$pgbin" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
. bench/lib/scratch.sh
chmod 755 "$work"
# PostgreSQL refuses to run as root.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  as_pg=(runuser -u postgres --)
  mkdir -p "$work/pg" && chown postgres: "$work/pg"
else
  mkdir -p "$work/pg"
fi
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
port=$(free_port)
pg_settings=(-c fsync=on -c synchronous_commit=on -c shared_buffers=128MB -c max_connections=100)
"${as_pg[@]}" "$pgbin/postgres" -D "$work/pg/data" -p "$port" -k "$work/pg" -c listen_addresses=127.0.0.1 "${pg_settings[@]}" \
  >"$work/pg/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port" && break; sleep 0.1; done
"$pgbin/createdb" -h 127.0.0.1 -p "$port" -U postgres phonex
dsn="postgres://postgres@127.0.0.1:$port/phonex?sslmode=disable"

go build -o "$work/phonexd" ./cmd/phonexd
go build -o "$work/relay" ./bench/relay
ulimit -n 8192 2>/dev/null || true

# run NAME [init args...]: a node initialised with the args, its limits
# raised as in bench/messaging.sh, measured by bench/relay.
run() {
  local name=$1; shift
  local data="$work/$name"
  "$work/phonexd" init --data "$data" --domain bench.test --host 127.0.0.1 "$@" >/dev/null
  sed -i 's/^message_rate = .*/message_rate = 1000000/; s/^message_burst = .*/message_burst = 1000000/; s/^log_level = .*/log_level = warn/; s/^kdf_min_log_n = .*/kdf_min_log_n = 14/; s/^message_store_first = .*/message_store_first = true/' "$data/phonexd.conf"
  "$work/phonexd" serve --data "$data" --api-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 >"$data.out" 2>"$data.err" &
  local pid=$!
  pids+=($pid)
  for _ in $(seq 100); do grep -q '^sip:' "$data.out" 2>/dev/null && break; sleep 0.1; done
  local api sip
  api=$(sed -n 's#^api: https://\([^ ]*\).*#\1#p' "$data.out")
  sip=$(sed -n 's#^sip: sips:\([^ ]*\).*#\1#p' "$data.out")
  "$work/relay" -api "$api" -sip "$sip" -data "$data" -pid "$pid" "${relay_args[@]}" >"$work/$name.relay"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
relay_args=("$@")
run sqlite
run postgres --store "$dsn"

echo "## Store: one node on SQLite and one on PostgreSQL ($(nproc) cores, $(go version | cut -d' ' -f3), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'))"
echo
echo "PostgreSQL on loopback, same machine: ${pg_settings[*]}; pgx pool of 16 connections."
echo
for name in sqlite postgres; do
  echo "| $name: measure | value |"
  echo "|---|---|"
  grep '^|' "$work/$name.relay"
  echo
done
s=$(sed -n 's/^RATE //p' "$work/sqlite.relay")
p=$(sed -n 's/^RATE //p' "$work/postgres.relay")
awk -v s="$s" -v p="$p" 'BEGIN { if (s > 0) printf "PostgreSQL / SQLite relay rate: %.2f\n", p / s }'
echo "PostgreSQL's own CPU is not in the node's figure; the server shares this machine's cores with the node and the load generator."
