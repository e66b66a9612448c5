#!/usr/bin/env bash
# Admin panel measurements (docs/admin-panel.md):
#  1. render time of the account list over 100,000 accounts (Go benchmark:
#     first page, page 1000, the last page, a search);
#  2. heap the panel holds after serving its pages (Go benchmark);
#  3. resident memory of a serving phonexd on the same 100,000 accounts
#     without the panel, and with it after a signed-in browser-like client
#     read 200 account pages (by cursor), the live state and the audit log.
set -euo pipefail
cd "$(dirname "$0")/.."

go test -run XXX -bench BenchmarkAccountList -benchtime 20x ./internal/server/adminweb/ | grep -E '^Benchmark|^cpu'
go test -run XXX -bench BenchmarkPanelHeap -benchtime 1x ./internal/server/adminweb/ | grep -E '^Benchmark'

tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
go build -o "$tmp/phonexd" ./cmd/phonexd
"$tmp/phonexd" init --data "$tmp/d" --domain example.org --host 127.0.0.1 >/dev/null
python3 - "$tmp/d/phonexd.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = time.time_ns()
with db:
    for i in range(100000):
        cur = db.execute("INSERT INTO accounts(name, status, created) VALUES(?, 'active', ?)", ("user%06d@example.org" % i, now))
        if i % 10 == 0:
            db.execute("INSERT INTO devices(account_id, name, handle, suite, serial, cert, not_after, status, sealed_oprf, created) VALUES(?, 'laptop', ?, 'ec', '01', x'', ?, 'active', x'', ?)", (cur.lastrowid, "h%d" % i, now, now))
PY
secret=$(PHONEXD_ADMIN_PASSWORD="benchmark admin password" "$tmp/phonexd" admin add --data "$tmp/d" root --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["totp_secret"])')

. bench/lib/ports.sh
rss() { awk '/VmRSS/ {r=$2} /VmHWM/ {h=$2} END {print r " KiB (peak " h " KiB)"}' "/proc/$1/status"; }

# start ARGS...: runs phonexd serve, waits until the line with PREFIX shows.
start() {
  local want=$1; shift
  : >"$tmp/out"
  "$tmp/phonexd" serve --data "$tmp/d" --api-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 --sip-phone-addr off --relay-addr 127.0.0.1:0 --relay-tls-addr off "$@" >"$tmp/out" 2>"$tmp/log" &
  pid=$!
  for _ in $(seq 100); do grep -q "^$want" "$tmp/out" && return; sleep 0.1; done
  echo "phonexd did not start"; cat "$tmp/log"; exit 1
}

start "sip: "
sleep 3
without=$(rss "$pid")
kill "$pid"; wait "$pid" 2>/dev/null || true

port=$(free_port)
start "admin: " --admin-addr "127.0.0.1:$port"
sleep 3
idle=$(rss "$pid")
python3 - "$port" "$secret" <<'PY'
import base64, hashlib, hmac, http.cookiejar, ssl, struct, sys, time, urllib.parse, urllib.request
port, secret = sys.argv[1], sys.argv[2]
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
off = mac[-1] & 15
code = "%06d" % ((struct.unpack(">I", mac[off:off+4])[0] & 0x7fffffff) % 1000000)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
op = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
base = "https://127.0.0.1:%s" % port
body = op.open(base + "/login", urllib.parse.urlencode({"name": "root", "password": "benchmark admin password", "code": code}).encode()).read()
assert b'id="accounts"' in body, body[:400]
t = time.time()
for i in range(200):
    op.open(base + "/accounts" + ("?after=user%06d@example.org" % (i * 500 - 1) if i else "")).read()
print("200 account pages (one in ten of the 2,000) in %.2f s through HTTPS, %.1f ms each" % (time.time() - t, (time.time() - t) * 5))
for p in ("/live", "/audit", "/accounts?q=user0999"):
    op.open(base + p).read()
PY
with=$(rss "$pid")
echo "phonexd resident memory with 100,000 accounts (VmRSS, VmHWM):"
echo "  without the panel:               $without"
echo "  with the panel, before any page: $idle"
echo "  with the panel, after the pages: $with"
