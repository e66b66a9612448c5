#!/usr/bin/env bash
# File encryption throughput on this machine, in one run: the STREAM content
# encryption of internal/filecrypt (AES-256-GCM, 64 KiB chunks) against
# OpenSSL's AES-256-GCM on 64 KiB blocks (`openssl speed -evp`, its fastest
# path: EVP with the CPU's AES-NI/VAES code, nothing disabled), on the same
# machine, the rounds interleaved and the best of each kept. Also the whole
# file through the library's API (slot, wrapping, signed header, metadata,
# content and its SHA-256), which has no OpenSSL equivalent: `openssl enc`
# refuses AEAD ciphers. Prints a Markdown table and the ratios.
#
# Both sides are divided by CPU time, not wall time: `openssl speed` divides
# by its CPU user time unless given -elapsed, and bench/filecrypt by its
# process's user+system time (all threads, the garbage collector included),
# so a machine shared with other work does not skew the ratio.
#
# Environment: SIZE_MB (random test file, default 64), SECS (per measure,
# default 3), ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${SIZE_MB:-64}
secs=${SECS:-3}
rounds=${ROUNDS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/bench" ./bench/filecrypt
head -c $((size << 20)) /dev/urandom >"$work/in"

best() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a ? b : a) }'; }
ossl() { # ossl [-decrypt]: bytes/s of AES-256-GCM on 64 KiB blocks
  openssl speed "$@" -evp aes-256-gcm -bytes 65536 -seconds "$secs" -mr 2>/dev/null |
    awk -F: '/^\+F:/ { print $4 }'
}
hot_seal=0 hot_open=0 ours_seal=0 ours_open=0 file_seal=0 file_open=0 ref_seal=0 ref_open=0
for _ in $(seq "$rounds"); do
  ref_seal=$(best "$ref_seal" "$(ossl)")
  ref_open=$(best "$ref_open" "$(ossl -decrypt)")
  "$work/bench" -in "$work/in" -seconds "$secs" >"$work/out"
  hot_seal=$(best "$hot_seal" "$(awk '/^STREAM_SEALHOT / { print $2 }' "$work/out")")
  hot_open=$(best "$hot_open" "$(awk '/^STREAM_OPENHOT / { print $2 }' "$work/out")")
  ours_seal=$(best "$ours_seal" "$(awk '/^STREAM_SEAL / { print $2 }' "$work/out")")
  ours_open=$(best "$ours_open" "$(awk '/^STREAM_OPEN / { print $2 }' "$work/out")")
  file_seal=$(best "$file_seal" "$(awk '/^FILE_SEAL/ { print $2 }' "$work/out")")
  file_open=$(best "$file_open" "$(awk '/^FILE_OPEN/ { print $2 }' "$work/out")")
done

mbs() { awk -v v="$1" 'BEGIN { printf "%.0f MB/s", v / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "## File encryption ($(nproc) cores, $(go version | cut -d' ' -f3), $(openssl version | cut -d' ' -f1-2); best of $rounds rounds of ${secs} s, ${size} MiB)"
echo
echo "Reference: \`openssl speed [-decrypt] -evp aes-256-gcm -bytes 65536 -seconds $secs\` (EVP, default CPU dispatch, CPU user time); ours: \`bench/filecrypt -in FILE -seconds $secs\` (CPU user+system time)"
echo
echo "| STREAM AES-256-GCM, 64 KiB chunks, MB per CPU second | filecrypt | OpenSSL | ratio |"
echo "|---|---|---|---|"
echo "| encrypt, 1 MiB in cache (OpenSSL: one 64 KiB block in cache) | $(mbs "$hot_seal") | $(mbs "$ref_seal") | $(ratio "$hot_seal" "$ref_seal") |"
echo "| decrypt, 1 MiB in cache | $(mbs "$hot_open") | $(mbs "$ref_open") | $(ratio "$hot_open" "$ref_open") |"
echo "| encrypt, ${size} MiB from memory | $(mbs "$ours_seal") | $(mbs "$ref_seal") | $(ratio "$ours_seal" "$ref_seal") |"
echo "| decrypt, ${size} MiB from memory | $(mbs "$ours_open") | $(mbs "$ref_open") | $(ratio "$ours_open" "$ref_open") |"
echo "| whole file, send side: file -> /dev/null (wrap, sign, metadata, content, SHA-256) | $(mbs "$file_seal") | - | - |"
echo "| whole file, receive side: ciphertext file -> /dev/null (verify, unwrap, content, SHA-256) | $(mbs "$file_open") | - | - |"
echo
echo "Goal: ratio at least 0.70."
