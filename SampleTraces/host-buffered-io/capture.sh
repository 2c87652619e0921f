set -e
T=/sys/kernel/tracing
echo 0 > $T/tracing_on
echo > $T/trace
echo 4096 > $T/buffer_size_kb
echo mono > $T/trace_clock
for e in writeback/writeback_dirty_folio writeback/folio_wait_writeback filemap/mm_filemap_add_to_page_cache filemap/mm_filemap_delete_from_page_cache ext4/ext4_writepages ext4/ext4_writepages_result migrate/mm_migrate_pages; do echo 1 > $T/events/$e/enable; done
echo stacktrace > $T/events/writeback/writeback_dirty_folio/trigger
echo 1 > $T/tracing_on
date +%s.%N; cat /proc/uptime
for i in 1 2 3; do dd if=/dev/urandom of=/tmp/cap/buffered.$i bs=64k count=64 conv=fsync status=none; done
dd if=/tmp/cap/buffered.1 of=/dev/null bs=64k status=none
sync
echo 0 > $T/tracing_on
cat $T/trace > /tmp/cap/trace.txt
rm -f trace.dat; trace-cmd extract -o /tmp/cap/trace.dat >/dev/null 2>&1 || echo extract failed
echo '!stacktrace' > $T/events/writeback/writeback_dirty_folio/trigger
echo 0 > $T/events/enable
echo local > $T/trace_clock
rm -f /tmp/cap/buffered.*
