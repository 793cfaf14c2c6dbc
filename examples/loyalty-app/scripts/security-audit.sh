#!/usr/bin/env bash
# The seed's `npm run security:audit`, for each package dir given (default: backend frontend):
#  1. offline, against the lock file: lockfileVersion 2 or later, and every package in it pinned by a
#     sha512 integrity hash and fetched from the https registry (no git, file, tarball-URL or plain-http
#     sources): what `npm ci` will install is exactly what the lock names;
#  2. `npm audit --package-lock-only --audit-level=high` (the lock file, no node_modules needed): high
#     or critical advisories fail. It needs the registry's bulk-advisory endpoint; where that does not
#     answer (an offline runner, or a registry mirror without it: 405) it is a warning and step 1 stands.
#
#   scripts/security-audit.sh [package-dir...]
set -euo pipefail

app=$(cd "$(dirname "$0")/.." && pwd)
status=0
dirs=("$@")
[ "${#dirs[@]}" -gt 0 ] || dirs=(backend frontend)
for pkg in "${dirs[@]}"; do
    lock="$app/$pkg/package-lock.json"
    if ! node - "$lock" <<'JS'; then status=1; fi
const [lockPath] = process.argv.slice(2);
const lock = JSON.parse(require("node:fs").readFileSync(lockPath, "utf8"));
const problems = [];
if (!(lock.lockfileVersion >= 2)) problems.push(`lockfileVersion ${lock.lockfileVersion}: regenerate it with npm 7 or later`);
let pinned = 0;
for (const [path, entry] of Object.entries(lock.packages ?? {})) {
  if (path === "" || entry.link) continue;
  if (!/^sha512-/.test(entry.integrity ?? "")) problems.push(`${path}: no sha512 integrity`);
  else pinned++;
  if (entry.resolved && !entry.resolved.startsWith("https://")) problems.push(`${path}: resolved from ${entry.resolved}`);
}
for (const problem of problems) console.log(`::error file=${lockPath}::${problem}`);
if (problems.length === 0) console.log(`${lockPath}: ${pinned} packages, each pinned by sha512`);
process.exit(problems.length ? 1 : 0);
JS
    set +e
    report=$(cd "$app/$pkg" && npm audit --package-lock-only --audit-level=high --json 2>/dev/null)
    code=$?
    set -e
    summary=$(node -e '
const r = JSON.parse(process.argv[1] || "{}");
if (!r.metadata) { console.log("unavailable " + (r.message || r.error?.summary || "no answer").split("\n")[0]); process.exit(); }
const v = r.metadata.vulnerabilities;
console.log(`answered ${v.critical} critical, ${v.high} high, ${v.moderate} moderate, ${v.low} low`);' "$report")
    case $summary in
        unavailable*) echo "::warning::npm audit of $pkg could not reach the advisory endpoint (${summary#unavailable }); the lock-file check above stands" ;;
        *) if [ "$code" -ne 0 ]; then echo "::error::npm audit of $pkg: ${summary#answered }"; status=1
           else echo "npm audit of $pkg: ${summary#answered }"; fi ;;
    esac
done
exit "$status"
