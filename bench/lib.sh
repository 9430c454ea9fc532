# Shared by the benchmarks: build once, time a command N times in-process.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet --bins
BIN=$PWD/target/release

# ms_per_run N CMD...: mean wall time of N runs, in milliseconds (3 decimals).
ms_per_run() {
  local n=$1; shift
  local start end
  start=$(date +%s%N)
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 || true; done
  end=$(date +%s%N)
  awk -v a="$start" -v b="$end" -v n="$n" 'BEGIN { printf "%.3f", (b - a) / n / 1e6 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

# best_of ROUNDS N CMD...: the lowest mean of several rounds (less noise
# from whatever else the machine is doing).
best_of() {
  local rounds=$1 n=$2; shift 2
  local best="" m
  for ((r = 0; r < rounds; r++)); do
    m=$(ms_per_run "$n" "$@")
    if [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$m; fi
  done
  echo "$best"
}

ratio2() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# cpu_ms_per_run N CMD...: mean CPU time (user + system, the command and
# the shell's fork for it) of N runs, in milliseconds. Steadier than wall
# time on a machine shared with other work.
cpu_ms_per_run() {
  local n=$1; shift
  local t
  t=$( { TIMEFORMAT='%3U %3S'; time { for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 || true; done; }; } 2>&1 )
  awk -v t="$t" -v n="$n" 'BEGIN { split(t, a, " "); printf "%.3f", (a[1] + a[2]) * 1000 / n }'
}

# best_cpu_of ROUNDS N CMD...: the lowest of several rounds of cpu_ms_per_run.
best_cpu_of() {
  local rounds=$1 n=$2; shift 2
  local best="" m
  for ((r = 0; r < rounds; r++)); do
    m=$(cpu_ms_per_run "$n" "$@")
    if [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$m; fi
  done
  echo "$best"
}
