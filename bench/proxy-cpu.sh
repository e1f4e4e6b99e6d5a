#!/usr/bin/env bash
# CPU time per proxied request and requests/s: rampart (with RULES inline rules and the
# access log on) against a bare Pingora proxy (examples/bare_pingora.rs), same machine, same
# run, small keep-alive GETs.
#
# Cores (the machines have 2): the proxy under test is pinned to core 0 with one worker
# thread; wrk (1 thread) and the upstream (nginx, 1 worker, answers "ok") share core 1.
# CPU per request = the proxy process's user+system time (all its threads, from
# /proc/PID/stat) divided by the requests wrk completed, also split into user and system time.
# Rounds alternate bare/rampart.
#
# Usage: bench/proxy-cpu.sh            (DURATION=8 CONNS=32 RULES=1000 ROUNDS=7 to change)
# The host's noise moves single rounds by up to ±15 %: the median of 7 or more rounds is steadier.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
RULES=${RULES:-1000}
ROUNDS=${ROUNDS:-7}
source bench/lib.sh
bench_setup nginx wrk

# measure NAME PID PORT → prints "requests cpu_ticks user_ticks"
measure() {
  local name=$1 pid=$2 port=$3
  wait_port "$port"
  taskset -c 1 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/bench" >/dev/null # warm-up
  local u0 s0 u1 s1 reqs
  read -r u0 s0 < <(user_system_ticks "$pid")
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/bench" > "$tmp/wrk.$name"
  read -r u1 s1 < <(user_system_ticks "$pid")
  reqs=$(wrk_requests "$tmp/wrk.$name")
  if grep -q "Non-2xx" "$tmp/wrk.$name"; then echo "$name: non-2xx responses" >&2; cat "$tmp/wrk.$name" >&2; exit 1; fi
  echo "$reqs $(( u1 + s1 - u0 - s0 )) $(( u1 - u0 ))"
}

bare_req=0; bare_cpu=0; ramp_req=0; ramp_cpu=0; bare_user=0; ramp_user=0
# Each round's own ratio (Rampart's CPU per request over the bare proxy's, measured a few
# seconds apart): their spread shows how much the host moved during the run.
round_ratios=()
printf "%-8s %-6s %12s %10s %14s\n" proxy round requests req/s "cpu µs/req" >&2
for round in $(seq "$ROUNDS"); do
  taskset -c 0 target/release/examples/bare_pingora "127.0.0.1:$BARE" "127.0.0.1:$UP" 1 2>/dev/null &
  pid=$!
  read -r req cpu user < <(measure bare "$pid" "$BARE")
  stop "$pid"
  bare_req=$((bare_req + req)); bare_cpu=$((bare_cpu + cpu)); bare_user=$((bare_user + user))
  row bare "$round" "$req" "$cpu"
  bare_round_req=$req; bare_round_cpu=$cpu

  RUST_LOG=warn taskset -c 0 target/release/rampart run -c "$tmp/rampart.yaml" 2>"$tmp/rampart.err" &
  pid=$!
  read -r req cpu user < <(measure rampart "$pid" "$RAMP")
  stop "$pid"
  ramp_req=$((ramp_req + req)); ramp_cpu=$((ramp_cpu + cpu)); ramp_user=$((ramp_user + user))
  row rampart "$round" "$req" "$cpu"
  round_ratios+=("$(awk -v br="$bare_round_req" -v bc="$bare_round_cpu" -v rr="$req" -v rc="$cpu" 'BEGIN { printf "%.3f", (rc/rr)/(bc/br) }')")
done
lines=$(wc -l < "$tmp/access.log")
# The user/system split comes from the kernel's per-tick accounting: user time is the proxy's
# own code, system time mostly the sockets' (the same system calls for both proxies).
awk -v br="$bare_req" -v bc="$bare_cpu" -v rr="$ramp_req" -v rc="$ramp_cpu" -v hz="$HZ" -v d="$DURATION" \
    -v n="$ROUNDS" -v rules="$RULES" -v lines="$lines" -v bu="$bare_user" -v ru="$ramp_user" 'BEGIN {
  b = bc/hz/br*1e6; r = rc/hz/rr*1e6
  printf "\nbare pingora: %.2f µs CPU/request, %.0f req/s\n", b, br/(d*n)
  printf "rampart (%d rules, access log on, %d lines written): %.2f µs CPU/request, %.0f req/s\n", rules, lines, r, rr/(d*n)
  printf "CPU per request, rampart/bare: %.3f    requests/s, rampart/bare: %.3f\n", r/b, rr/br
  bu = bu/hz/br*1e6; ru = ru/hz/rr*1e6
  printf "of which user: bare %.2f µs, rampart %.2f µs (%.3f); system: bare %.2f µs, rampart %.2f µs (%.3f)\n", bu, ru, ru/bu, b-bu, r-ru, (r-ru)/(b-bu)
}'
printf "per-round ratios: %s; median %s\n" "${round_ratios[*]}" \
  "$(printf "%s\n" "${round_ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
