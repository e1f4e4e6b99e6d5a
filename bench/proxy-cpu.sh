#!/usr/bin/env bash
# CPU time per proxied request and requests/s: rampart (with RULES inline rules and the
# access log on) against a bare Pingora proxy (examples/bare_pingora.rs), same machine, same
# run, small keep-alive GETs.
#
# Cores (the machines have 2): the proxies under test are pinned to core 0 with one worker
# thread each; wrk (1 thread per proxy) and the upstream (nginx, 1 worker, answers "ok") share
# core 1. CPU per request = the proxy process's user+system time (all its threads, from
# /proc/PID/stat) divided by the requests wrk completed, also split into user and system time.
#
# MODE=alternate (the default): one proxy at a time, rounds alternating bare/rampart, each
# proxy alone on core 0. The host's noise moves single rounds by up to ±15 %: the median of 7
# or more rounds is steadier.
# MODE=paired: both proxies run at once on core 0, each loaded by its own wrk for the same
# DURATION, so both meet the same host at the same moment: a round's ratio moves by a few %, not
# 15 %. They share the core as two SCHED_BATCH processes (chrt -b): the scheduler switches
# between them every few milliseconds instead of at each wake-up, and each switch costs both
# some cache refill, so both figures are a little higher than alone. Both start afresh each
# round, in alternating order (the first place costs ~1 %).
#
# Usage: bench/proxy-cpu.sh            (DURATION=8 CONNS=32 RULES=1000 ROUNDS=7 to change;
#                                      MODE=paired ROUNDS=8: an even number of rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
RULES=${RULES:-1000}
ROUNDS=${ROUNDS:-7}
MODE=${MODE:-alternate}
source bench/lib.sh
bench_setup nginx wrk

# The proxies, on core 0 (PREFIX: a scheduling policy for both); each sets its *_pid.
start_bare() {
  $PREFIX taskset -c 0 target/release/examples/bare_pingora "127.0.0.1:$BARE" "127.0.0.1:$UP" 1 2>/dev/null &
  bare_pid=$!
}
start_rampart() {
  RUST_LOG=warn $PREFIX taskset -c 0 target/release/rampart run -c "$tmp/rampart.yaml" 2>"$tmp/rampart.err" &
  ramp_pid=$!
}

# load NAME PORT SECONDS: wrk on core 1; its report in $tmp/wrk.NAME.
load() { taskset -c 1 wrk -t1 -c"$CONNS" -d"$3s" "http://127.0.0.1:$2/bench" > "$tmp/wrk.$1"; }

# requests NAME: the requests of wrk's report, all of them answered 2xx.
requests() {
  if grep -q "Non-2xx" "$tmp/wrk.$1"; then echo "$1: non-2xx responses" >&2; cat "$tmp/wrk.$1" >&2; exit 1; fi
  wrk_requests "$tmp/wrk.$1"
}

bare_req=0; bare_cpu=0; ramp_req=0; ramp_cpu=0; bare_user=0; ramp_user=0
# Each round's own ratio (Rampart's CPU per request over the bare proxy's): their spread shows
# how much the host moved during the run.
round_ratios=()
# add_round ROUND BARE_REQUESTS BARE_USER BARE_SYSTEM RAMPART_REQUESTS RAMPART_USER RAMPART_SYSTEM
add_round() {
  local round=$1 br=$2 bu=$3 bs=$4 rr=$5 ru=$6 rs=$7
  bare_req=$((bare_req + br)); bare_cpu=$((bare_cpu + bu + bs)); bare_user=$((bare_user + bu))
  ramp_req=$((ramp_req + rr)); ramp_cpu=$((ramp_cpu + ru + rs)); ramp_user=$((ramp_user + ru))
  row bare "$round" "$br" $((bu + bs))
  row rampart "$round" "$rr" $((ru + rs))
  round_ratios+=("$(awk -v br="$br" -v bc=$((bu + bs)) -v rr="$rr" -v rc=$((ru + rs)) 'BEGIN { printf "%.3f", (rc/rr)/(bc/br) }')")
}

