# scenario release_mismatch: a buggy test driver (pinlab_gup.ko) releases FOLL_GET references with
# unpin_user_pages() and FOLL_PIN pins with put_page().  The module must be loaded before
# lab_define_kprobes so that its pinlab_release_* helpers can be probed.
lab_meta
insmod /lab/modules/pinlab_gup.ko && echo "pinlab_gup loaded" || echo "insmod pinlab_gup failed"
ls -la /dev/pinlab
grep pinlab /proc/kallsyms > /out/pinlab-kallsyms.txt
grep -E 'nr_foll_pin' /proc/vmstat > /out/vmstat-before.txt
lab_define_kprobes
lab_trace_run workload-ground-truth /lab/bin/release_mismatch ${LAB_NPAGES:-8}
grep -E 'nr_foll_pin' /proc/vmstat > /out/vmstat-after.txt
cat /proc/sys/kernel/tainted > /out/tainted.txt
