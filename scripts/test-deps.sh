#!/usr/bin/env bash
# System packages the tests need beyond the Python environment: Debian's PostgreSQL (its pgcrypto path is
# tested through GITINSIGHT_PG_BINDIR), headless Chromium (reports are checked in a real browser) and PgBouncer
# (`gitinsight db pooler`, tests/test_pooler.py).
# Installs only what is missing; skips quietly where apt-get is not available (tests then skip, saying why).
set -euo pipefail
need=()
command -v pg_config >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing system packages for the tests: ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
    echo "note: cannot install ${need[*]} (no apt-get or not root); the tests that need them will skip" >&2
fi
