#!/usr/bin/env bash
# Runs on the borrowed machine, from the repository root, what pack-exchange-bench.sh packed:
# the codec-work bench, the issue's P = 25M fp32/int8 cells (interleaved, 30 turns, then cell after
# cell, 10 rounds, as earlier runs were), and the machine's description, into $OUT (env.txt, log.txt).
# EXCHANGE_ARGS replaces both exchange runs with one of its own. BUDGET_S (default 420) bounds the
# whole run; each part gets what is left, so a slow part cannot take the files of the others with it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/device-bench-out}; mkdir -p "$out"
budget=${BUDGET_S:-420}; start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - start) )); }
mkdir -p /tmp/gp-bin
xz -dc "$here/bin/node.xz" > /tmp/gp-bin/node && xz -dc "$here/bin/nats-server.xz" > /tmp/gp-bin/nats-server
chmod +x /tmp/gp-bin/*
export PATH=/tmp/gp-bin:$PATH NATS_SERVER_BIN=/tmp/gp-bin/nats-server
{ echo "commit $(cat "$here/commit")"; date -u; nproc; lscpu | grep -E 'Model name|^CPU\(s\)|Thread|MHz'; free -g | head -2; uptime; node --version; nats-server --version; } > "$out/env.txt" 2>&1
cat "$out/env.txt"
run() { # name, args...
  local name=$1; shift
  local t; t=$(left); if (( t < 30 )); then echo "skipped $name: $t s left" | tee -a "$out/log.txt"; return; fi
  echo "== $name ($t s left): $*" | tee -a "$out/log.txt"
  timeout -k 5 "$(( t - 10 ))" node --expose-gc "$here/app/bench/$name" "$@" 2>&1 | tee -a "$out/log.txt"
  echo "rc ${PIPESTATUS[0]}" | tee -a "$out/log.txt"
}
run codec-work.bench.js --P 25M --K 2,4,8 --codecs fp32,int8
run exchange.bench.js ${EXCHANGE_ARGS:---P 25M --K 2,4,8 --codecs fp32,int8 --reps 30 --reps-large 30 --interleave}
[ -n "${EXCHANGE_ARGS:-}" ] || run exchange.bench.js --P 25M --K 2,4,8 --codecs fp32,int8 --reps 10 --reps-large 10
uptime >> "$out/env.txt"
