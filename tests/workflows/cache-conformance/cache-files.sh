#!/bin/sh
# The files actions/cache's own end-to-end jobs cache (test-save / test-restore), written and checked
# our way: `cache-files.sh make LABEL DIR` writes them, `cache-files.sh check LABEL DIR` fails unless
# they came back as written. The content carries the run id, so only this run's entry can pass.
# Beyond upstream's single file: a nested hidden file and an executable, so modes and dotfiles count.
set -eu
usage() { echo "usage: cache-files.sh make|check LABEL DIR" >&2; exit 2; }
[ $# -eq 3 ] || usage
command=$1 label=$2 dir=$3
[ -n "$label" ] && [ -n "$dir" ] || usage
[ -n "${GITHUB_RUN_ID:-}" ] || { echo "GITHUB_RUN_ID is not set" >&2; exit 1; }
stamp="$label $GITHUB_RUN_ID"

case $command in
  make)
    mkdir -p "$dir/nested"
    printf '%s\n' "$stamp" > "$dir/test-file.txt"
    printf 'hidden %s\n' "$stamp" > "$dir/nested/.hidden"
    printf '#!/bin/sh\necho ran\n' > "$dir/nested/tool.sh"
    chmod 755 "$dir/nested/tool.sh"
    ;;
  check)
    for file in "$dir/test-file.txt" "$dir/nested/.hidden" "$dir/nested/tool.sh"; do
      [ -f "$file" ] || { echo "missing: $file" >&2; exit 1; }
    done
    [ "$(cat "$dir/test-file.txt")" = "$stamp" ] || {
      echo "unexpected content in $dir/test-file.txt: $(cat "$dir/test-file.txt") (wanted: $stamp)" >&2; exit 1; }
    [ "$(cat "$dir/nested/.hidden")" = "hidden $stamp" ] || { echo "unexpected hidden file" >&2; exit 1; }
    [ -x "$dir/nested/tool.sh" ] || { echo "$dir/nested/tool.sh lost its executable bit" >&2; exit 1; }
    [ "$("$dir/nested/tool.sh")" = ran ] || { echo "tool.sh did not run" >&2; exit 1; }
    echo "verified $dir"
    ;;
  *) usage ;;
esac
