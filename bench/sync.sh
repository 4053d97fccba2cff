#!/usr/bin/env bash
# Partner sync benchmark: a partner upserts its distributor, dealers and end customers through
# POST /v1/customers/batch in batches of 1,000, matched on its external references; then sends
# the same data again (all unchanged), then only a 1% delta, then everything again with a second
# 1% delta in it. Each pass is timed end to end over HTTP.
#
#   bench/sync.sh            # from anywhere; needs go, curl and PostgreSQL's binaries
#
# Environment: BENCH_RECORDS (100000), BENCH_BATCH (1000), CENTRIC_PG_BIN (PostgreSQL's bin
# directory), BENCH_KEEP=1 keeps the work directory. Writes bench/results/sync.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
export PATH="/usr/local/go/bin:$PATH"

n_records=${BENCH_RECORDS:-100000}
per_batch=${BENCH_BATCH:-1000}
results="$repo/bench/results/sync.md"

bench_name=sync
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

for tool in go curl awk; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
find_postgres

failure_logs=(centric.log pg.log)
make_workdir centric-bench

# --- build and generate (not timed) --------------------------------------------------------
log "building centric and the data generator"
go build -o "$work/centric" ./cmd/centric
go build -o "$work/gensync" ./bench/cmd/gensync
log "generating $n_records records in batches of $per_batch"
"$work/gensync" -out "$work/data" -records "$n_records" -batch "$per_batch"

# --- PostgreSQL ----------------------------------------------------------------------------
start_postgres 25432 timezone=UTC max_wal_size=4GB checkpoint_timeout=30min
db_url="postgres://bench@127.0.0.1:$pg_port/bench_sync?sslmode=disable"
psql_db postgres -c 'CREATE DATABASE bench_sync'
DATABASE_URL=$db_url "$work/centric" migrate >"$work/migrate.log" 2>&1 || die "centric migrate failed: $(cat "$work/migrate.log")"

# --- centric serve -------------------------------------------------------------------------
serve_centric "$db_url" "northwind sync" customers:read customers:write

# count FIELD FILE: the value of a top-level counter in a batch response.
count() { grep -oE "\"$1\"[[:space:]]*:[[:space:]]*[0-9]+" "$2" | head -n1 | grep -oE '[0-9]+$'; }

# pass NAME DIR STATUS: sends every batch in DIR one after another and checks that every item
# got STATUS, except in the mixed pass (updated or unchanged). Sets pass_secs, pass_items,
# pass_statuses and pass_batch_secs.
pass() {
	local name=$1 dir=$2 want=$3 f out code created updated unchanged failed
	local c=0 u=0 n=0 x=0
	pass_batch_secs=()
	psql_db bench_sync -c CHECKPOINT
	log "timing the $name pass ($(find "$dir" -name '*.json' | wc -l) batches)"
	local t0 t1
	t0=$(now)
	for f in "$dir"/*.json; do
		out=$(curl -sS -H "@$work/headers" --data-binary "@$f" -o "$work/resp.json" \
			-w '%{http_code} %{time_total}' "$base/v1/customers/batch") || die "curl failed on $f"
		code=${out%% *}
		if [[ "$code" != 200 ]]; then
			head -c 2000 "$work/resp.json" >&2
			die "$f answered HTTP $code"
		fi
		created=$(count created "$work/resp.json")
		updated=$(count updated "$work/resp.json")
		unchanged=$(count unchanged "$work/resp.json")
		failed=$(count failed "$work/resp.json")
		if [[ "$failed" != 0 ]]; then
			head -c 2000 "$work/resp.json" >&2
			die "$f: $failed items failed"
		fi
		c=$((c + created)) u=$((u + updated)) n=$((n + unchanged))
		x=$((x + created + updated + unchanged))
		pass_batch_secs+=("${out#* }")
	done
	t1=$(now)
	pass_secs=$(calc "$t1 - $t0")
	pass_items=$x
	pass_statuses="created $c, updated $u, unchanged $n"
	case $want in
	created) [[ $c == "$x" ]] || die "$name: $pass_statuses; want all created" ;;
	unchanged) [[ $n == "$x" ]] || die "$name: $pass_statuses; want all unchanged" ;;
	updated) [[ $u == "$x" ]] || die "$name: $pass_statuses; want all updated" ;;
	esac
}

rows=()
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
record() {
	local log_rows
	log_rows=$(psql_db bench_sync -At -c 'SELECT count(*) FROM change_log')
	rows+=("$(printf '| %s | %d | %s | %s | %s | %s | %s |' "$1" "$pass_items" "$pass_secs" \
		"$(calc "$pass_items / $pass_secs" %.0f)" "$(median "${pass_batch_secs[@]}")" "$pass_statuses" "$log_rows")")
	log "$1: $pass_items items in ${pass_secs}s ($pass_statuses)"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
pass "initial" "$work/data/initial" created
record "initial load"
pass "unchanged" "$work/data/initial" unchanged
record "same data again"
pass "delta" "$work/data/delta" updated
delta_items=$pass_items
record "1% delta only"
pass "mixed" "$work/data/mixed" mixed
record "everything again, another 1% changed"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
customers=$(psql_db bench_sync -At -c 'SELECT count(*) FROM customers')
[[ "$customers" == "$n_records" ]] || die "the database holds $customers customers, want $n_records"

table=$(
	printf '| pass | items | seconds | items/second | median seconds per batch | outcomes | change log rows after |\n'
	printf '|---|---:|---:|---:|---:|---|---:|\n'
	printf '%s\n' "${rows[@]}"
)
notes="Load average (1, 5, 15 min) before: $load_before; after: $load_after (on $(nproc) cores; much above 1, other work shared the machine and inflated the wall times)."
printf '\n%s\n\n%s\n' "$table" "$notes"
mkdir -p "$(dirname "$results")"
{
	printf '# Partner sync benchmark\n\n'
	# shellcheck disable=SC2016 # backticks are Markdown
	printf 'Produced by `bench/sync.sh` on %s.\n\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf -- '- Machine: %s cores, %s; %s\n' "$(nproc)" \
		"$(free -h | awk '/^Mem:/ { print $2 " memory (" $7 " available)" }')" "$(uname -srm)"
	printf -- '- PostgreSQL %s on loopback, fsync on, max_wal_size=4GB, a CHECKPOINT before each pass\n' "$pg_version"
	printf -- '- Centric %s, Go %s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo '(uncommitted)')" "$(go env GOVERSION)"
	# shellcheck disable=SC2016 # backticks are Markdown
	printf -- '- Data: %d records of one partner (1 distributor, 999 dealers, the rest end customers under random dealers), `POST /v1/customers/batch` with %d items per request, sent one after another by curl; items are matched on `external_ref` and name their parent by `parent_ref` (the dealers their distributor within the first batch). The delta changes the email and tags of %d customers; the last pass re-sends everything with the phone of another %d changed.\n\n' \
		"$n_records" "$per_batch" "$delta_items" "$delta_items"
	printf '%s\n\n%s\n' "$table" "$notes"
} >"$results.tmp"
mv "$results.tmp" "$results"
log "report written to ${results#"$repo"/}"
