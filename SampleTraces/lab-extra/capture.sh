#!/bin/bash
# capture.sh SCENARIO - boot the guest, run one scenario under tracing, bring the traces back.
#
#   env: ACCEL=kvm|tcg (default: build/accel written by build-guest.sh)
#        MEM=1536 (MiB)  SMP=2  TIMEOUT=300 (s, whole VM)  OUTDIR=<lab>/captures
#        KEEP_IMAGES=1   keep build/run/SCENARIO/{data,out}.img
#        EXTRA_APPEND="..."  extra kernel command-line words (e.g. movablecore=600M; unknown
#                            NAME=value words reach the guest /init as environment variables,
#                            e.g. LAB_ROUNDS=1 for the scenario scripts)
#        CAPNAME=name    output sub-directory name (default: SCENARIO)
#
# Output: $OUTDIR/SCENARIO/ (see README.md)
set -euo pipefail
LAB=$(cd "$(dirname "$0")" && pwd)
B=${BUILD:-$LAB/build}
SCEN=${1:?usage: capture.sh SCENARIO   (odirect_shared iouring_fixed vmsplice process_vm thp_hugetlb selftests probe)}
OUTDIR=${OUTDIR:-$LAB/captures}
CAPNAME=${CAPNAME:-$SCEN}
OUT=$OUTDIR/$CAPNAME
ACCEL=${ACCEL:-$(cat "$B/accel" 2>/dev/null || echo tcg)}
MEM=${MEM:-1536}
SMP=${SMP:-2}
TIMEOUT=${TIMEOUT:-300}
[ -f "$B/initramfs.cpio.gz" ] || { echo "run build-guest.sh first" >&2; exit 1; }
[ -f "$LAB/guest/scenarios/$SCEN.sh" ] || { echo "unknown scenario $SCEN" >&2; exit 1; }

RUN=$B/run/$CAPNAME
rm -rf "$RUN"; mkdir -p "$RUN"
# data disk: fresh ext4 (4 KiB blocks, no lazy init so the guest does no background I/O)
truncate -s 1G "$RUN/data.img"
mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 -L labdata "$RUN/data.img"
# output disk: raw, the guest writes a tar stream onto it
truncate -s 512M "$RUN/out.img"

case $ACCEL in
    kvm) ACC="-accel kvm -cpu host,-arch-capabilities" ;;
    *)   ACC="-accel tcg,thread=multi -cpu max,la57=off" ;;
esac
APPEND="console=ttyS0 panic=-1 nokaslr lab.scenario=$SCEN hugepages=64 transparent_hugepage=always"
APPEND="$APPEND mitigations=off tsc=reliable loglevel=4"
[ -n "${EXTRA_APPEND:-}" ] && APPEND="$APPEND $EXTRA_APPEND"
echo "[capture] $SCEN: accel=$ACCEL mem=${MEM}M smp=$SMP"
T0=$(date +%s)
set +e
timeout "$TIMEOUT" qemu-system-x86_64 $ACC -smp "$SMP" -m "$MEM" -nographic -no-reboot \
    -kernel "$B/vmlinuz" -initrd "$B/initramfs.cpio.gz" -append "$APPEND" \
    -drive file="$RUN/data.img",if=virtio,format=raw,cache=unsafe \
    -drive file="$RUN/out.img",if=virtio,format=raw,cache=unsafe \
    -nic none > "$RUN/console.log" 2>&1
QRC=$?
set -e
T1=$(date +%s)
echo "[capture] qemu exit $QRC after $((T1-T0)) s"
grep -q LAB-TAR-WRITTEN "$RUN/console.log" || { echo "guest did not finish; see $RUN/console.log" >&2; tail -30 "$RUN/console.log" >&2; exit 1; }

rm -rf "$OUT"; mkdir -p "$OUT"
tar -xf "$RUN/out.img" -C "$OUT"
sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' "$RUN/console.log" | tr -d '\r' > "$OUT/qemu-console.log"
{
    echo "scenario=$SCEN"
    echo "capname=$CAPNAME"
    echo "accel=$ACCEL smp=$SMP mem=${MEM}M"
    echo "qemu_wall_s=$((T1-T0))"
    echo "host_kernel=$(uname -r)"
    echo "qemu=$(qemu-system-x86_64 --version | head -1)"
    echo "trace_cmd=$(trace-cmd --version 2>&1 | grep -o 'version [^ ]*' | head -1)"
    echo "captured_utc=$(date -u +%FT%TZ)"
    echo "append=$APPEND"
} > "$OUT/capture-info.txt"

# host-side post-processing (same trace-cmd 3.1.6 as in the guest)
if [ -f "$OUT/trace.dat" ]; then
    trace-cmd report -i "$OUT/trace.dat" > "$OUT/trace.txt" 2> "$OUT/trace-report.stderr" || true
    [ -s "$OUT/trace-report.stderr" ] || rm -f "$OUT/trace-report.stderr"
    # same data re-written as file version 7, compressed (this trace-cmd build only has zstd,
    # no zlib: `trace-cmd list -c`)
    trace-cmd convert -i "$OUT/trace.dat" --file-version 7 --compression zstd -o "$OUT/trace-v7-zstd.dat" \
        > /dev/null 2>&1 || echo "convert to v7 failed" >> "$OUT/capture-info.txt"
    for f in trace.dat trace-v7-zstd.dat; do
        [ -f "$OUT/$f" ] && echo "$f: $(head -c 12 "$OUT/$f" | tail -c 9 | tr -d '\0\n') ($(stat -c %s "$OUT/$f") bytes)" >> "$OUT/capture-info.txt"
    done
    if [ -f "$OUT/trace-v7-zstd.dat" ]; then
        a=$(md5sum < "$OUT/trace.txt"); b=$(trace-cmd report -i "$OUT/trace-v7-zstd.dat" 2>/dev/null | md5sum)
        [ "$a" = "$b" ] && echo "trace-cmd report identical for v6 and v7 files: yes" >> "$OUT/capture-info.txt" \
                        || echo "trace-cmd report identical for v6 and v7 files: NO" >> "$OUT/capture-info.txt"
    fi
fi
[ "${KEEP_IMAGES:-0}" = 1 ] || rm -f "$RUN/data.img" "$RUN/out.img"
if [ -x "$LAB/summarize.py" ] && [ -f "$OUT/trace.txt" ]; then
    python3 "$LAB/summarize.py" "$OUT" > "$OUT/summary.txt" 2>&1 || true
fi
echo "[capture] files in $OUT:"; ls -la "$OUT"
