# Helpers shared by the benchmark scripts; source it after setting `bench_name`.
# shellcheck shell=bash

# server_pg_settings configure the throwaway PostgreSQL like a production server on this
# machine (23 GiB, 2 cores); fsync stays on.
# shellcheck disable=SC2034 # used by the scripts sourcing this
server_pg_settings=(
	"shared_buffers=2GB"
	"work_mem=64MB"
	"maintenance_work_mem=1GB"
	"effective_cache_size=16GB"
	"max_wal_size=16GB"
	"checkpoint_timeout=30min"
	"max_parallel_workers_per_gather=2"
	"random_page_cost=1.1"
	"timezone=UTC"
)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() {
	printf '\n%s: %s\n' "${bench_name:-bench}" "$*" >&2
	exit 1
}
now() { date +%s.%N; }
# calc EXPR [FORMAT]: floating-point arithmetic (bc is not always installed).
calc() { awk "BEGIN { printf \"${2:-%.3f}\", $1 }"; }

# find_postgres: sets pg_bin to PostgreSQL's bin directory, and pg_user and as_pg to the account
# that runs the server (PostgreSQL refuses root: then `postgres`, else `nobody`).
# shellcheck disable=SC2034 # pg_bin, pg_user and as_pg are used by the scripts sourcing this
find_postgres() {
	pg_bin=${CENTRIC_PG_BIN:-}
	if [[ -z "$pg_bin" ]]; then
		pg_bin=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n1 || true)
	fi
	if [[ -z "$pg_bin" ]] && command -v pg_config >/dev/null; then
		pg_bin=$(pg_config --bindir)
	fi
	[[ -x "$pg_bin/initdb" && -x "$pg_bin/pg_ctl" && -x "$pg_bin/psql" ]] ||
		die "PostgreSQL server binaries not found (set CENTRIC_PG_BIN; Debian: apt-get install postgresql)"
	as_pg=()
	pg_user=$(id -un)
	if [[ $(id -u) -eq 0 ]]; then
		pg_user=postgres
		id "$pg_user" >/dev/null 2>&1 || pg_user=nobody
		as_pg=(runuser -u "$pg_user" --)
	fi
}

# free_port START: the first port from START that nothing listens on (loopback).
free_port() {
	local p
	for ((p = $1; p < $1 + 500; p++)); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# make_workdir NAME: creates the work directory $work (/tmp/NAME.XXXXXX) and cleans up on exit:
# stops `centric serve` ($centric_pid) and PostgreSQL (once started), prints the last lines of
# the files in $work matching the patterns in failure_logs when the script fails, and removes
# $work unless BENCH_KEEP=1.
make_workdir() {
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$work"
	centric_pid="" pg_started=""
	trap cleanup_workdir EXIT
	trap 'exit 130' INT TERM
}

cleanup_workdir() {
	local rc=$? pattern f
	if [[ -n "$centric_pid" ]] && kill -0 "$centric_pid" 2>/dev/null; then
		kill "$centric_pid" 2>/dev/null || true
		wait "$centric_pid" 2>/dev/null || true
	fi
	if [[ $rc -ne 0 ]]; then
		for pattern in "${failure_logs[@]}"; do
			for f in "$work"/$pattern; do
				[[ -s "$f" ]] && printf '\n--- last lines of %s ---\n' "$f" >&2 && tail -n 30 "$f" >&2
			done
		done
	fi
	if [[ -n "$pg_started" ]]; then
		"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [[ "${BENCH_KEEP:-}" == 1 ]]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}

# start_postgres PORT SETTING...: initialises a throwaway cluster in $work/pg (user `bench`,
# trust authentication) and starts it on the first free port from PORT with the given `-c`
# settings (fsync and synchronous_commit keep their defaults, on); sets pg_port, pg_version and
# pg_started.
start_postgres() {
	local from=$1 setting opts
	shift
	pg_port=$(free_port "$from") || die "no free port for PostgreSQL"
	mkdir -p "$work/pg" "$work/sock"
	chown "$pg_user" "$work/pg" "$work/sock"
	touch "$work/pg.log" && chown "$pg_user" "$work/pg.log"
	log "starting PostgreSQL ($("$pg_bin/postgres" --version)) on 127.0.0.1:$pg_port as $pg_user"
	"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -U bench --auth=trust -E UTF8 --locale=C >"$work/initdb.log" 2>&1 ||
		die "initdb failed: $(cat "$work/initdb.log")"
	opts="-p $pg_port -k $work/sock -c listen_addresses=127.0.0.1"
	for setting in "$@"; do
		opts+=" -c $setting"
	done
	"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -t 120 -o "$opts" start >/dev/null
	pg_started=1
	pg_version=$(psql_db postgres -At -c 'SHOW server_version')
}

# psql_db DB ARGS...: psql on database DB of the throwaway server, stopping at the first error.
psql_db() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U bench -d "$@"; }

# serve_centric DATABASE_URL KEY_NAME PERMISSION...: issues an API key with the permissions and
# starts `centric serve` ($work/centric) on the first free port from 28080, waiting until it
# answers; sets api_key, base, centric_pid and $work/headers (the key and JSON headers for curl).
serve_centric() {
	local url=$1 name=$2 key_out api_port i
	shift 2
	key_out=$(DATABASE_URL=$url "$work/centric" keys create "$name" "$@" 2>&1) ||
		die "centric keys create failed: $key_out"
	api_key=$(sed -n 's/^key: *//p' <<<"$key_out")
	[[ "$api_key" == ck_* ]] || die "no key in the output of 'centric keys create': $key_out"
	api_port=$(free_port 28080) || die "no free port for the API"
	base="http://127.0.0.1:$api_port"
	log "starting centric serve on $base"
	DATABASE_URL=$url CENTRIC_ADDR="127.0.0.1:$api_port" CENTRIC_LOG_LEVEL=warn \
		"$work/centric" serve >"$work/centric.log" 2>&1 &
	centric_pid=$!
	for ((i = 0; i < 120; i++)); do
		curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break
		kill -0 "$centric_pid" 2>/dev/null || die "centric serve exited"
		sleep 0.5
	done
	curl -fsS -o /dev/null "$base/healthz" || die "centric serve did not answer /healthz within 60s"
	printf 'Authorization: Bearer %s\nContent-Type: application/json\nExpect:\n' "$api_key" >"$work/headers"
}
