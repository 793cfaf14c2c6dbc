#!/usr/bin/env bash
# Build the small local base images the tests and the example app use, without any registry.
#
#   scripts/build-base-images.sh [--force] [busybox] [node] [postgres] [redis]      (default: all four)
#
#   ci-actions/busybox:local   busybox-static with its applet symlinks, /etc/passwd, /tmp; CMD /bin/sh
#   ci-actions/node:local      the busybox rootfs plus this machine's node binary, the shared libraries
#                              ldd lists for it, and npm when it is installed; CMD node
#   ci-actions/postgres:local  the busybox rootfs plus Debian's postgresql-N server (the newest installed;
#                              PG_MAJOR=N picks one): its server and client programs, modules (no LLVM
#                              JIT), share dir, tzdata, the C.UTF-8 locale and their libraries. The
#                              entrypoint initialises PGDATA on first start (POSTGRES_USER, _PASSWORD, _DB
#                              as the official image), listens on 0.0.0.0:5432 with password auth for TCP,
#                              runs as uid 999 and turns SIGTERM into a fast shutdown; health: pg_isready
#   ci-actions/redis:local     the busybox rootfs plus Debian's redis-server and redis-cli and their
#                              libraries: redis-server in the foreground on 6379, no persistence by
#                              default (save ""), optional REDIS_PASSWORD, uid 999; health: redis-cli ping
#
# Each rootfs is packed with tar and loaded with `docker import`. An image is skipped when it exists
# and its label ci-actions.base.fingerprint matches its inputs (recipe, this script, the binaries,
# libraries and data files, by size and mtime); --force rebuilds anyway. Every built image is checked
# by running it (one that fails is untagged); the image a rebuild replaced is removed when nothing uses
# it. No package is installed here: scripts/setup installs postgresql and redis-server.
#
# Environment: BUSYBOX (static busybox binary, default `command -v busybox`), NODE (default
# `command -v node`), PG_MAJOR (default: the newest /usr/lib/postgresql/N), REDIS_SERVER (default
# `command -v redis-server`).
set -euo pipefail

RECIPE=1  # bump when the rootfs layout changes: every image gets rebuilt
BUSYBOX_TAG=ci-actions/busybox:local
NODE_TAG=ci-actions/node:local
POSTGRES_TAG=ci-actions/postgres:local
REDIS_TAG=ci-actions/redis:local
SERVICE_UID=999  # the postgres and redis users, as in the official images
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

FORCE=0
WANT=()
for arg in "$@"; do
    case $arg in
        --force) FORCE=1 ;;
        busybox | node | postgres | redis) WANT+=("$arg") ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-base-images: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done
[ "${#WANT[@]}" -gt 0 ] || WANT=(busybox node postgres redis)

log() { printf 'build-base-images: %s\n' "$*" >&2; }
die() { printf 'build-base-images: ERROR: %s\n' "$*" >&2; exit 1; }
reject() {
    # reject TAG MESSAGE: a just-built image failed its check; untag it (its label would pass the
    # "up to date" check next time) and fail.
    docker image rm "$1" >/dev/null 2>&1 || true
    die "$2"
}

timeout 15 docker info >/dev/null 2>&1 || die "no Docker engine answers; run scripts/ensure-docker.sh first"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

find_busybox() {
    local bb=${BUSYBOX:-$(command -v busybox || true)}
    [ -n "$bb" ] || die "busybox is not installed: apt-get install busybox-static"
    bb=$(readlink -f "$bb")
    # ldd refuses a static binary; a dynamic busybox would not run in a rootfs without its libc.
    if ldd "$bb" >/dev/null 2>&1; then
        die "$bb is dynamically linked; install the static one: apt-get install busybox-static"
    fi
    echo "$bb"
}

