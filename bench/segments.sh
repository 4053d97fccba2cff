#!/usr/bin/env bash
# Segment benchmark against a PostgreSQL configured like a production server: runs
# BenchmarkSegments (internal/postgres/segments_bench_test.go) on a throwaway server started
# with bench/lib.sh's server settings (2 GB of shared buffers, fsync on) instead of the test
# harness's defaults (128 MB, fsync off). Both are recorded in bench/results/segments.md.
#
#   bench/segments.sh                # from anywhere; needs go and PostgreSQL's binaries
#
# Environment: CENTRIC_BENCH_CUSTOMERS (1000000), CENTRIC_PG_BIN (PostgreSQL's bin directory),
# BENCH_KEEP=1 keeps the work directory. Prints the benchmark's output and the server settings.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
export PATH="/usr/local/go/bin:$PATH"

bench_name=segments
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

command -v go >/dev/null || die "go is not installed"
find_postgres
failure_logs=(bench.out pg.log)
make_workdir centric-segments

start_postgres 27432 "${server_pg_settings[@]}"
log "PostgreSQL $pg_version, fsync $(psql_db postgres -At -c 'SHOW fsync'), settings: ${server_pg_settings[*]}"
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
TEST_DATABASE_URL="postgres://bench@127.0.0.1:$pg_port/postgres?sslmode=disable" \
	CENTRIC_BENCH_CUSTOMERS=${CENTRIC_BENCH_CUSTOMERS:-1000000} \
	go test ./internal/postgres -run - -bench BenchmarkSegments -benchtime 3x -count 1 -v -timeout 60m 2>&1 |
	grep --line-buffered -v '^=== ' | tee "$work/bench.out"
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
