#!/usr/bin/env bash
# Full-refresh benchmark: load a synthetic customer base with `centric demo` into a throwaway
# PostgreSQL (fsync on), then time `centric fit -unit day`: the SQL summary of every customer's
# transactions, the BG/NBD and Gamma-Gamma fits, scoring every customer, and writing every
# score. Target: 1,000,000 customers with about 10,000,000 transactions under 60 seconds.
#
#   bench/refresh.sh                 # from anywhere; needs go and PostgreSQL's binaries
#
# Environment: BENCH_CUSTOMERS (1000000), BENCH_SEED (1), BENCH_YEARS (3), BENCH_FITS (2: the
# first run inserts every score, later ones replace them, as scheduled refreshes do),
# BENCH_EXPLAIN=1 adds EXPLAIN (ANALYZE, BUFFERS) of the summary query to the report,
# CENTRIC_PG_BIN (PostgreSQL's bin directory), BENCH_KEEP=1 keeps the work directory.
# Writes the report to bench/results/refresh.md (BENCH_RESULTS overrides the path), keeping
# whatever follows a line `<!-- analysis -->` in the previous report.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
export PATH="/usr/local/go/bin:$PATH"

n_customers=${BENCH_CUSTOMERS:-1000000}
seed=${BENCH_SEED:-1}
years=${BENCH_YEARS:-3}
n_fits=${BENCH_FITS:-2}
results=${BENCH_RESULTS:-$repo/bench/results/refresh.md}
# PostgreSQL settings (bench/lib.sh): every one is recorded in the report.
bench_name=refresh
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
pg_settings=("${server_pg_settings[@]}")

# --- prerequisites -------------------------------------------------------------------------
for tool in go awk; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
find_postgres

# --- work directory and cleanup ------------------------------------------------------------
failure_logs=(demo.out "fit-*.out" pg.log)
make_workdir centric-refresh

# --- build (not timed) ---------------------------------------------------------------------
log "building centric"
go build -o "$work/centric" ./cmd/centric

# --- PostgreSQL ----------------------------------------------------------------------------
start_postgres 26432 "${pg_settings[@]}"
pg_fsync=$(psql_db postgres -At -c 'SHOW fsync')
pg_sync=$(psql_db postgres -At -c 'SHOW synchronous_commit')
psql_db postgres -c 'CREATE DATABASE bench'
export DATABASE_URL="postgres://bench@127.0.0.1:$pg_port/bench?sslmode=disable"
export CENTRIC_LOG_LEVEL=warn
"$work/centric" migrate >"$work/migrate.out" 2>&1 || die "centric migrate failed: $(cat "$work/migrate.out")"

# --- demo data (timed separately) ----------------------------------------------------------
log "loading the demo: centric demo -customers $n_customers -seed $seed -years $years"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(now)
"$work/centric" demo -customers "$n_customers" -seed "$seed" -years "$years" >"$work/demo.out" 2>&1 ||
	die "centric demo failed"
t1=$(now)
demo_secs=$(calc "$t1 - $t0" %.1f)
cat "$work/demo.out"
read -r n_cust n_refs n_tx n_purchase n_refund n_cost n_business n_partners <<<"$(psql_db bench -At -F ' ' -c "
	SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM customer_external_refs),
		count(*), count(*) FILTER (WHERE type = 'purchase'), count(*) FILTER (WHERE type = 'refund'),
		count(*) FILTER (WHERE type = 'cost'),
		(SELECT count(*) FROM customers WHERE kind = 'business'),
		(SELECT count(*) FROM customers WHERE role IN ('distributor', 'dealer'))
	FROM transactions")"
