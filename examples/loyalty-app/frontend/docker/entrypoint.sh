#!/bin/sh
# Frontend container entry: write config.json from API_BASE, then serve /www with busybox httpd.
# The shell stays PID 1 to pass SIGTERM on: busybox httpd as PID 1 ignores it (docker stop would
# wait for its timeout and SIGKILL).
set -eu

if [ -n "${API_BASE:-}" ]; then
    case $API_BASE in
        *'"'* | *'\'* | *' '*) echo "entrypoint: API_BASE must be a plain URL, got: $API_BASE" >&2; exit 2 ;;
    esac
    printf '{ "apiBase": "%s" }\n' "$API_BASE" >/www/config.json
fi

busybox httpd -f -p "${PORT:-8080}" -h /www -c /etc/httpd.conf &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
status=0
wait "$child" || status=$?
# After a trapped signal `wait` returns early: reap the child for its real status.
if kill -0 "$child" 2>/dev/null; then wait "$child" || status=$?; fi
# Stopped by our SIGTERM (143): a clean shutdown.
[ "$status" -eq 143 ] && status=0
exit "$status"
