#!/usr/bin/env bash
# Captures a LARGE real kernel trace for the benchmarks, in two forms holding the same events:
#   OUT/large.dat     trace.dat v6 (uncompressed), converted from large-v7.dat
#   OUT/large-v7.dat  what `trace-cmd extract` writes (v7, zstd-compressed)
#   OUT/large.txt  the kernel's own text (/sys/kernel/tracing/trace), read from the same buffer
#
# `trace-cmd record` does not work on this machine (it cannot write ftrace_enabled), so this script
# drives tracefs directly: it enlarges the ring buffer, enables tracepoints (writeback, filemap,
# ext4 writepages, sched, kmem page alloc/free, plus a stacktrace trigger on folio_wait_writeback),
# runs a file-I/O workload (io_workload.c pwrite + mmap, and a tree copy) for DURATION seconds, stops tracing, saves the text form first (reading
# `trace` does not consume the buffer), then extracts the binary form (which consumes it), and
# finally puts tracing back as it found it (events off, trigger removed, buffer cleared, buffer
# size restored).
#
# Usage: Benchmarks/capture-large.sh [OUT_DIR] [DURATION_S]
#   env: BUFFER_KB (per CPU, default 200000)
# Needs root and tracepoints (kprobes are not needed). Exits 3 if tracing is not available.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/.work}
duration=${2:-8}
buffer_kb=${BUFFER_KB:-200000}
T=/sys/kernel/tracing

say() { printf 'capture-large: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then say "needs root to use tracefs; skipping"; exit 3; fi
command -v trace-cmd >/dev/null || { say "trace-cmd not installed; skipping"; exit 3; }
if [ ! -w "$T/tracing_on" ]; then
    mkdir -p "$T" 2>/dev/null || true
    mount -t tracefs nodev "$T" 2>/dev/null || true
fi
if [ ! -w "$T/tracing_on" ] || [ ! -d "$T/events/writeback" ]; then
    say "tracefs (with writeback tracepoints) is not available at $T; skipping"; exit 3
fi

mkdir -p "$out"
scratch=$out/capture-scratch
events=(
    writeback filemap
    ext4/ext4_writepages ext4/ext4_writepages_result
    sched/sched_switch sched/sched_waking
    kmem/mm_page_alloc kmem/mm_page_free
)
stack_event=writeback/folio_wait_writeback

# --- remember the state to restore ---------------------------------------------------------------
old_buffer_kb=$(sed -E 's/.*expanded: ([0-9]+).*/\1/; s/^([0-9]+).*/\1/' "$T/buffer_size_kb")
old_tracing_on=$(cat "$T/tracing_on")
old_overwrite=$(cat "$T/options/overwrite")
if [ -n "$(cat "$T/set_event")" ] || [ "$(cat "$T/current_tracer")" != nop ]; then
    say "tracing is in use (set_event or current_tracer not empty); not touching it; skipping"
    exit 3
fi

restore() {
    set +e
    touch "$scratch/stop" 2>/dev/null
    wait 2>/dev/null
    echo 0 > "$T/tracing_on"
    for e in "${events[@]}"; do echo 0 > "$T/events/$e/enable" 2>/dev/null; done
    echo '!stacktrace' > "$T/events/$stack_event/trigger" 2>/dev/null
    echo > "$T/trace"
    echo "$old_buffer_kb" > "$T/buffer_size_kb"
    echo "$old_overwrite" > "$T/options/overwrite"
    echo "$old_tracing_on" > "$T/tracing_on"
    rm -rf "$scratch"
}
trap restore EXIT

# --- set up ------------------------------------------------------------------------------------
echo 0 > "$T/tracing_on"
echo > "$T/trace"
say "buffer_size_kb $old_buffer_kb -> $buffer_kb per CPU"
echo "$buffer_kb" > "$T/buffer_size_kb"
echo 0 > "$T/options/overwrite"          # when full, drop new events (counted) instead of old ones
for e in "${events[@]}"; do
    if [ -e "$T/events/$e/enable" ]; then echo 1 > "$T/events/$e/enable"; else say "no event $e"; fi
done
echo stacktrace > "$T/events/$stack_event/trigger" 2>/dev/null || say "no stacktrace trigger"

# --- workload: dirty, fsync, re-dirty through a shared mapping, copy and delete files -------------
rm -rf "$scratch"; mkdir -p "$scratch"
cc -O2 -o "$out/io_workload" "$here/io_workload.c"
copier() {  # copy a tree of many small files, sync, read it back, delete
    local d=$scratch/c src=/usr/share/doc
    [ -d /usr/lib/python3 ] && src=/usr/lib/python3
    while [ ! -e "$scratch/stop" ]; do
        cp -r "$src" "$d"; sync; find "$d" -type f -print0 | head -z -n 2000 | xargs -0 cat >/dev/null 2>&1
        rm -rf "$d"
    done
}
echo 1 > "$T/tracing_on"
say "tracing a file-I/O workload for ${duration}s"
"$out/io_workload" "$scratch" "$duration" pwrite >&2 &
"$out/io_workload" "$scratch" "$duration" mmap >&2 &
copier &
sleep "$duration"
echo 0 > "$T/tracing_on"
touch "$scratch/stop"     # the workers finish their current step (untraced) and exit
wait

for c in "$T"/per_cpu/cpu*; do
    say "$(basename "$c"): $(grep -E '^(entries|overrun|dropped events)' "$c/stats" | tr '\n' ' ')"
done

# --- save both forms from the same (stopped) buffer -----------------------------------------------
say "saving the kernel text to $out/large.txt"
cat "$T/trace" > "$out/large.txt.tmp" && mv "$out/large.txt.tmp" "$out/large.txt"
# `trace-cmd extract` (3.1.6) ignores --file-version; it writes its default form (v7, zstd when
# available). The benchmark's main input is the uncompressed v6 twin made with `trace-cmd convert`.
say "extracting to $out/large-v7.dat and converting to trace.dat v6 $out/large.dat"
trace-cmd extract -o "$out/large-v7.dat.tmp" >"$out/extract.log" 2>&1 \
    || { cat "$out/extract.log" >&2; exit 1; }
mv "$out/large-v7.dat.tmp" "$out/large-v7.dat"
trace-cmd convert --file-version 6 --compression none -i "$out/large-v7.dat" -o "$out/large.dat.tmp" \
    >>"$out/extract.log" 2>&1 || { cat "$out/extract.log" >&2; exit 1; }
mv "$out/large.dat.tmp" "$out/large.dat"
ls -l "$out/large.dat" "$out/large-v7.dat" "$out/large.txt" >&2
