#!/usr/bin/env bash
# The seed's test-integrity check: a test suite must not shrink quietly. Fails when a test file keeps a
# focus or skip marker (`.only(`, `.skip(`, `only: true`, `skip: true`: a run that passes without running
# everything), or when a suite has fewer tests than scripts/test-counts.txt records (tests deleted or
# commented out). Counts are static (`it(`/`test(` calls with a title), so no test runs here.
# After adding tests, raise the counts (`--update` rewrites the file); removing tests on purpose means
# lowering them in the same commit, where a reviewer sees it.
#
#   scripts/validate-test-integrity.sh            (from the app's folder, or anywhere)
#   scripts/validate-test-integrity.sh --update
set -euo pipefail

app=$(cd "$(dirname "$0")/.." && pwd)
baseline="$app/scripts/test-counts.txt"
title_call='(^|[^.[:alnum:]_])(it|test)\([[:space:]]*["'\''`]'
marker='\.(only|skip)\(|(only|skip):[[:space:]]*true'

count() { cat "$app/$1"/*.ts | grep -cE "$title_call" || true; }

if [ "${1:-}" = "--update" ]; then
    tmp=$(mktemp "$baseline.XXXXXX")
    grep '^#' "$baseline" >"$tmp"
    grep -v '^#' "$baseline" | while read -r suite _; do echo "$suite $(count "$suite")"; done >>"$tmp"
    mv "$tmp" "$baseline"
    cat "$baseline"
    exit 0
fi

status=0
while read -r suite minimum; do
    case $suite in '#'* | '') continue ;; esac
    if [ ! -d "$app/$suite" ]; then
        echo "::error file=scripts/test-counts.txt::suite $suite is missing (recorded with $minimum tests)"
        status=1
        continue
    fi
    hits=$(grep -nE "$marker" "$app/$suite"/*.ts || true)
    if [ -n "$hits" ]; then
        while IFS= read -r hit; do
            echo "::error::focus/skip marker left in a test: ${hit#"$app/"}"
        done <<<"$hits"
        status=1
    fi
    found=$(count "$suite")
    if [ "$found" -lt "$minimum" ]; then
        echo "::error::$suite has $found tests, fewer than the $minimum recorded in scripts/test-counts.txt"
        status=1
    else
        echo "$suite: $found tests (at least $minimum)"
    fi
done <"$baseline"
exit "$status"
