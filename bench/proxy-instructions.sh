#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: rampart (RULES inline
# rules, access log on) against the bare Pingora proxy (examples/bare_pingora.rs). Unlike CPU
# time, instruction counts do not depend on what else the machine is doing, so this ratio is
# repeatable on a shared machine; bench/proxy-cpu.sh gives the CPU-time ratio.
#
# Both proxies run under callgrind with one worker thread. After a warm-up the counters are
# zeroed, wrk sends small keep-alive GETs for DURATION seconds, and the counters are dumped:
# instructions of the whole process (all threads, incl. the access-log writer and health
# checks), less what it spends in the same time without load, divided by the requests wrk
# completed. Cores: valgrind runs every thread of the
# proxy on one core (it serialises threads); wrk and nginx share the other.
#
# A third run gives the bare proxy the same upstream timeouts as Rampart's default pools, kept
# on tokio's timer wheel as Rampart keeps them: the difference is what Pingora's timers cost,
# which Rampart cannot avoid while honouring them.
#
# CACHE_SIM=1 also simulates the caches and branch predictors (--cache-sim, --branch-sim) and
# reports estimated cycles instead of instructions, with kcachegrind's weights: instructions
# + 10 × (L1 misses + mispredicted branches) + 100 × last-level misses. That shows what the
# instruction count misses: more code on the path evicts more of the rest (see
# docs/performance.md).
#
# Both proxies' glibc copies with vector loops rather than `rep movsb` (a tunable, set for the
# valgrind runs only): callgrind counts each byte a `rep movsb` moves as one instruction, and
# Pingora copies each request's 8.7 KB future into its box (see docs/performance.md, session
# 33), so ~8 700 of each proxy's counted instructions per request were a copy the processor
# does in a few hundred cycles. The vector loop's count is close to its cost, so the ratio is
# no longer diluted by it (REP_MOVSB=1 counts as before, to compare with older runs).
#
# Usage: bench/proxy-instructions.sh   (DURATION=10 RULES=1000 CONNS=8 CACHE_SIM=1 to change)
#        The profiles stay in target/bench/callgrind.{bare,bare_timeouts,rampart}: read them with
#        `callgrind_annotate target/bench/callgrind.rampart | less` (or kcachegrind).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-8}
RULES=${RULES:-1000}
CACHE_SIM=${CACHE_SIM:-0}
REP_MOVSB=${REP_MOVSB:-0}
source bench/lib.sh
bench_setup nginx wrk valgrind
SIM=()
UNIT=instructions
if [ "$CACHE_SIM" = 1 ]; then SIM=(--cache-sim=yes --branch-sim=yes); UNIT="estimated cycles"; fi
TUNABLES=${GLIBC_TUNABLES:-}
if [ "$REP_MOVSB" != 1 ]; then
  TUNABLES="${TUNABLES:+$TUNABLES:}glibc.cpu.x86_rep_movsb_threshold=4294967295"
fi

# cost FILES...: the weighted total of callgrind dumps (only Ir without the simulations).
cost() {
  cat "$@" 2>/dev/null | awk '
    /^events:/ { for (i = 2; i <= NF; i++) name[i] = $i }
    /^totals:/ {
      for (i = 2; i <= NF; i++) {
        e = name[i]
        w = (e == "Ir") ? 1 : (e ~ /^(I1mr|D1mr|D1mw|Bcm|Bim)$/) ? 10 : (e ~ /^(ILmr|DLmr|DLmw)$/) ? 100 : 0
        s += w * $i
      }
    }
    END { printf "%.0f\n", s }'
}

# count NAME PORT CMD... → prints "requests cost" (instructions, or estimated cycles)
count() {
  local name=$1 port=$2; shift 2
  GLIBC_TUNABLES=$TUNABLES valgrind --tool=callgrind "${SIM[@]}" --callgrind-out-file="$tmp/cg.$name.%p" "$@" 2>"$tmp/vg.$name" &
  local pid=$!
  wait_port "$port" 600
  wrk -t1 -c"$CONNS" -d3s "http://127.0.0.1:$port/bench" >/dev/null # warm-up
  callgrind_control -z "$pid" >/dev/null
  wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/bench" > "$tmp/wrk.$name"
  callgrind_control -d "$pid" >/dev/null
  if grep -q "Non-2xx" "$tmp/wrk.$name"; then echo "$name: non-2xx responses" >&2; cat "$tmp/wrk.$name" >&2; exit 1; fi
  # The same window without load: what the process spends whatever the traffic (timers, the
  # access-log writer's ticks, health checks), subtracted so that runs completing different
  # numbers of requests (valgrind's speed varies with the machine) compare.
  callgrind_control -z "$pid" >/dev/null
  sleep "$DURATION"
  callgrind_control -d "$pid" >/dev/null
  local reqs total idle
  reqs=$(wrk_requests "$tmp/wrk.$name")
  total=$(cost "$tmp"/cg."$name".*.1)
  idle=$(cost "$tmp"/cg."$name".*.2)
  total=$((total - idle))
  mkdir -p target/bench
  cp "$tmp"/cg."$name".*.1 "target/bench/callgrind.$name"
  stop "$pid"
  echo "$reqs $total"
}

read -r bare_req bare_cost < <(count bare "$BARE" target/release/examples/bare_pingora "127.0.0.1:$BARE" "127.0.0.1:$UP" 1)
read -r bt_req bt_cost < <(count bare_timeouts "$BARE" target/release/examples/bare_pingora "127.0.0.1:$BARE" "127.0.0.1:$UP" 1 timeouts)
read -r ramp_req ramp_cost < <(RUST_LOG=warn count rampart "$RAMP" target/release/rampart run -c "$tmp/rampart.yaml")
awk -v br="$bare_req" -v bi="$bare_cost" -v tr="$bt_req" -v ti="$bt_cost" -v rr="$ramp_req" -v ri="$ramp_cost" -v rules="$RULES" -v unit="$UNIT" 'BEGIN {
  b = bi/br; t = ti/tr; r = ri/rr
  printf "bare pingora: %d requests, %.0f %s/request\n", br, b, unit
  printf "bare pingora + the default upstream timeouts: %d requests, %.0f %s/request\n", tr, t, unit
  printf "rampart (%d rules, access log on): %d requests, %.0f %s/request\n", rules, rr, r, unit
  printf "%s per request, rampart/bare: %.3f   rampart/(bare + timeouts): %.3f   (bare + timeouts)/bare: %.3f\n", unit, r/b, r/t, t/b
}'
