# scenario migrate_longterm: FOLL_LONGTERM pins (io_uring fixed buffers) on ZONE_MOVABLE pages
# -> migrate_pages(reason=longterm_pin), succeeding (control) and failing because the pages
# have extra references (vmsplice pipe: FOLL_GET; pinlab_gup driver: FOLL_PIN).
# Boot with movablecore=...: capture.sh EXTRA_APPEND="movablecore=600M"
lab_meta
grep -q movablecore /proc/cmdline || echo "WARNING: no movablecore= on the kernel command line (no ZONE_MOVABLE)"
if [ -f /lab/modules/pinlab_gup.ko ]; then
    insmod /lab/modules/pinlab_gup.ko && echo "pinlab_gup loaded" || echo "insmod pinlab_gup failed"
fi
cat /proc/zoneinfo > /out/guest-zoneinfo.txt
grep -E 'pgmigrate|thp_migration|nr_foll_pin|compact_' /proc/vmstat > /out/vmstat-before.txt
lab_define_kprobes
lab_trace_run workload-ground-truth /lab/bin/migrate_longterm ${LAB_NPAGES:-32}
grep -E 'pgmigrate|thp_migration|nr_foll_pin|compact_' /proc/vmstat > /out/vmstat-after.txt
