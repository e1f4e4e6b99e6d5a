# Shared by the bench scripts: ports, readiness, the nginx upstream and Rampart's bench config.
# shellcheck shell=bash

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT [SECONDS]: poll until something accepts on 127.0.0.1:PORT.
wait_port() {
  local deadline=$(( $(date +%s) + ${2:-10} ))
  until (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "port $1 never opened" >&2; exit 1; }
    sleep 0.05
  done
}

# start_nginx_upstream DIR PORT [CORE]: one nginx worker answering "ok", pinned to CORE (1).
start_nginx_upstream() {
  cat > "$1/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$2; location / { return 200 "ok\n"; } }
}
NGINX
  taskset -c "${3:-1}" nginx -c "$1/nginx.conf" -p "$1" &
}

# rampart_bench_config DIR LISTEN_PORT ADMIN_PORT UPSTREAM_PORT RULES: one catch-all project
# with RULES inline rules: 96% exact paths (the SEO-migration shape), 3% prefixes, 1% regexes;
# none matches /bench, so every request consults the rules and is forwarded. Access log on.
rampart_bench_config() {
  cat <<YAML
server: { threads: 1, pid_file: $1/rampart.pid, upgrade_sock: $1/upgrade.sock }
admin: { listen: "127.0.0.1:$3" }
access_log: { target: $1/access.log, format: combined }
listeners:
  http: { address: "127.0.0.1:$2" }
pools:
  app: { backends: ["127.0.0.1:$4"], health_check: { kind: tcp, interval: 5s } }
projects:
  - name: bench
    hosts: ["*"]
    pool: app
    rules:
YAML
  python3 - "$5" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    if i % 100 == 0:
        print(f"      - {{ id: re{i}, match: {{ path_regex: '^/article/{i}/([0-9]+)$' }}, redirect: {{ to: '/a/{i}/{{1}}' }} }}")
    elif i % 25 == 0:
        print(f"      - {{ id: pre{i}, match: {{ path_prefix: /section-{i}/ }}, rewrite: {{ path: '/s{i}/{{rest}}' }} }}")
    else:
        print(f"      - {{ id: old{i}, match: {{ path: /old/page-{i}.html }}, redirect: {{ to: /new/page-{i} }} }}")
PY
}

HZ=$(getconf CLK_TCK)

# cpu_ticks PID: user+system time of the whole process so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# user_system_ticks PID: "user system" time of the whole process so far, in clock ticks.
user_system_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

# wrk_requests FILE: the requests a saved wrk report completed.
wrk_requests() { awk '/requests in/ {print $1}' "$1"; }

# stop PID: SIGINT, then wait for it.
stop() { kill -INT "$1"; wait "$1" 2>/dev/null || true; }

# row LABEL ROUND REQUESTS CPU_TICKS: one result line on stderr, over DURATION seconds.
row() { awk -v p="$1" -v n="$2" -v r="$3" -v c="$4" -v hz="$HZ" -v d="$DURATION" 'BEGIN { printf "%-8s %-6s %12d %10.0f %14.2f\n", p, n, r, r/d, c/hz/r*1e6 }' >&2; }

# bench_init EXAMPLE APT_PACKAGES...: installs the tools, builds rampart and the reference
# EXAMPLE, and makes tmp (removed on exit, with every background job).
bench_init() {
  local example=$1
  shift
  scripts/deps.sh "$@"
  cargo build --release --locked --bin rampart --example "$example" >&2
  tmp=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
}

# bench_setup APT_PACKAGES...: bench_init with bare_pingora, then starts the nginx upstream
# on core 1 and writes Rampart's config with RULES rules. Sets UP, BARE, RAMP and ADMIN (ports).
bench_setup() {
  bench_init bare_pingora "$@"
  UP=$(free_port); BARE=$(free_port); RAMP=$(free_port); ADMIN=$(free_port)
  start_nginx_upstream "$tmp" "$UP"
  rampart_bench_config "$tmp" "$RAMP" "$ADMIN" "$UP" "$RULES" > "$tmp/rampart.yaml"
  target/release/rampart check -c "$tmp/rampart.yaml" | head -3 >&2
  wait_port "$UP"
}
