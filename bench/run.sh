#!/usr/bin/env bash
# Reruns the tables of BENCHMARKS.md with `raftka bench`, on this machine.
#
#   bench/run.sh                      # the full run: 3 runs of 20 s each (~35 min)
#   RUNS=1 DURATION=5s bench/run.sh   # a quick check that everything works
#
# For every record size: the storage ceiling (synced Pebble batches), one
# in-process broker with RF=1, three in-process brokers with RF=3 (all on
# Pebble, on this disk, acks=all, idempotent), and franz-go's kfake (in
# memory, not replicated) driven by the same load generator. Each is run
# RUNS times; the tables quote medians, and broker figures as a fraction of
# the storage ceiling for the same record size, since absolute numbers move
# between machines. Then the produce latency at half the median maximum
# rate (open loop), next to the storage engine's own commit latency at the
# same rate, and the cost of many partitions.
#
# Every run's JSON is kept in $OUT; the tables go to $OUT/table.md and
# replace the generated section of $BENCHMARKS (set BENCHMARKS= to skip).
# Run it on a quiet machine: other load makes the figures low and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-20s}
# Each process starts cold: its heap, Pebble's memtables and batch buffers
# grow to their working size in the first seconds, and on a VM that backs
# guest memory lazily every new page is a host fault (about 3 s of CPU per
# GiB on the benchmark machine). A 3-broker RF=3 run grows to gigabytes and
# takes 10 s or more to catch up with its schedule; 15 s of warm-up keeps
# that transient out of the steady-state figures (as OpenMessaging
# Benchmark's minute of warm-up does). Set WARMUP=5s to see it.
WARMUP=${WARMUP:-15s}
# The latency runs at half the maximum rate must start their window caught
# up with their schedule: a run still working off its start-up backlog
# measures the backlog. Three brokers at RF=3 took longer than 15 s to catch
# up on the benchmark machine (a run of 2026-12-07 produced 58–62k
# records/s against a target of 51.8k for its whole window, p99 1.9 s);
# with 30 s they were caught up (p99 47 ms). Caught up is not yet steady:
# in its first minute a fresh broker's Go heap and Pebble's memtables still
# grow to their working size, and every new page is a page fault inside the
# produce path. One broker at half its maximum (200k records/s, 1 KiB, at
# fba052d, one session of 2026-12-07) had a whole-window p99 of 11.2–120 ms
# (median 13.6, 8 runs) after 30 s of warm-up and 5.4–15.6 ms (median 7.2,
# 6 runs) after 90 s; LATENCY_WARMUP=30s shows the first minute.
LATENCY_WARMUP=${LATENCY_WARMUP:-90s}
STORAGE_DURATION=${STORAGE_DURATION:-$DURATION}
SIZES=${SIZES:-"100 1024"}
PARTITIONS=${PARTITIONS:-8}     # partitions of the produce topic
PRODUCERS=${PRODUCERS:-1}
LATENCY=${LATENCY:-1}           # 0 skips the half-rate latency runs
MANY_PARTITIONS=${MANY_PARTITIONS:-10000}  # 0 skips the partitions runs
IDLE_PARTITIONS=${IDLE_PARTITIONS:-2000}   # at RF=3 on three brokers
IDLE_WINDOW=${IDLE_WINDOW:-10s}
PARTITION_RUNS=${PARTITION_RUNS:-$RUNS}
OUT=${OUT:-${TMPDIR:-/tmp}/raftka-bench-results}
BENCHMARKS=${BENCHMARKS-BENCHMARKS.md}
DATA_DIR=${DATA_DIR:-}          # where the temporary Pebble directories go (default: $TMPDIR)

bin=$(mktemp -d)/raftka
# The commit the binary is built from, marked when the tree differs from it.
commit="an unknown commit (not a git checkout)"
if c=$(git rev-parse --short HEAD 2>/dev/null); then
	commit=$c
	git diff --quiet HEAD -- || commit="$c plus uncommitted changes"
fi
echo "== building raftka at $commit"
go build -o "$bin" ./cmd/raftka
go build -o "$(dirname "$bin")/benchtable" ./bench/internal/benchtable
table="$(dirname "$bin")/benchtable"

