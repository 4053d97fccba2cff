# Helpers shared by the benchmark scripts; source it after setting `bench_name`.
# shellcheck shell=bash

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
