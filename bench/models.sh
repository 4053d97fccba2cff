#!/usr/bin/env bash
# Model benchmarks: fitting BG/NBD and Gamma-Gamma to 1,000,000 simulated customers (daily unit,
# three years of acquisitions) and scoring them (P(alive), expected purchases at 30/90/365 days,
# expected spend, 12-month CLV), plus one customer's score. Targets: fit < 1 s, scoring < 1 s.
#
#   bench/models.sh      # writes bench/results/models.md
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"
results=bench/results/models.md
out=$(mktemp)
trap 'rm -f "$out"' EXIT

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
go test ./pkg/btyd -run '^$' -bench '1M|ScoreOne' -benchmem -benchtime 3x -count 3 | tee "$out"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p bench/results
{
	printf '# Model benchmarks\n\n'
	# shellcheck disable=SC2016 # backticks are Markdown
	printf 'Produced by `bench/models.sh` on %s.\n\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf -- '- Machine: %s cores, %s; Go %s; Centric %s\n' "$(nproc)" \
		"$(free -h | awk '/^Mem:/ { print $2 " memory" }')" "$(go env GOVERSION)" "$(git rev-parse --short HEAD)"
	printf -- '- Load average before: %s; after: %s\n\n' "$load_before" "$load_after"
	printf 'Each figure is ns per operation; one operation handles all 1,000,000 customers (ScoreOne: one).\n\n'
	printf '```\n'
	grep -E '^(Benchmark|goos|goarch|cpu)' "$out"
	printf '```\n'
} >"$results"
echo "report written to $results"
