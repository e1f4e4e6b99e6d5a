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
# BARE_TIMEOUTS=1 gives the bare proxy the upstream timeouts of Rampart's default pools,
# kept as Rampart keeps them (examples/bare_pingora.rs `timeouts`): what Rampart costs beyond
# Pingora's own cost of honouring them.
#
# Usage: bench/proxy-cpu.sh            (DURATION=8 CONNS=32 RULES=1000 ROUNDS=7 to change;
#                                      MODE=paired ROUNDS=8: an even number of rounds;
#                                      BARE_TIMEOUTS=1)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
RULES=${RULES:-1000}
ROUNDS=${ROUNDS:-7}
MODE=${MODE:-alternate}
BARE_TIMEOUTS=${BARE_TIMEOUTS:-0}
source bench/lib.sh
bench_setup nginx wrk

# The proxies, on core 0 (PREFIX: a scheduling policy for both); each sets its NAME_pid.
start_bare() {
  local timeouts=()
  if [ "$BARE_TIMEOUTS" = 1 ]; then timeouts=(timeouts); fi
  $PREFIX taskset -c 0 target/release/examples/bare_pingora "127.0.0.1:$BARE" "127.0.0.1:$UP" 1 "${timeouts[@]}" 2>/dev/null &
  bare_pid=$!
}
start_rampart() {
  RUST_LOG=warn $PREFIX taskset -c 0 target/release/rampart run -c "$tmp/rampart.yaml" 2>"$tmp/rampart.err" &
  rampart_pid=$!
}
port_of() { if [ "$1" = bare ]; then echo "$BARE"; else echo "$RAMP"; fi; }
pid_of() { local pid="$1_pid"; echo "${!pid}"; }

# load SECONDS NAME...: wrk on core 1 against each proxy named, all at once; each report in
# $tmp/wrk.NAME.
load() {
  local seconds=$1 loads=() p
  shift
  for p in "$@"; do
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${seconds}s" "http://127.0.0.1:$(port_of "$p")/bench" > "$tmp/wrk.$p" &
    loads+=($!)
  done
  wait "${loads[@]}"
}

# measure NAME...: starts the proxies named (in that order), warms them up, loads them for
# DURATION, stops them; sets NAME_req, NAME_user and NAME_sys (ticks) for each.
measure() {
  local p u0 s0 u1 s1 req
  for p in "$@"; do "start_$p"; done
  for p in "$@"; do wait_port "$(port_of "$p")"; done
  load 2 "$@" # warm-up
  for p in "$@"; do read -r "${p}_u0" "${p}_s0" < <(user_system_ticks "$(pid_of "$p")"); done
  load "$DURATION" "$@"
  for p in "$@"; do
    read -r u1 s1 < <(user_system_ticks "$(pid_of "$p")")
    stop "$(pid_of "$p")"
    u0="${p}_u0"; s0="${p}_s0"
    req=$(requests "$p") # exits on a non-2xx
    declare -g "${p}_user=$((u1 - ${!u0}))" "${p}_sys=$((s1 - ${!s0}))" "${p}_req=$req"
  done
}

# requests NAME: the requests of wrk's report, all of them answered 2xx.
requests() {
  if grep -q "Non-2xx" "$tmp/wrk.$1"; then echo "$1: non-2xx responses" >&2; cat "$tmp/wrk.$1" >&2; exit 1; fi
  wrk_requests "$tmp/wrk.$1"
}

all_bare_req=0; all_bare_cpu=0; all_bare_user=0; all_ramp_req=0; all_ramp_cpu=0; all_ramp_user=0
# Each round's own ratio (Rampart's CPU per request over the bare proxy's): their spread shows
# how much the host moved during the run.
round_ratios=()
# add_round ROUND: adds the round measured (NAME_req, NAME_user, NAME_sys) to the totals.
add_round() {
  local round=$1 bc=$((bare_user + bare_sys)) rc=$((rampart_user + rampart_sys))
  all_bare_req=$((all_bare_req + bare_req)); all_bare_cpu=$((all_bare_cpu + bc)); all_bare_user=$((all_bare_user + bare_user))
  all_ramp_req=$((all_ramp_req + rampart_req)); all_ramp_cpu=$((all_ramp_cpu + rc)); all_ramp_user=$((all_ramp_user + rampart_user))
  row bare "$round" "$bare_req" "$bc"
  row rampart "$round" "$rampart_req" "$rc"
  round_ratios+=("$(awk -v br="$bare_req" -v bc="$bc" -v rr="$rampart_req" -v rc="$rc" 'BEGIN { printf "%.3f", (rc/rr)/(bc/br) }')")
}

printf "%-8s %-6s %12s %10s %14s\n" proxy round requests req/s "cpu µs/req" >&2
case "$MODE" in
  alternate) PREFIX= ;;
  # Both at once as SCHED_BATCH processes (see the top).
  paired) PREFIX="chrt -b 0" ;;
  *) echo "MODE is alternate or paired, not $MODE" >&2; exit 2 ;;
esac
for round in $(seq "$ROUNDS"); do
  if [ "$MODE" = alternate ]; then
    measure bare
    measure rampart
  # Which proxy starts first, and is loaded first, alternates: the first place cost a proxy
  # ~1 % (measured with each proxy in each place), which alternating cancels.
  elif [ $((round % 2)) = 1 ]; then
    measure bare rampart
  else
    measure rampart bare
  fi
  add_round "$round"
done
lines=$(wc -l < "$tmp/access.log")
# The user/system split comes from the kernel's per-tick accounting: user time is the proxy's
# own code, system time mostly the sockets' (the same system calls for both proxies).
awk -v br="$all_bare_req" -v bc="$all_bare_cpu" -v rr="$all_ramp_req" -v rc="$all_ramp_cpu" -v hz="$HZ" -v d="$DURATION" \
    -v n="$ROUNDS" -v mode="$MODE" -v bt="$BARE_TIMEOUTS" -v rules="$RULES" -v lines="$lines" -v bu="$all_bare_user" -v ru="$all_ramp_user" 'BEGIN {
  b = bc/hz/br*1e6; r = rc/hz/rr*1e6
  printf "\nmode %s\nbare pingora%s: %.2f µs CPU/request, %.0f req/s\n", mode, bt == 1 ? " + the default upstream timeouts" : "", b, br/(d*n)
  printf "rampart (%d rules, access log on, %d lines written): %.2f µs CPU/request, %.0f req/s\n", rules, lines, r, rr/(d*n)
  printf "CPU per request, rampart/bare: %.3f    requests/s, rampart/bare: %.3f\n", r/b, rr/br
  bu = bu/hz/br*1e6; ru = ru/hz/rr*1e6
  printf "of which user: bare %.2f µs, rampart %.2f µs (%.3f); system: bare %.2f µs, rampart %.2f µs (%.3f)\n", bu, ru, ru/bu, b-bu, r-ru, (r-ru)/(b-bu)
}'
printf "per-round ratios: %s; median %s\n" "${round_ratios[*]}" \
  "$(printf "%s\n" "${round_ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