fingerprint() {
    # fingerprint FILE... [--trees DIR...]: the recipe, the script itself and the size+mtime of every
    # input file, and of every file under each DIR (fast: nothing but the script is hashed).
    local -a files=() trees=()
    while [ $# -gt 0 ]; do
        if [ "$1" = --trees ]; then
            shift
            trees=("$@")
            break
        fi
        files+=("$1")
        shift
    done
    {
        echo "recipe $RECIPE"
        sha256sum <"$0"
        stat -L -c '%n %s %Y' "${files[@]}"
        if [ "${#trees[@]}" -gt 0 ]; then find "${trees[@]}" -printf '%p %s %T@ %l\n' | LC_ALL=C sort; fi
    } | sha256sum | cut -c1-16
}

up_to_date() {
    # up_to_date TAG FINGERPRINT
    local have
    have=$(docker image inspect -f '{{index .Config.Labels "ci-actions.base.fingerprint"}}' "$1" 2>/dev/null) \
        || return 1
    if [ "$have" = "$2" ]; then return 0; fi
    log "$1 exists but was built from other inputs (fingerprint ${have:-none}, now $2): rebuilding"
    return 1
}

make_busybox_rootfs() {
    # make_busybox_rootfs DIR BUSYBOX
    local root=$1 bb=$2 applet
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,home,tmp,var/tmp,proc,sys,dev,run}
    chmod 1777 "$root/tmp" "$root/var/tmp"
    chmod 700 "$root/root"
    cp "$bb" "$root/bin/busybox"
    if [ "$(id -u)" -eq 0 ] && command -v chroot >/dev/null 2>&1; then
        # Applet symlinks at their usual paths (/bin/sh, /usr/bin/wget, /sbin/ifconfig, ...).
        chroot "$root" /bin/busybox --install -s
        rm -f "$root/linuxrc"
    else
        while read -r applet; do
            [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
        done < <("$root/bin/busybox" --list-full)
    fi
    [ -x "$root/bin/sh" ] || die "busybox --install did not create /bin/sh in the rootfs"
    cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
    # glibc (static busybox, node) reads this for host lookups; docker provides hosts/resolv.conf.
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

OWNED=()     # "UID:GID:./path" entries import_rootfs records with that owner (empty dirs, parents first)
REPLACED=""  # the image the last import_rootfs took the tag from, for retire_replaced

retire_replaced() {
    # retire_replaced TAG: after a rebuild passed its check, remove the image it replaced when nothing
    # names it any more (no force: one a container or another image still uses stays).
    local old=$REPLACED
    REPLACED=""
    [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$1")" ] || return 0
    if [ "$(docker image inspect -f '{{len .RepoTags}}' "$old" 2>/dev/null)" = 0 ]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
}

import_rootfs() {
    # import_rootfs DIR TAG CHANGE...
    local root=$1 tag=$2
    shift 2
    local -a changes=()
    local c
    for c in "$@"; do changes+=(--change "$c"); done
    REPLACED=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    if [ "${#OWNED[@]}" -eq 0 ]; then
        local -a tar_owner=(--numeric-owner)
        if [ "$(id -u)" -ne 0 ]; then tar_owner+=(--owner=0 --group=0); fi
        tar -C "$root" "${tar_owner[@]}" -cf - . | docker import "${changes[@]}" - "$tag" >/dev/null
        return
    fi
    # Everything root-owned, then the OWNED entries appended with their owner: the same image whether
    # or not this runs as root (a named volume mounted there inherits that owner and mode).
    local tarball=$WORK/rootfs.tar spec path ids
    local -a skip=()
    for spec in "${OWNED[@]}"; do
        path=${spec#*:*:}
        if [ ! -d "$root/$path" ] || [ -n "$(ls -A "$root/$path")" ]; then
            die "OWNED entry $path is not an empty directory"
        fi
        skip+=(--exclude="$path")
    done
    tar -C "$root" --numeric-owner --owner=0 --group=0 --anchored "${skip[@]}" -cf "$tarball" .
    for spec in "${OWNED[@]}"; do
        ids=${spec%:*}
        tar -C "$root" --numeric-owner --owner="${ids%%:*}" --group="${ids#*:}" --no-recursion \
            -rf "$tarball" "${spec#*:*:}"
    done
    docker import "${changes[@]}" - "$tag" <"$tarball" >/dev/null
    rm -f "$tarball"
}

build_busybox() {
    local bb fp out
    bb=$(find_busybox)
    fp=$(fingerprint "$bb")
    if [ "$FORCE" = 0 ] && up_to_date "$BUSYBOX_TAG" "$fp"; then
        log "$BUSYBOX_TAG is up to date"
        return 0
    fi
    log "building $BUSYBOX_TAG from $bb"
    make_busybox_rootfs "$WORK/busybox" "$bb"
    import_rootfs "$WORK/busybox" "$BUSYBOX_TAG" \
        'CMD ["/bin/sh"]' \
        "ENV PATH=$BASE_PATH" \
        "LABEL ci-actions.base.fingerprint=$fp" \
        "LABEL org.opencontainers.image.title=\"ci-actions busybox base (local)\""
    out=$(docker run --rm --network none "$BUSYBOX_TAG" echo ci-actions-ok)
    [ "$out" = ci-actions-ok ] || reject "$BUSYBOX_TAG" "$BUSYBOX_TAG does not run: '$out'"
    retire_replaced "$BUSYBOX_TAG"
    log "built $BUSYBOX_TAG ($(docker image inspect -f '{{.Size}}' "$BUSYBOX_TAG") bytes)"
}

elf_libs() {
    # elf_libs FILE...: the ELF interpreter and every library ldd resolves for the FILEs (programs or
    # shared objects), one absolute path per line; fails naming any library ldd does not find.
    local out missing
    out=$(ldd "$@" 2>&1) || die "ldd $* failed: $out"
    missing=$(grep 'not found' <<<"$out" || true)
    [ -z "$missing" ] || die "libraries missing on this machine (needed by $*): $missing"
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' <<<"$out" | sort -u
}

copy_with_path() {
    # copy_with_path FILE ROOT: copy FILE (dereferenced) to the same absolute path under ROOT.
    mkdir -p "$2$(dirname "$1")"
    cp -L "$1" "$2$1"
}

build_node() {
    local bb node version npm_dir="" fp root out lib
    bb=$(find_busybox)
    node=${NODE:-$(command -v node || true)}
    [ -n "$node" ] || die "node is not installed; install nodejs (or build only busybox: $0 busybox)"
    node=$(readlink -f "$node")
    version=$("$node" --version)
    local -a libs
    mapfile -t libs < <(elf_libs "$node")
    [ "${#libs[@]}" -gt 0 ] || die "ldd found no libraries for $node (a static node? then drop this check)"
    local npm_cli
    npm_cli=$(command -v npm || true)
    if [ -n "$npm_cli" ]; then
        npm_dir=$(readlink -f "$npm_cli")      # .../node_modules/npm/bin/npm-cli.js
        npm_dir=$(dirname "$(dirname "$npm_dir")")
        [ -f "$npm_dir/package.json" ] || npm_dir=""
    fi
    fp=$(fingerprint "$bb" "$node" "${libs[@]}" ${npm_dir:+"$npm_dir/package.json"})
    if [ "$FORCE" = 0 ] && up_to_date "$NODE_TAG" "$fp"; then
        log "$NODE_TAG is up to date ($version)"
        return 0
    fi
    log "building $NODE_TAG from $node ($version) and ${#libs[@]} libraries"
    root=$WORK/node
    make_busybox_rootfs "$root" "$bb"
    echo 'node:x:1000:1000:node:/home/node:/bin/sh' >>"$root/etc/passwd"
    echo 'node:x:1000:' >>"$root/etc/group"
    mkdir -p "$root/home/node"
    if [ "$(id -u)" -eq 0 ]; then chown 1000:1000 "$root/home/node"; fi
    cp "$node" "$root/usr/local/bin/node"
    for lib in "${libs[@]}"; do copy_with_path "$lib" "$root"; done
    if [ -n "$npm_dir" ]; then
        mkdir -p "$root/usr/local/lib/node_modules"
        cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
        ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
        ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
    fi
    import_rootfs "$root" "$NODE_TAG" \
        'CMD ["node"]' \
        "ENV PATH=$BASE_PATH" \
        "ENV NODE_VERSION=$version" \
        "LABEL ci-actions.base.fingerprint=$fp" \
        "LABEL ci-actions.base.node-version=$version" \
        "LABEL org.opencontainers.image.title=\"ci-actions node runtime (local, from $node)\""
    out=$(docker run --rm --network none "$NODE_TAG" node --version 2>&1) || true
    [ "$out" = "$version" ] || reject "$NODE_TAG" "$NODE_TAG: 'node --version' printed '$out', expected $version"
    if [ -n "$npm_dir" ]; then
        out=$(docker run --rm --network none "$NODE_TAG" npm --version 2>&1) \
            || reject "$NODE_TAG" "$NODE_TAG: 'npm --version' fails: $out"
    fi
    retire_replaced "$NODE_TAG"
    log "built $NODE_TAG ($version${npm_dir:+, npm $out}, $(docker image inspect -f '{{.Size}}' "$NODE_TAG") bytes)"
}

service_rootfs() {
    # service_rootfs DIR NAME HOME: the busybox rootfs plus user/group NAME (uid SERVICE_UID) and HOME.
    local root=$1 name=$2 home=$3
    make_busybox_rootfs "$root" "$(find_busybox)"
    echo "$name:x:$SERVICE_UID:$SERVICE_UID:$name:$home:/bin/sh" >>"$root/etc/passwd"
    echo "$name:x:$SERVICE_UID:" >>"$root/etc/group"
    rm -rf "$root/var/run"
    ln -s ../run "$root/var/run"
}

copy_tree() {
    # copy_tree DIR ROOT [EXCLUDE...]: DIR (links kept) to the same absolute path under ROOT.
    local dir=$1 root=$2 x
    shift 2
    local -a excludes=()
    for x in "$@"; do excludes+=(--exclude="$x"); done
    mkdir -p "$root$dir"
    tar -C "$dir" "${excludes[@]}" -cf - . | tar -C "$root$dir" -xf -
}

find_postgres() {
    # The major version of the Debian postgresql-N server to use: PG_MAJOR, else the newest installed.
    local major=${PG_MAJOR:-} bin n
    if [ -z "$major" ]; then
        for bin in /usr/lib/postgresql/*/bin/postgres; do
            [ -x "$bin" ] || continue
            n=${bin#/usr/lib/postgresql/}
            n=${n%%/*}
            [[ $n =~ ^[0-9]+$ ]] || continue
            if [ -z "$major" ] || [ "$n" -gt "$major" ]; then major=$n; fi
        done
    fi
    [ -x "/usr/lib/postgresql/${major:-none}/bin/postgres" ] \
        || die "no PostgreSQL ${PG_MAJOR:+$PG_MAJOR }server in /usr/lib/postgresql: apt-get install postgresql (scripts/setup does), or build the others only: $0 busybox node redis"
    echo "$major"
}

# The postgres entrypoint (busybox sh). Initialises an empty PGDATA like the official image (without
# /docker-entrypoint-initdb.d), creates POSTGRES_DB in single-user mode (no server listens, so the health
# check stays red until the real server is up), then runs postgres as its child: SIGTERM and SIGINT both
# become SIGINT (fast shutdown: clients are disconnected, not waited for) and it exits with postgres.
POSTGRES_ENTRYPOINT=$(cat <<'SCRIPT'
#!/bin/sh
set -eu
die() { printf 'postgres-entrypoint: ERROR: %s\n' "$*" >&2; exit 1; }
log() { printf 'postgres-entrypoint: %s\n' "$*" >&2; }

case ${1:-postgres} in
    postgres) [ "$#" -eq 0 ] || shift ;;
    -*) ;;
    *) exec "$@" ;;
esac
for arg; do
    case $arg in -V | --version | '-?' | --help | --describe-config | -C) exec postgres "$@" ;; esac
done
[ "$(id -u)" != 0 ] || die "runs as the image's postgres user (uid 999), not as root; give a bind-mounted PGDATA to uid 999 instead"
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    password=${POSTGRES_PASSWORD:-}
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        [ -z "$password" ] || die "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, not both"
        password=$(cat "$POSTGRES_PASSWORD_FILE") || die "cannot read POSTGRES_PASSWORD_FILE=$POSTGRES_PASSWORD_FILE"
    fi
    case $auth in
        scram-sha-256 | md5 | password | trust) ;;
        *) die "POSTGRES_HOST_AUTH_METHOD=$auth: use scram-sha-256 (the default), md5, password or trust" ;;
    esac
    if [ -z "$password" ] && [ "$auth" != trust ]; then
        die "POSTGRES_PASSWORD is empty: set it (TCP clients log in with it), or POSTGRES_HOST_AUTH_METHOD=trust to let any TCP client in without one"
    fi
    if ! mkdir -p "$PGDATA" 2>/dev/null || [ ! -w "$PGDATA" ]; then
        die "PGDATA $PGDATA is not writable by uid $(id -u): mount a named volume there, or a directory owned by uid 999"
    fi
    log "initialising $PGDATA (user $user, database $db, TCP auth $auth)"
    umask 077
    pwfile=
    if [ -n "$password" ]; then
        pwfile=$(mktemp)
        printf '%s\n' "$password" >"$pwfile"
    fi
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words, as in the official image
    initdb --pgdata="$PGDATA" --username="$user" ${pwfile:+--pwfile="$pwfile"} --auth-local=trust \
        --auth-host="$auth" --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null \
        || { rm -f "$pwfile"; die "initdb failed (see above)"; }
    rm -f "$pwfile"
    cat >"$PGDATA/pg_hba.conf" <<HBA
# written by the ci-actions/postgres:local entrypoint: the socket (inside the container) trusts,
# TCP clients log in with a password ($auth)
# TYPE  DATABASE     USER  ADDRESS  METHOD
local   all          all            trust
host    all          all   all      $auth
local   replication  all            trust
host    replication  all   all      $auth
HBA
    cat >>"$PGDATA/postgresql.conf" <<CONF

# ci-actions/postgres:local
listen_addresses = '*'
unix_socket_directories = '/var/run/postgresql'
jit = off    # the image has no LLVM
CONF
    if [ "$db" != postgres ]; then
        out=$(printf 'CREATE DATABASE "%s";\n' "$(printf '%s' "$db" | sed 's/"/""/g')" \
            | postgres --single -D "$PGDATA" -c listen_addresses= -c log_min_messages=error postgres 2>&1 >/dev/null) \
            || die "creating database $db failed: $out"
        case $out in *ERROR:* | *FATAL:*) die "creating database $db failed: $out" ;; esac
    fi
    log "initialised; starting postgres"
fi

postgres "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null || true' TERM INT
set +e
while :; do
    wait "$pid"
    status=$?
    kill -0 "$pid" 2>/dev/null || exit "$status"
done
SCRIPT
)

build_postgres() {
    local bb major bindir libdir sharedir version pkg fp root out prog lib
    bb=$(find_busybox)
    major=$(find_postgres)
    bindir=/usr/lib/postgresql/$major/bin
    libdir=/usr/lib/postgresql/$major/lib
    sharedir=/usr/share/postgresql/$major
    if [ ! -d "$libdir" ] || [ ! -f "$sharedir/postgres.bki" ]; then
        die "$libdir or $sharedir is missing: reinstall postgresql-$major"
    fi
    [ -d /usr/lib/locale/C.utf8 ] || die "/usr/lib/locale/C.utf8 is missing (libc-bin ships it)"
    [ -f /usr/share/zoneinfo/Etc/UTC ] || die "/usr/share/zoneinfo is missing: apt-get install tzdata"
    # initdb's collation import runs `locale -a` (busybox has no locale applet)
    [ -x /usr/bin/locale ] || die "/usr/bin/locale is missing (libc-bin ships it)"
    local -a progs=() modules=() libs=()
    for prog in postgres initdb pg_ctl pg_isready psql pg_dump pg_dumpall pg_restore createdb dropdb \
        createuser dropuser pg_controldata; do
        [ -x "$bindir/$prog" ] || die "$bindir/$prog is missing: install postgresql-$major and postgresql-client-$major"
        progs+=("$bindir/$prog")
    done
    for lib in "$libdir"/*.so; do
        case ${lib##*/} in llvmjit*) continue ;; esac  # the JIT pulls in LLVM (≈130 MB); jit = off
        modules+=("$lib")
    done
    out=$(elf_libs "${progs[@]}" "${modules[@]}" /usr/bin/locale)
    mapfile -t libs <<<"$out"
    version=$("$bindir/postgres" --version | awk '{ print $3 }')
    pkg=$(dpkg-query -W -f '${Package} ${Version}' "postgresql-$major" 2>/dev/null || echo "postgresql-$major")
    fp=$(fingerprint "$bb" "${progs[@]}" "${modules[@]}" /usr/bin/locale "${libs[@]}" \
        --trees "$sharedir" /usr/share/zoneinfo /usr/lib/locale/C.utf8)
    if [ "$FORCE" = 0 ] && up_to_date "$POSTGRES_TAG" "$fp"; then
        log "$POSTGRES_TAG is up to date (PostgreSQL $version)"
        return 0
    fi
    log "building $POSTGRES_TAG from $pkg (${#progs[@]} programs, ${#modules[@]} modules, ${#libs[@]} libraries)"
    root=$WORK/postgres
    service_rootfs "$root" postgres /var/lib/postgresql
    mkdir -p "$root$bindir" "$root$libdir" "$root/usr/lib/locale" "$root/var/lib/postgresql/data" "$root/run/postgresql"
    chmod 700 "$root/var/lib/postgresql/data"
    chmod 2775 "$root/run/postgresql"
    for prog in "${progs[@]}"; do cp "$prog" "$root$prog"; done
    for lib in "${modules[@]}"; do cp "$lib" "$root$lib"; done
    for lib in "${libs[@]}"; do copy_with_path "$lib" "$root"; done
    copy_tree "$sharedir" "$root" ./man
    copy_tree /usr/share/zoneinfo "$root" ./right ./localtime
    cp -a /usr/lib/locale/C.utf8 "$root/usr/lib/locale/"
    cp /usr/bin/locale "$root/usr/bin/locale"
    ln -s /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"
    printf '%s\n' "$POSTGRES_ENTRYPOINT" >"$root/usr/local/bin/docker-entrypoint.sh"
    chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
    OWNED=("$SERVICE_UID:$SERVICE_UID:./var/lib/postgresql/data" "$SERVICE_UID:$SERVICE_UID:./run/postgresql")
    # /var/lib/postgresql itself stays root's: only the data dir (and a volume mounted there) is the user's.
    # shellcheck disable=SC2016  # the health check expands in the container's shell
    import_rootfs "$root" "$POSTGRES_TAG" \
        'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
        'CMD ["postgres"]' \
        "USER $SERVICE_UID:$SERVICE_UID" \
        'WORKDIR /var/lib/postgresql' \
        'EXPOSE 5432' \
        "ENV PATH=$bindir:$BASE_PATH" \
        'ENV PGDATA=/var/lib/postgresql/data' \
        'ENV LANG=C.UTF-8' \
        "ENV PG_MAJOR=$major" \
        "ENV PG_VERSION=$version" \
        'HEALTHCHECK --interval=1s --timeout=5s --start-period=60s --retries=5 CMD pg_isready -q -h 127.0.0.1 -p 5432 -U "${POSTGRES_USER:-postgres}" -d "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"' \
        "LABEL ci-actions.base.fingerprint=$fp" \
        "LABEL ci-actions.base.postgres-version=$version" \
        "LABEL ci-actions.base.source=\"$pkg\"" \
        "LABEL org.opencontainers.image.title=\"ci-actions postgres (local, from Debian $pkg)\""
    OWNED=()
    out=$(docker run --rm --network none "$POSTGRES_TAG" \
        sh -c 'postgres --version && psql --version && pg_isready --version && id -u' 2>&1) || true
    case $out in
        *"$version"*"$version"*"$version"*"$SERVICE_UID") ;;
        *) reject "$POSTGRES_TAG" "$POSTGRES_TAG does not run its programs: '$out'" ;;
    esac
    retire_replaced "$POSTGRES_TAG"
    log "built $POSTGRES_TAG (PostgreSQL $version, $(docker image inspect -f '{{.Size}}' "$POSTGRES_TAG") bytes)"
}

