#!/usr/bin/env bash
# Batch-ingest benchmark: POST /v1/transactions/batch end to end over HTTP versus a raw
# `psql \copy` of the same rows into the same server. Target: batch >= 0.5 x raw COPY.
#
#   bench/batch_ingest.sh            # from anywhere; needs go, curl and PostgreSQL's binaries
#
# Environment: BENCH_TRANSACTIONS (100000), BENCH_BATCHES (10), BENCH_CUSTOMERS (1000),
# CENTRIC_PG_BIN (PostgreSQL's bin directory), BENCH_KEEP=1 keeps the work directory.
# Writes the report to bench/results/batch_ingest.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
export PATH="/usr/local/go/bin:$PATH"

n_tx=${BENCH_TRANSACTIONS:-100000}
n_batches=${BENCH_BATCHES:-10}
n_customers=${BENCH_CUSTOMERS:-1000}
per_batch=$((n_tx / n_batches))
results="$repo/bench/results/batch_ingest.md"
tx_cols="customer_id,id,type,occurred_at,amount,currency,source,external_id,metadata,created_at"

bench_name=batch_ingest
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
# stat_fields PID: /proc/PID/stat after the command name (utime at [11], stime [12],
# cutime [13], cstime [14]: CPU clock ticks of the process and of its reaped children).
stat_fields() {
	local f
	f=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	echo "${f##*) }"
}
# cpu_ticks PID: user+system CPU ticks used so far by a process.
cpu_ticks() {
	local f
	read -ra f <<<"$(stat_fields "$1")"
	echo $((f[11] + f[12]))
}
# pg_ticks: CPU ticks used so far by the PostgreSQL server: the postmaster, the backends it
# has reaped (exited connections), and the processes still running under it.
pg_ticks() {
	local pm f t c
	pm=$(head -n1 "$work/pg/postmaster.pid")
	read -ra f <<<"$(stat_fields "$pm")"
	t=$((f[11] + f[12] + f[13] + f[14]))
	for c in $(ps -o pid= --ppid "$pm"); do
		read -ra f <<<"$(stat_fields "$c" || true)" # it may have exited meanwhile
		if ((${#f[@]} > 12)); then t=$((t + f[11] + f[12])); fi
	done
	echo "$t"
}

# --- prerequisites -------------------------------------------------------------------------
for tool in go curl awk; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
find_postgres

# --- work directory and cleanup ------------------------------------------------------------
failure_logs=(centric.log pg.log)
make_workdir centric-bench

# --- build and generate (not timed) --------------------------------------------------------
log "building centric and the data generator"
go build -o "$work/centric" ./cmd/centric
go build -o "$work/gentx" ./bench/cmd/gentx

log "generating $n_tx transactions for $n_customers customers in $n_batches batches"
"$work/gentx" -out "$work/data" -customers "$n_customers" -transactions "$n_tx" -batches "$n_batches"
chmod -R a+rX "$work/data"

# --- PostgreSQL ----------------------------------------------------------------------------
# fsync stays on (the default) so both paths pay for durable commits.
start_postgres 25432 timezone=UTC max_wal_size=4GB checkpoint_timeout=30min
db_url() { echo "postgres://bench@127.0.0.1:$pg_port/$1?sslmode=disable"; }

psql_db postgres -c 'CREATE DATABASE bench_api' -c 'CREATE DATABASE bench_copy'
for db in bench_api bench_copy; do
	log "migrating $db"
	DATABASE_URL=$(db_url "$db") "$work/centric" migrate >"$work/migrate-$db.log" 2>&1 ||
		die "centric migrate ($db) failed: $(cat "$work/migrate-$db.log")"
done

# --- centric serve -------------------------------------------------------------------------
serve_centric "$(db_url bench_api)" bench admin

# --- customers (not timed): one curl, one keep-alive connection ----------------------------
log "creating $n_customers customers via POST /v1/customers"
cfg="$work/customers.curlrc"
: >"$cfg"
for f in "$work"/data/customers/*.json; do
	printf 'next\nurl = "%s/v1/customers"\nheader = "@%s"\ndata-binary = "@%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
		"$base" "$work/headers" "$f" >>"$cfg"
done
sed -i '1d' "$cfg" # no `next` before the first request
curl -sS -K "$cfg" >"$work/customers.codes" || die "curl failed creating customers"
bad=$(grep -cv '^201$' "$work/customers.codes" || true)
if [[ "$bad" -ne 0 ]]; then
	# Show one failing response in full.
	curl -sS -H "@$work/headers" --data-binary "@$work/data/customers/00001.json" "$base/v1/customers" >&2 || true
	die "$bad of $n_customers POST /v1/customers did not answer 201 (codes: $(sort "$work/customers.codes" | uniq -c | tr '\n' ' '))"
fi

# --- a. batch over HTTP (timed) ------------------------------------------------------------
log "timing POST /v1/transactions/batch: $n_batches x $per_batch"
psql_db bench_api -c CHECKPOINT
batch_times=()
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
hz=$(getconf CLK_TCK)
c0=$(cpu_ticks "$centric_pid")
p0=$(pg_ticks)
t0=$(now)
for ((b = 1; b <= n_batches; b++)); do
	body=$(printf '%s/data/batch-%02d.json' "$work" "$b")
	out=$(curl -sS -H "@$work/headers" --data-binary "@$body" -o "$work/resp.json" \
		-w '%{http_code} %{time_total}' "$base/v1/transactions/batch") || die "curl failed on batch $b"
	code=${out%% *}
	if [[ "$code" != 200 ]]; then
		head -c 2000 "$work/resp.json" >&2
		echo >&2
		die "batch $b answered HTTP $code"
	fi
	created=$(grep -oE '"created"[[:space:]]*:[[:space:]]*[0-9]+' "$work/resp.json" | head -n1 | grep -oE '[0-9]+$' || true)
	if [[ "$created" != "$per_batch" ]]; then
		head -c 2000 "$work/resp.json" >&2
		echo >&2
		die "batch $b created ${created:-?} of $per_batch transactions"
	fi
	batch_times+=("${out#* }")
done
t1=$(now)
api_secs=$(calc "$t1 - $t0")
centric_cpu=$(calc "($(cpu_ticks "$centric_pid") - $c0) / $hz" %.2f)
api_pg_cpu=$(calc "($(pg_ticks) - $p0) / $hz" %.2f)
api_rows=$(psql_db bench_api -At -c 'SELECT count(*) FROM transactions')
[[ "$api_rows" == "$n_tx" ]] || die "bench_api holds $api_rows transactions, want $n_tx"

# --- b. raw COPY (timed) -------------------------------------------------------------------
log "loading customers into bench_copy (not timed)"
psql_db bench_copy \
	-c "\\copy customers (id,kind,name,external_refs,created_at,updated_at) FROM '$work/data/customers.csv' CSV" \
	-c "\\copy customer_external_refs (external_id,source,customer_id) FROM '$work/data/customer_refs.csv' CSV" \
	-c CHECKPOINT
log "timing psql \\copy of $n_tx rows into transactions"
p0=$(pg_ticks)
t0=$(now)
psql_db bench_copy -c "\\copy transactions ($tx_cols) FROM '$work/data/transactions.csv' CSV"
t1=$(now)
copy_secs=$(calc "$t1 - $t0")
copy_pg_cpu=$(calc "($(pg_ticks) - $p0) / $hz" %.2f)
copy_rows=$(psql_db bench_copy -At -c 'SELECT count(*) FROM transactions')
[[ "$copy_rows" == "$n_tx" ]] || die "bench_copy holds $copy_rows transactions, want $n_tx"

# --- report --------------------------------------------------------------------------------
api_rate=$(calc "$n_tx / $api_secs" %.0f)
copy_rate=$(calc "$n_tx / $copy_secs" %.0f)
ratio=$(calc "$api_rate / $copy_rate" %.2f)
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.5 ? "meets" : "BELOW") }')
# Server CPU (centric + PostgreSQL) is less sensitive than wall time to other load on the machine.
api_cpu=$(calc "$centric_cpu + $api_pg_cpu" %.2f)
cpu_ratio=$(calc "$copy_pg_cpu / $api_cpu" %.2f)
body_mb=$(calc "$(cat "$work"/data/batch-*.json | wc -c) / 1048576" %.1f)
csv_mb=$(calc "$(wc -c <"$work/data/transactions.csv") / 1048576" %.1f)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

table=$(
	printf '| path | rows | seconds | rows/second | server CPU seconds |\n|---|---:|---:|---:|---:|\n'
	printf '| POST /v1/transactions/batch (%d x %d, %s MiB JSON) | %d | %s | %s | %s (centric %s + PostgreSQL %s) |\n' \
		"$n_batches" "$per_batch" "$body_mb" "$n_tx" "$api_secs" "$api_rate" "$api_cpu" "$centric_cpu" "$api_pg_cpu"
	printf '| psql \\copy into transactions (%s MiB CSV) | %d | %s | %s | %s (PostgreSQL) |\n' \
		"$csv_mb" "$n_tx" "$copy_secs" "$copy_rate" "$copy_pg_cpu"
	printf '\nRatio batch / raw COPY (rows/second): **%s** (%s the target of 0.5).\n' "$ratio" "$verdict"
	printf 'Ratio by server CPU (COPY CPU / batch CPU): %s.\n' "$cpu_ratio"
)
notes="Per-batch seconds (curl time_total): ${batch_times[*]}
Load average (1, 5, 15 min) before the batches: $load_before; at the end: $load_after (on $(nproc) cores; much above 1, other work shared the machine and inflated the wall times)."
printf '\n%s\n\n%s\n' "$table" "$notes"

mkdir -p "$(dirname "$results")"
{
	printf '# Batch ingest benchmark\n\n'
	# shellcheck disable=SC2016 # backticks are Markdown
	printf 'Produced by `bench/batch_ingest.sh` on %s.\n\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf -- '- Machine: %s cores, %s; %s\n' "$(nproc)" \
		"$(free -h | awk '/^Mem:/ { print $2 " memory (" $7 " available)" }')" "$(uname -srm)"
	printf -- '- PostgreSQL %s on loopback, one throwaway server for both paths, fsync on, ' "$pg_version"
	printf 'max_wal_size=4GB, a CHECKPOINT before each timed phase\n'
	printf -- '- Centric %s, Go %s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo '(uncommitted)')" \
		"$(go env GOVERSION)"
	printf -- '- Data: %d transactions of %d customers (created beforehand, not timed), ' "$n_tx" "$n_customers"
	# shellcheck disable=SC2016 # backticks are Markdown
	printf 'items name their customer by `customer_ref`; batches sent one after another by curl\n\n'
	printf '%s\n\n%s\n' "$table" "$notes"
} >"$results.tmp"
mv "$results.tmp" "$results"
log "report written to ${results#"$repo"/}"