sizes=$(psql_db bench -At -F '|' -c "SELECT pg_size_pretty(pg_total_relation_size('customers')),
	pg_size_pretty(pg_total_relation_size('transactions')), pg_size_pretty(pg_relation_size('transactions')),
	pg_size_pretty(pg_database_size('bench'))")
IFS='|' read -r size_customers size_tx size_tx_heap size_db <<<"$sizes"
log "loaded $n_cust customers and $n_tx transactions in ${demo_secs}s"

# --- the refresh (timed) -------------------------------------------------------------------
fit_rows=()
for ((f = 1; f <= n_fits; f++)); do
	psql_db bench -c CHECKPOINT
	log "fit $f of $n_fits: centric fit -unit day"
	t0=$(now)
	"$work/centric" fit -unit day >"$work/fit-$f.out" 2>&1 || die "centric fit failed"
	t1=$(now)
	secs=$(calc "$t1 - $t0" %.1f)
	cat "$work/fit-$f.out"
	timings=$(sed -n 's/.*summary \([0-9]*\) ms, fit \([0-9]*\) ms, score and store \([0-9]*\) ms, other \([0-9]*\) ms; run \([0-9]*\) ms.*/\1 \2 \3 \4 \5/p' "$work/fit-$f.out")
	read -r t_summary t_fit t_score _ t_run <<<"$timings"
	kind="replaces every score"
	((f == 1)) && kind="first: inserts every score"
	fit_rows+=("| $f ($kind) | $secs | $(calc "$t_run / 1000" %.1f) | $(calc "$t_summary / 1000" %.1f) | $(calc "$t_fit / 1000" %.1f) | $(calc "$t_score / 1000" %.1f) |")
	last_secs=$secs
	last_run=$(calc "$t_run / 1000" %.1f)
done
scored=$(psql_db bench -At -c 'SELECT count(*) FROM customer_scores')
last_fit=$(sed -n '/succeeded\.$/,$p' "$work/fit-$n_fits.out")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
verdict=$(awk -v s="$last_run" 'BEGIN { print (s < 60 ? "meets" : "MISSES") }')

explain=""
if [[ "${BENCH_EXPLAIN:-}" == 1 ]]; then
	log "EXPLAIN (ANALYZE, BUFFERS) of the summary query"
	# The query as the service runs it for a full refresh, taken from the source (a %s there is
	# the customer filter of a rescore, empty for a full refresh), prepared with its parameters:
	# currency, the first instant after the observation end's day, that day (and no customers).
	summary_sql=$(awk '/^const summarySQL = `/ { on = 1; sub(/^const summarySQL = `/, "") } on { if (sub(/`$/, "")) { print; exit } print }' \
		internal/postgres/analytics.go | sed 's/%s//')
	[[ "$summary_sql" == SELECT* ]] || die "summarySQL not found in internal/postgres/analytics.go"
	prep_types="text, timestamptz, date" prep_values="date_trunc('day', now()) + interval '1 day', current_date"
	if [[ "$summary_sql" == *'$4'* ]]; then
		prep_types+=", uuid[]" prep_values+=", NULL"
	fi
	currency=$(psql_db bench -At -c "SELECT currency FROM model_runs ORDER BY requested_at DESC LIMIT 1")
	explain=$(psql_db bench -At <<-SQL
		SET work_mem = '256MB';
		PREPARE summary($prep_types) AS $summary_sql;
		EXPLAIN (ANALYZE, BUFFERS) EXECUTE summary('$currency', $prep_values);
	SQL
	) || explain="(the EXPLAIN failed; PostgreSQL's log says why)"
fi

# --- report --------------------------------------------------------------------------------
table=$(
	printf '| fit | wall seconds (`centric fit`) | run seconds | summary (SQL) | fit | score and store |\n'
	printf '|---|---:|---:|---:|---:|---:|\n'
	printf '%s\n' "${fit_rows[@]}"
	printf '\nThe last full refresh (the run: SQL summary, fit, scoring and writing every score) took **%s s** (%s the target of 60 s); `centric fit` took %s s wall.\n' "$last_run" "$verdict" "$last_secs"
)
printf '\n%s\n' "$table"

mkdir -p "$(dirname "$results")"
# A hand-written analysis after the marker line survives a new run.
analysis=""
if [[ -f "$results" ]]; then
	analysis=$(sed -n '/^<!-- analysis -->$/,$p' "$results")
fi
{
	printf '# Full refresh benchmark\n\n'
	# shellcheck disable=SC2016 # backticks are Markdown
	printf 'Produced by `bench/refresh.sh` on %s.\n\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf -- '- Machine: %s cores (%s), %s; %s\n' "$(nproc)" \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" \
		"$(free -h | awk '/^Mem:/ { print $2 " memory (" $7 " available)" }')" "$(uname -srm)"
	printf -- '- PostgreSQL %s on loopback, throwaway server, fsync=%s, synchronous_commit=%s; settings: %s\n' \
		"$pg_version" "$pg_fsync" "$pg_sync" "$(printf '`%s` ' "${pg_settings[@]}")"
	printf -- '- Centric %s, Go %s\n' "$(git describe --always --dirty 2>/dev/null || echo '(not a git checkout)')" "$(go env GOVERSION)"
	# shellcheck disable=SC2016 # backticks are Markdown
	printf -- '- Data: `centric demo -customers %s -seed %s -years %s`: %s customers (%s business accounts, %s of them distributors and dealers), %s external references, **%s transactions** (%s purchases, %s refunds, %s costs); customers %s, transactions %s (heap %s), database %s\n' \
		"$n_customers" "$seed" "$years" "$n_cust" "$n_business" "$n_partners" "$n_refs" "$n_tx" "$n_purchase" "$n_refund" "$n_cost" \
		"$size_customers" "$size_tx" "$size_tx_heap" "$size_db"
	printf -- '- Demo load: %s s wall (%s)\n' "$demo_secs" "$(grep -m1 '^Loaded in' "$work/demo.out" | sed 's/:$//')"
	# shellcheck disable=SC2016 # backticks are Markdown
	printf -- '- Refresh: `centric fit -unit day` (BG/NBD, currency defaulted), a CHECKPOINT before each; %s customers scored\n\n' "$scored"
	printf '%s\n\n' "$table"
	printf 'Run timings come from the run'"'"'s result: summary = the SQL summary into a temporary table and reading it into Go; fit = compressing the summaries and fitting BG/NBD and Gamma-Gamma; score and store = RFM edges, scoring every customer, writing the scores into a fresh table, building its indexes, and swapping it in. Wall time adds refreshing every built-in segment family from the new scores (on the first run every customer enters its six segments: a million membership changes in the change feed, one per customer), the rescore of customers whose transactions changed meanwhile, starting the process, connecting, the migrations check, queueing and polling (100 ms).\n\n'
	printf 'Last fit (`centric fit` output):\n\n```\n%s\n```\n\n' "$last_fit"
	printf 'Load average (1, 5, 15 min) before the demo load: %s; at the end: %s (on %s cores; much above 1, other work shared the machine and inflated the wall times).\n' \
		"$load_before" "$load_after" "$(nproc)"
	if [[ -n "$explain" ]]; then
		printf '\nEXPLAIN (ANALYZE, BUFFERS) of the summary query after the fits:\n\n```\n%s\n```\n' "$explain"
	fi
	if [[ -n "$analysis" ]]; then
		printf '\n%s\n' "$analysis"
	fi
} >"$results.tmp"
mv "$results.tmp" "$results"
log "report written to ${results#"$repo"/}"