REDIS_CONF='# ci-actions/redis:local defaults: a server for tests and caches, nothing persisted unless asked
# (append options to the command: --appendonly yes, --save "60 1", ...; data dir /data)
bind * -::*
port 6379
protected-mode no
daemonize no
supervised no
dir /data
logfile ""
save ""
appendonly no'

# The redis entrypoint: redis-server in the foreground as PID 1 (it handles SIGTERM itself). A
# REDIS_PASSWORD goes into a private config file, never onto a command line that ps shows.
REDIS_ENTRYPOINT=$(cat <<'SCRIPT'
#!/bin/sh
set -eu
case ${1:-redis-server} in
    redis-server) [ "$#" -eq 0 ] || shift ;;
    -*) ;;
    *) exec "$@" ;;
esac
if [ "$(id -u)" = 0 ]; then
    printf 'redis-entrypoint: ERROR: runs as the image'"'"'s redis user (uid 999), not as root\n' >&2
    exit 1
fi
conf=/etc/redis/redis.conf
if [ -n "${REDIS_PASSWORD:-}" ]; then
    umask 077
    conf=$(mktemp /tmp/redis-conf.XXXXXX)
    {
        echo 'include /etc/redis/redis.conf'
        printf 'requirepass "%s"\n' "$(printf '%s' "$REDIS_PASSWORD" | sed 's/\\/\\\\/g; s/"/\\"/g')"
    } >"$conf"
