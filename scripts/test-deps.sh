#!/usr/bin/env bash
# System packages the tests need beyond the Python environment: Debian's PostgreSQL with pgcrypto (its path is
# tested through GITINSIGHT_PG_BINDIR), headless Chromium (reports are checked in a real browser) and PgBouncer
# (`gitinsight db pooler`, tests/test_pooler.py).
# Installs only what is missing. Fails loudly (exit 1, apt-get's own output shown) when an install fails or
# leaves a component missing. Where it cannot install at all (no apt-get, not root) it fails under CI=true and
# warns elsewhere: the tests that need a missing component then skip, saying why (under CI=true they fail).
set -euo pipefail

have_pgcrypto() {
    command -v pg_config >/dev/null 2>&1 && [ -f "$(pg_config --sharedir)/extension/pgcrypto.control" ]
}
have_chromium() { command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ]; }
have_pgbouncer() { command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; }

missing() {
    need=()
    have_pgcrypto || need+=(postgresql postgresql-contrib)
    have_chromium || need+=(chromium)
    have_pgbouncer || need+=(pgbouncer)
}

missing
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "test-deps: cannot install ${need[*]} (needs apt-get and root)" >&2
    if [ "${CI:-}" = "true" ]; then
        echo "test-deps: CI=true: the tests need them, stopping here" >&2
        exit 1
    fi
    echo "test-deps: WARNING: the tests that need them will skip" >&2
    exit 0
fi

echo "test-deps: installing ${need[*]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need[@]}"; } >"$log" 2>&1; then
    echo "test-deps: ERROR: apt-get failed to install ${need[*]}:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
missing
if [ ${#need[@]} -ne 0 ]; then
    echo "test-deps: ERROR: still missing after apt-get install: ${need[*]}" >&2
    exit 1
fi
echo "test-deps: installed"
