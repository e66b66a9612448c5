# Sourced by the benchmarks that need two federated clusters on loopback
# (bench/federation.sh, bench/federation-files.sh), from the repository's
# top directory: builds phonexd and phonex into $work, makes a.bench and
# b.bench (their own CAs, each pinning the other with 'phonexd federation
# add'), serves both, and enrolls alpha and charlie at a and bravo at b
# (device d1, the password in $work/pw). Defines work, pids, cleanup (on
# exit; bench/lib/scratch.sh), free_port, api[c], sip[c] and enroll USER CLUSTER.
. bench/lib/scratch.sh

go build -o "$work/phonexd" ./cmd/phonexd
go build -o "$work/phonex" ./cmd/phonex
echo "bench password" >"$work/pw"

declare -A api sip
for c in a b; do
  "$work/phonexd" init --data "$work/$c" --domain "$c.bench" --host 127.0.0.1 >/dev/null
  api[$c]=127.0.0.1:$(free_port)
  sip[$c]=127.0.0.1:$(free_port)
done
for c in a b; do
  o=$([ "$c" = a ] && echo b || echo a)
  "$work/phonexd" federation add "$o.bench" --data "$work/$c" --ca-file "$work/$o/ca.pem" --api "${api[$o]}" --sip "${sip[$o]}" >/dev/null
  "$work/phonexd" serve --data "$work/$c" --api-addr "${api[$c]}" --sip-addr "${sip[$c]}" --sip-phone-addr off \
    >"$work/$c.out" 2>"$work/$c.err" &
  pids+=($!)
done
for c in a b; do
  for _ in $(seq 100); do grep -q '^sip:' "$work/$c.out" 2>/dev/null && break; sleep 0.1; done
done
enroll() { # user cluster
  code=$("$work/phonexd" user add "$1@$2.bench" --data "$work/$2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')
  "$work/phonex" enroll "$1@$2.bench" --profile "$work/p-$1" --server "${api[$2]}" --ca-file "$work/$2/ca.pem" \
    --code "$code" --device d1 --password-file "$work/pw" >/dev/null
}
enroll alpha a
enroll charlie a
enroll bravo b
