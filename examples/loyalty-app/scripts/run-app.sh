#!/usr/bin/env bash
# The app from the workspace, as two processes on free loopback ports, for an E2E job that has no images
# yet (the pipeline builds them once, in parallel): the backend's `node dist/server.js` against the job's
# own Postgres and Redis (DATABASE_URL, REDIS_URL), migrated first, and the frontend's dist/ served by
# `vite preview`, which proxies /api to that backend (vite.config.ts), so the page and API share one
# origin. Build both dirs first (`npm run build`).
#
#   scripts/run-app.sh start     migrate, start both, wait (bounded) until both answer; prints
#                                E2E_BASE_URL=... and adds it to $GITHUB_ENV when set
#   scripts/run-app.sh stop      SIGTERM both (by their pid files), SIGKILL after 15 s; their log tails
#
# The pid files and logs are in $APP_RUN_DIR (default $RUNNER_TEMP/loyalty-app).
set -euo pipefail

app=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${APP_RUN_DIR:-${RUNNER_TEMP:-/tmp/loyalty-app-$UID}/loyalty-app}
wait_seconds=${APP_START_TIMEOUT:-60}

free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

answers() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

start_one() {  # name, folder, command...: its own session, so stop ends it and its children
    local name=$1 dir=$2
    shift 2
    (cd "$dir" && exec setsid "$@" >"$run_dir/$name.log" 2>&1 </dev/null) &
    echo $! >"$run_dir/$name.pid"
}

stop_all() {
    local name pid
    for name in frontend backend; do
        [ -f "$run_dir/$name.pid" ] || continue
        pid=$(cat "$run_dir/$name.pid")
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f "$run_dir/$name.pid"
        echo "--- $name log (last 20 lines)"
        tail -n 20 "$run_dir/$name.log" 2>/dev/null || true
    done
}

case ${1:-} in
    start)
        : "${DATABASE_URL:?DATABASE_URL is not set: start the job's Postgres first (test-services)}"
        : "${REDIS_URL:?REDIS_URL is not set: start the job's Redis first (test-services)}"
        for built in backend/dist/server.js frontend/dist/index.html; do
            [ -f "$app/$built" ] || { echo "::error::$built is missing: run npm run build in both dirs first"; exit 1; }
        done
        mkdir -p "$run_dir"
        (cd "$app/backend" && node dist/migrate.js)
        backend_port=$(free_port)
        frontend_port=$(free_port)
        PORT=$backend_port HOST=127.0.0.1 QUIET=1 start_one backend "$app/backend" node dist/server.js
        BACKEND_URL=http://127.0.0.1:$backend_port start_one frontend "$app/frontend" \
            node_modules/.bin/vite preview --host 127.0.0.1 --port "$frontend_port" --strictPort
        base=http://127.0.0.1:$frontend_port
        for _ in $(seq $((wait_seconds * 5))); do
            if answers "$base/" && answers "$base/api/health"; then
                echo "E2E_BASE_URL=$base"
                [ -z "${GITHUB_ENV:-}" ] || echo "E2E_BASE_URL=$base" >>"$GITHUB_ENV"
                exit 0
            fi
            sleep 0.2
        done
        echo "::error::the app did not answer on $base (page and /api/health) within ${wait_seconds}s"
        stop_all
        exit 1
        ;;
    stop) stop_all ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
