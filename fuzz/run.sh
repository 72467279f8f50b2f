#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while and prints one line per target.
#
#   fuzz/run.sh [seconds-per-target] [target...]     (make fuzz calls it)
#
# Each target fuzzes a working corpus under fuzz/target/fuzz-corpus/<target>
# (kept between runs, not committed), seeded from the committed corpus in
# fuzz/corpus/<target>, which is only read. To fold new finds back into the
# committed corpus, see fuzz/README.md. Crash inputs land in
# fuzz/artifacts/<target>/. Exits non-zero if any target crashed.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
secs=${1:-60}
shift || true
case $secs in '' | *[!0-9]*)
	echo "usage: $0 [seconds-per-target] [target...]" >&2
	exit 2
	;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Idempotent tool setup: cargo-fuzz needs a nightly toolchain for -Zsanitizer.
cargo +nightly --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
if ! cargo fuzz --version >/dev/null 2>&1; then
	cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked || cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

if [ $# -gt 0 ]; then
	targets=("$@")
else
	mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
count_artifacts() {
	[ -d "fuzz/artifacts/$1" ] || {
		echo 0
		return
	}
	find "fuzz/artifacts/$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l
}

failed=0
rows=()
for t in "${targets[@]}"; do
	work=fuzz/target/fuzz-corpus/$t
	mkdir -p "$work"
	before=$(count_artifacts "$t")
	echo "fuzzing $t for ${secs}s (log: $logs/$t.log)" >&2
	rc=0
	cargo +nightly fuzz run "$t" "$work" "fuzz/corpus/$t" -- \
		-max_total_time="$secs" -timeout=25 -print_final_stats=1 >"$logs/$t.log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n 1)
	[ -n "$runs" ] || runs=$(grep -oE '^#[0-9]+' "$logs/$t.log" | tail -n 1 | tr -d '#' || true)
	cov=$(grep -oE 'cov: [0-9]+' "$logs/$t.log" | tail -n 1 | cut -d' ' -f2 || true)
	crashes=$(($(count_artifacts "$t") - before))
	if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
		crashes="error (exit $rc)"
	fi
	[ "$rc" -eq 0 ] && [ "$crashes" = 0 ] || failed=1
	rows+=("$(printf '%-12s %12s %8s  %s' "$t" "${runs:-?}" "${cov:-?}" "$crashes")")
done

printf '\n%-12s %12s %8s  %s\n' target executions cov crashes
printf '%s\n' "${rows[@]}"
if [ "$failed" -ne 0 ]; then
	echo "crashes: see fuzz/artifacts/<target>/ and $logs/<target>.log" >&2
fi
exit "$failed"
