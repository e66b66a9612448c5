#!/usr/bin/env bash
# Call setup, INVITE to SRTP keys ready on the caller: PhoneX devices
# calling each other by address through phonexd, and in the same run
# linphonec calling linphonec directly (the reference, bzrtp's default
# settings: DH3k). Prints a Markdown table and the ratio.
# Usage: bench/callsetup.sh [-n CALLS]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/bin/phonexd" ./cmd/phonexd
go build -o "$work/bin/phonex" ./cmd/phonex
echo "## Call setup ($(nproc) cores, $(go version | cut -d' ' -f3), linphonec $(linphonec -v 2>/dev/null | head -1 || echo absent))"
echo
go run ./bench/callsetup -bin "$work/bin" -work "$work" "$@"
