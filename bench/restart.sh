#!/usr/bin/env bash
# Graceful restart behind SO_REUSEPORT under wrk load: a second `quiver serve --takeover`
# starts on the same address, then the first gets SIGTERM. Prints wrk's totals and errors.
#   bench/restart.sh                 # 1 worker, tcp_migrate_req=1
#   WORKERS=2 MIGRATE=0 bench/restart.sh
# Needs root to set net.ipv4.tcp_migrate_req (restored on exit).
set -euo pipefail
QUIVER=${QUIVER:-quiver}
WORKERS=${WORKERS:-1}
MIGRATE=${MIGRATE:-1}
DURATION=${DURATION:-8}
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nginx wrk >/dev/null
fi
work=$(mktemp -d)
sysctl_file=/proc/sys/net/ipv4/tcp_migrate_req
previous=$(cat "$sysctl_file" 2>/dev/null || echo "")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    if [ -f "$work/nginx.pid" ]; then kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
    if [ -n "$previous" ]; then echo "$previous" > "$sysctl_file" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_log() { for _ in $(seq 100); do grep -q "listening on" "$1" && return 0; sleep 0.1; done; cat "$1"; return 1; }

backend=$(free_port)
port=$(free_port)
echo "$MIGRATE" > "$sysctl_file"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$backend; location / { return 200 '{"ok":true}'; } }
}
CONF
taskset -c 0 nginx -p "$work" -c "$work/nginx.conf" -g 'daemon on;'
cat > "$work/quiver.yaml" <<CONF
listen: 127.0.0.1:$port
workers: $WORKERS
targets: [{name: backend, url: "http://127.0.0.1:$backend"}]
routes: [{name: all, paths: ["/"], target: backend}]
CONF
export QUIVER_RUN_DIR="$work/run"
taskset -c 1 "$QUIVER" serve -c "$work/quiver.yaml" 2> "$work/old.log" & old=$!; pids+=("$old")
wait_log "$work/old.log"
taskset -c 0 wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:$port/" > "$work/wrk.log" & load=$!
sleep 2
taskset -c 1 "$QUIVER" serve -c "$work/quiver.yaml" --takeover 2> "$work/new.log" & new=$!; pids+=("$new")
wait_log "$work/new.log"
sleep 0.5
kill -TERM "$old"
wait "$old" && echo "old server exited cleanly"
wait "$load"
echo "workers=$WORKERS tcp_migrate_req=$MIGRATE"
grep -E "requests in|Socket errors|Non-2xx" "$work/wrk.log"
if grep -q -E "Socket errors|Non-2xx" "$work/wrk.log"; then exit 3; fi
echo "no errors"