printf "%-8s %-6s %12s %10s %14s\n" proxy round requests req/s "cpu µs/req" >&2
case "$MODE" in
  alternate)
    PREFIX=
    for round in $(seq "$ROUNDS"); do
      start_bare
      wait_port "$BARE"
      load bare "$BARE" 2 # warm-up
      read -r bu0 bs0 < <(user_system_ticks "$bare_pid")
      load bare "$BARE" "$DURATION"
      read -r bu1 bs1 < <(user_system_ticks "$bare_pid")
      stop "$bare_pid"
      start_rampart
      wait_port "$RAMP"
      load rampart "$RAMP" 2
      read -r ru0 rs0 < <(user_system_ticks "$ramp_pid")
      load rampart "$RAMP" "$DURATION"
      read -r ru1 rs1 < <(user_system_ticks "$ramp_pid")
      stop "$ramp_pid"
      br=$(requests bare); rr=$(requests rampart)
      add_round "$round" "$br" $((bu1 - bu0)) $((bs1 - bs0)) "$rr" $((ru1 - ru0)) $((rs1 - rs0))
    done
    ;;
  paired)
    PREFIX="chrt -b 0"
    # load_both SECONDS: both proxies loaded at once, started in $order.
    load_both() {
      local loads=() p port
      for p in $order; do
        if [ "$p" = bare ]; then port=$BARE; else port=$RAMP; fi
        load "$p" "$port" "$1" &
        loads+=($!)
      done
      wait "${loads[@]}"
    }
    for round in $(seq "$ROUNDS"); do
      # Which proxy starts first, and is loaded first, alternates: the first place cost a
      # proxy ~1 % (measured with each proxy in each place), which alternating cancels.
      if [ $((round % 2)) = 1 ]; then order="bare rampart"; else order="rampart bare"; fi
      for p in $order; do "start_$p"; done
      wait_port "$BARE"
      wait_port "$RAMP"
      load_both 2 # warm-up
      read -r bu0 bs0 < <(user_system_ticks "$bare_pid")
      read -r ru0 rs0 < <(user_system_ticks "$ramp_pid")
      load_both "$DURATION"
      read -r bu1 bs1 < <(user_system_ticks "$bare_pid")
      read -r ru1 rs1 < <(user_system_ticks "$ramp_pid")
      stop "$bare_pid"
      stop "$ramp_pid"
      br=$(requests bare); rr=$(requests rampart)
      add_round "$round" "$br" $((bu1 - bu0)) $((bs1 - bs0)) "$rr" $((ru1 - ru0)) $((rs1 - rs0))
    done
    ;;
  *) echo "MODE is alternate or paired, not $MODE" >&2; exit 2 ;;
esac
lines=$(wc -l < "$tmp/access.log")
# The user/system split comes from the kernel's per-tick accounting: user time is the proxy's
# own code, system time mostly the sockets' (the same system calls for both proxies).
awk -v br="$bare_req" -v bc="$bare_cpu" -v rr="$ramp_req" -v rc="$ramp_cpu" -v hz="$HZ" -v d="$DURATION" \
    -v n="$ROUNDS" -v mode="$MODE" -v rules="$RULES" -v lines="$lines" -v bu="$bare_user" -v ru="$ramp_user" 'BEGIN {
  b = bc/hz/br*1e6; r = rc/hz/rr*1e6
  printf "\nmode %s\nbare pingora: %.2f µs CPU/request, %.0f req/s\n", mode, b, br/(d*n)
  printf "rampart (%d rules, access log on, %d lines written): %.2f µs CPU/request, %.0f req/s\n", rules, lines, r, rr/(d*n)
  printf "CPU per request, rampart/bare: %.3f    requests/s, rampart/bare: %.3f\n", r/b, rr/br
  bu = bu/hz/br*1e6; ru = ru/hz/rr*1e6
  printf "of which user: bare %.2f µs, rampart %.2f µs (%.3f); system: bare %.2f µs, rampart %.2f µs (%.3f)\n", bu, ru, ru/bu, b-bu, r-ru, (r-ru)/(b-bu)
}'
printf "per-round ratios: %s; median %s\n" "${round_ratios[*]}" \
  "$(printf "%s\n" "${round_ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
