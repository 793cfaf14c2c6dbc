#!/usr/bin/env bash
# Build the small local base images the tests and the example app use, without any registry.
#
#   scripts/build-base-images.sh [--force] [busybox] [node]      (default: both)
#
#   ci-actions/busybox:local  busybox-static with its applet symlinks, /etc/passwd, /tmp; CMD /bin/sh
#   ci-actions/node:local     the busybox rootfs plus this machine's node binary, the shared libraries
#                             ldd lists for it, and npm when it is installed; CMD node
#
# Each rootfs is packed with tar and loaded with `docker import`. An image is skipped when it exists
# and its label ci-actions.base.fingerprint matches its inputs (recipe, busybox, node, libraries);
# --force rebuilds anyway. Every built image is checked by running it.
#
# Environment: BUSYBOX (static busybox binary, default `command -v busybox`), NODE (default
# `command -v node`).
set -euo pipefail

RECIPE=1  # bump when the rootfs layout changes: every image gets rebuilt
BUSYBOX_TAG=ci-actions/busybox:local
NODE_TAG=ci-actions/node:local
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

FORCE=0
WANT=()
for arg in "$@"; do
    case $arg in
        --force) FORCE=1 ;;
        busybox | node) WANT+=("$arg") ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-base-images: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done
[ "${#WANT[@]}" -gt 0 ] || WANT=(busybox node)

log() { printf 'build-base-images: %s\n' "$*" >&2; }
die() { printf 'build-base-images: ERROR: %s\n' "$*" >&2; exit 1; }

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
    # The recipe, the script itself and the size+mtime of every input file (fast: no hashing of node).
    { echo "recipe $RECIPE"; sha256sum <"$0"; stat -L -c '%n %s %Y' "$@"; } | sha256sum | cut -c1-16
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

import_rootfs() {
    # import_rootfs DIR TAG CHANGE...
    local root=$1 tag=$2
    shift 2
    local -a tar_owner=(--numeric-owner)
    if [ "$(id -u)" -ne 0 ]; then tar_owner+=(--owner=0 --group=0); fi
    local -a changes=()
    local c
    for c in "$@"; do changes+=(--change "$c"); done
    tar -C "$root" "${tar_owner[@]}" -cf - . | docker import "${changes[@]}" - "$tag" >/dev/null
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
    out=$(docker run --rm "$BUSYBOX_TAG" echo ci-actions-ok)
    [ "$out" = ci-actions-ok ] || die "$BUSYBOX_TAG does not run: '$out'"
    log "built $BUSYBOX_TAG ($(docker image inspect -f '{{.Size}}' "$BUSYBOX_TAG") bytes)"
}

node_libs() {
    # The ELF interpreter and every library ldd resolves for $1, one absolute path per line.
    ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u
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
    mapfile -t libs < <(node_libs "$node")
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
    out=$(docker run --rm "$NODE_TAG" node --version)
    [ "$out" = "$version" ] || die "$NODE_TAG: 'node --version' printed '$out', expected $version"
    if [ -n "$npm_dir" ]; then
        out=$(docker run --rm "$NODE_TAG" npm --version) || die "$NODE_TAG: 'npm --version' fails: $out"
    fi
    log "built $NODE_TAG ($version${npm_dir:+, npm $out}, $(docker image inspect -f '{{.Size}}' "$NODE_TAG") bytes)"
}

for image in "${WANT[@]}"; do
    "build_$image"
done
