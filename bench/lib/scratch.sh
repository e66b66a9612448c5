# Sourced by the benchmarks, from the repository's top directory: a scratch
# directory $work, removed on exit after the processes whose ids the script
# adds to pids are stopped, and free_port (bench/lib/ports.sh).
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. bench/lib/ports.sh
