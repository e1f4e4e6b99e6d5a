#!/usr/bin/env bash
# 100 000 redirects: Rampart (a CSV rules file) against nginx (the same redirects in a `map`)
# and against bare Pingora answering from a hash map (examples/bare_redirect.rs: Pingora's own
# share of the cost), same machine, same run. Both answer every request themselves: wrk asks for random paths
# among the 100 000 sources, with keep-alive. (A miss would be answered 404 by nginx but
# proxied by Rampart to its pool, a local nginx answering 404; only the answers are checked.)
#
# Cores (the machines have 2): the server under test is pinned to core 0 with one worker
# (Rampart and bare Pingora: threads: 1; nginx: worker_processes 1); wrk (1 thread) and Rampart's miss upstream
# share core 1 (the upstream gets no traffic: every request is a redirect). Each server saturates core 0, so requests/s compare at equal CPU (one core);
# CPU per request is the process's user+system time over the completed requests.
#
# Usage: bench/redirects-vs-nginx.sh   (DURATION=10 CONNS=32 REDIRECTS=100000 ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
REDIRECTS=${REDIRECTS:-100000}
ROUNDS=${ROUNDS:-2}
source bench/lib.sh
bench_init bare_redirect nginx wrk bc
MISS=$(free_port); RAMP=$(free_port); ADMIN=$(free_port); NGX=$(free_port); BARE=$(free_port)
mkdir -p "$tmp/miss" "$tmp/ngx"
start_nginx_upstream "$tmp/miss" "$MISS"

python3 - "$REDIRECTS" "$tmp" <<'PY'
import sys
n, d = int(sys.argv[1]), sys.argv[2]
with open(f"{d}/redirects.csv", "w") as csv, open(f"{d}/map.conf", "w") as m:
    csv.write("source,target,status\n")
    for i in range(n):
        csv.write(f"/old/page-{i}.html,/new/page-{i},301\n")
        m.write(f"/old/page-{i}.html /new/page-{i};\n")
with open(f"{d}/paths.lua", "w") as l:
    l.write(f"""
math.randomseed(42)
request = function()
  local i = math.random(0, {n - 1})
  return wrk.format("GET", "/old/page-" .. i .. ".html")
end
""")
PY

cat > "$tmp/rampart.yaml" <<YAML
server: { threads: 1, pid_file: $tmp/rampart.pid, upgrade_sock: $tmp/upgrade.sock }
admin: { listen: "127.0.0.1:$ADMIN" }
access_log: { target: off }
listeners:
  http: { address: "127.0.0.1:$RAMP" }
pools:
  app: { backends: ["127.0.0.1:$MISS"] }
projects:
  - name: bench
    hosts: ["*"]
    pool: app
    rules_files: ["$tmp/redirects.csv"]
YAML
cat > "$tmp/ngx/nginx.conf" <<NGINX
worker_processes 1;
master_process off;  # one process, so its CPU time is the server's
daemon off;
pid $tmp/ngx/nginx.pid;
error_log $tmp/ngx/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  map_hash_max_size 262144;
  map_hash_bucket_size 128;
  map \$uri \$redirect_to {
    default "";
    include $tmp/map.conf;
  }
  server {
    listen 127.0.0.1:$NGX;
    location / {
      if (\$redirect_to) { return 301 \$redirect_to; }
      return 404;
    }
  }
}
NGINX
start=$(date +%s.%N)
target/release/rampart check -c "$tmp/rampart.yaml" | head -4 >&2
echo "rampart check with $REDIRECTS redirects: $(echo "$(date +%s.%N) - $start" | bc) s" >&2
wait_port "$MISS"

# measure NAME PID PORT → "requests cpu_ticks"
measure() {
  taskset -c 1 wrk -t1 -c"$CONNS" -d2s -s "$tmp/paths.lua" "http://127.0.0.1:$3" >/dev/null
  local t0 t1
  t0=$(cpu_ticks "$2")
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$tmp/paths.lua" "http://127.0.0.1:$3" > "$tmp/wrk.$1"
  t1=$(cpu_ticks "$2")
  echo "$(wrk_requests "$tmp/wrk.$1") $((t1 - t0))"
}
# Both must answer the same thing: a sample of hits and a miss.
check_answers() {
  local loc
  loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$1/old/page-$((REDIRECTS / 2)).html")
  [ "$loc" = "301 http://127.0.0.1:$1/new/page-$((REDIRECTS / 2))" ] || [ "$loc" = "301 /new/page-$((REDIRECTS / 2))" ] || { echo "$2 answered: $loc" >&2; exit 1; }
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/old/page-$REDIRECTS.html")" != 301 ] || { echo "$2: a miss was redirected" >&2; exit 1; }
}

declare -A req cpu
printf "%-8s %-6s %12s %10s %14s\n" server round requests req/s "cpu µs/req" >&2
for round in $(seq "$ROUNDS"); do
  for name in nginx bare rampart; do
    if [ $name = nginx ]; then
      taskset -c 0 nginx -c "$tmp/ngx/nginx.conf" -p "$tmp/ngx" & pid=$!; port=$NGX
    elif [ $name = bare ]; then
      taskset -c 0 target/release/examples/bare_redirect "127.0.0.1:$BARE" "$tmp/redirects.csv" 1 2>"$tmp/bare.err" & pid=$!; port=$BARE
    else
      RUST_LOG=warn taskset -c 0 target/release/rampart run -c "$tmp/rampart.yaml" 2>"$tmp/rampart.err" & pid=$!; port=$RAMP
    fi
    wait_port "$port" 60
    check_answers "$port" "$name"
    read -r r c < <(measure "$name" "$pid" "$port")
    stop "$pid"
    req[$name]=$(( ${req[$name]:-0} + r )); cpu[$name]=$(( ${cpu[$name]:-0} + c ))
    row "$name" "$round" "$r" "$c"
  done
done
awk -v nr="${req[nginx]}" -v nc="${cpu[nginx]}" -v br="${req[bare]}" -v bc="${cpu[bare]}" -v rr="${req[rampart]}" -v rc="${cpu[rampart]}" -v hz="$HZ" -v d="$DURATION" -v n="$ROUNDS" -v k="$REDIRECTS" 'BEGIN {
  a = nc/hz/nr*1e6; b = bc/hz/br*1e6; c = rc/hz/rr*1e6
  printf "\n%d redirects, random hits, keep-alive, one core each\n", k
  printf "nginx map:            %.0f req/s, %.2f µs CPU/request\n", nr/(d*n), a
  printf "bare Pingora, hash:   %.0f req/s, %.2f µs CPU/request\n", br/(d*n), b
  printf "rampart CSV:          %.0f req/s, %.2f µs CPU/request\n", rr/(d*n), c
  printf "requests/s, rampart/nginx: %.3f   bare Pingora/nginx: %.3f   rampart/bare Pingora: %.3f\n", rr/nr, br/nr, rr/br
}'