rm -rf "$OUT"
mkdir -p "$OUT"
datadir=()
if [ -n "$DATA_DIR" ]; then datadir=(--data-dir "$DATA_DIR"); fi

# bench GROUP ARGS...: runs `raftka bench ARGS` RUNS times into $OUT/GROUP.
bench() {
	local group=$1
	shift
	mkdir -p "$OUT/$group"
	for i in $(seq 1 "$RUNS"); do
		echo "== $group run $i/$RUNS: raftka bench $*"
		"$bin" bench "$@" "${datadir[@]}" --json "$OUT/$group/run-$i.json" >"$OUT/$group/run-$i.txt" 2>"$OUT/$group/run-$i.log" || {
			echo "failed; see $OUT/$group/run-$i.log" >&2
			tail -5 "$OUT/$group/run-$i.log" >&2
			exit 1
		}
		grep -E '^(produced|written|create|idle cpu)|send → ack' "$OUT/$group/run-$i.txt" | sed 's/^/   /'
	done
}

load=(--duration "$DURATION" --warmup "$WARMUP" --partitions "$PARTITIONS" --producers "$PRODUCERS" --acks all --idempotence)
n=10
for size in $SIZES; do
	bench "$n-storage-$size" storage --record-size "$size" --duration "$STORAGE_DURATION"
	bench "$((n + 1))-produce-rf1-$size" produce --in-process 1 --storage pebble --replicas 1 --record-size "$size" "${load[@]}"
	bench "$((n + 2))-produce-rf3-$size" produce --in-process 3 --storage pebble --replicas 3 --record-size "$size" "${load[@]}"
	bench "$((n + 3))-produce-kfake-$size" produce --kfake --replicas 1 --record-size "$size" "${load[@]}"
	n=$((n + 10))
done

if [ "$LATENCY" != 0 ]; then
	for size in $SIZES; do
		for rf in 1 3; do
			max=$("$table" -median-rate "$(ls -d "$OUT"/*-produce-rf$rf-$size)")
			half=$((max / 2))
			bench "$n-latency-rf$rf-$size" produce --in-process "$rf" --storage pebble --replicas "$rf" --record-size "$size" --rate "$half" "${load[@]}" --warmup "$LATENCY_WARMUP"
			n=$((n + 1))
			if [ "$rf" = 1 ]; then
				# The floor: the storage engine alone at the same rate, in
				# 16 KiB values (about one partition's produced batch) and
				# group commits, as the broker writes its log.
				batch=$((16384 / size))
				bench "$n-latency-storage-$size" storage --record-size "$size" --rate "$half" --batch-records "$batch" --value-records "$batch" --warmup "$WARMUP" --duration "$STORAGE_DURATION"
				n=$((n + 1))
			fi
		done
	done
fi

if [ "$MANY_PARTITIONS" != 0 ]; then
	saved=$RUNS
	RUNS=$PARTITION_RUNS
	bench "$n-partitions-create" partitions --in-process 1 --storage pebble --replicas 1 --count "$MANY_PARTITIONS" --idle-window "$IDLE_WINDOW"
	bench "$((n + 1))-partitions-idle" partitions --in-process 3 --storage pebble --replicas 3 --count "$IDLE_PARTITIONS" --idle-window "$IDLE_WINDOW"
	RUNS=$saved
fi

note="Generated by \`bench/run.sh\` on $(date -u +%Y-%m-%d) (RUNS=$RUNS, DURATION=$DURATION, WARMUP=$WARMUP, LATENCY_WARMUP=$LATENCY_WARMUP, STORAGE_DURATION=$STORAGE_DURATION, IDLE_WINDOW=$IDLE_WINDOW, PARTITION_RUNS=$PARTITION_RUNS) at commit $commit: medians of the runs in each row."
{
	echo "\$ nproc"
	nproc
	echo "\$ lscpu | head -n 20"
	lscpu | head -n 20
} >"$OUT/machine.txt"
"$table" -dir "$OUT" -note "$note" -machine "$OUT/machine.txt" >"$OUT/table.md"
echo "== tables in $OUT/table.md"
cat "$OUT/table.md"
if [ -n "$BENCHMARKS" ]; then
	"$table" -dir "$OUT" -note "$note" -machine "$OUT/machine.txt" -update "$BENCHMARKS"
	echo "== updated $BENCHMARKS"
fi