fi
exec redis-server "$conf" "$@"
SCRIPT
)

build_redis() {
    local bb server cli version pkg fp root out lib
    bb=$(find_busybox)
    server=${REDIS_SERVER:-$(command -v redis-server || true)}
    [ -n "$server" ] || die "redis-server is not installed: apt-get install redis-server (scripts/setup does), or build the others only: $0 busybox node postgres"
    # Not resolved: Debian's redis-server is a link to redis-check-rdb, and the binary acts by its name.
    cli=$(command -v redis-cli || true)
    [ -n "$cli" ] || die "redis-cli is not installed: apt-get install redis-tools"
    local -a libs
    out=$(elf_libs "$server" "$cli")
    mapfile -t libs <<<"$out"
    version=$("$server" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
    pkg=$(dpkg-query -W -f '${Package} ${Version}' redis-server 2>/dev/null || echo redis-server)
    fp=$(fingerprint "$bb" "$server" "$cli" "${libs[@]}")
    if [ "$FORCE" = 0 ] && up_to_date "$REDIS_TAG" "$fp"; then
        log "$REDIS_TAG is up to date (Redis $version)"
        return 0
    fi
    log "building $REDIS_TAG from $server ($pkg) and ${#libs[@]} libraries"
    root=$WORK/redis
    service_rootfs "$root" redis /data
    mkdir -p "$root/etc/redis" "$root/data"
    chmod 750 "$root/data"
    cp -L "$server" "$root/usr/bin/redis-server"
    cp -L "$cli" "$root/usr/bin/redis-cli"
    ln -s redis-server "$root/usr/bin/redis-check-rdb"
    ln -s redis-server "$root/usr/bin/redis-check-aof"
    for lib in "${libs[@]}"; do copy_with_path "$lib" "$root"; done
    printf '%s\n' "$REDIS_CONF" >"$root/etc/redis/redis.conf"
    printf '%s\n' "$REDIS_ENTRYPOINT" >"$root/usr/local/bin/docker-entrypoint.sh"
    chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
    OWNED=("$SERVICE_UID:$SERVICE_UID:./data")
    # shellcheck disable=SC2016  # the health check expands in the container's shell
    import_rootfs "$root" "$REDIS_TAG" \
        'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
        'CMD ["redis-server"]' \
        "USER $SERVICE_UID:$SERVICE_UID" \
        'WORKDIR /data' \
        'EXPOSE 6379' \
        "ENV PATH=$BASE_PATH" \
        "ENV REDIS_VERSION=$version" \
        'HEALTHCHECK --interval=1s --timeout=3s --start-period=30s --retries=5 CMD [ -z "$REDIS_PASSWORD" ] || export REDISCLI_AUTH="$REDIS_PASSWORD"; [ "$(redis-cli -h 127.0.0.1 -p 6379 ping)" = PONG ]' \
        "LABEL ci-actions.base.fingerprint=$fp" \
        "LABEL ci-actions.base.redis-version=$version" \
        "LABEL ci-actions.base.source=\"$pkg\"" \
        "LABEL org.opencontainers.image.title=\"ci-actions redis (local, from Debian $pkg)\""
    OWNED=()
    out=$(docker run --rm --network none "$REDIS_TAG" sh -c 'redis-server --version && redis-cli --version && id -u' 2>&1) \
        || true
    case $out in
        *"v=$version "*"$version"*"$SERVICE_UID") ;;
        *) reject "$REDIS_TAG" "$REDIS_TAG does not run its programs: '$out'" ;;
    esac
    retire_replaced "$REDIS_TAG"
    log "built $REDIS_TAG (Redis $version, $(docker image inspect -f '{{.Size}}' "$REDIS_TAG") bytes)"
}

for image in "${WANT[@]}"; do
    "build_$image"
done
