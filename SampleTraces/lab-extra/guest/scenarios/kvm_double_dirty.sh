# scenario kvm_double_dirty: KVM (secondary MMU) guest memory backed by a MAP_SHARED ext4 file;
# vCPU writes, msync (writeback -> folio_mkclean -> mmu notifier -> KVM zaps the dirty SPTE and
# calls kvm_set_pfn_dirty), vCPU writes again, msync again.
# kprobes: kprobes.conf with a stacktrace trigger added to folio_mark_dirty, + kprobes-kvm.conf
lab_meta
mkdir -p /run/lab
sed 's#^- \(p:kprobes/folio_mark_dirty folio_mark_dirty \)#S \1#' /lab/kprobes.conf > /run/lab/kprobes-kvm-scenario.conf
cat /lab/kprobes-kvm.conf >> /run/lab/kprobes-kvm-scenario.conf
KPROBES_CONF=/run/lab/kprobes-kvm-scenario.conf lab_define_kprobes
sync; echo 3 > /proc/sys/vm/drop_caches
lab_trace_run workload-ground-truth /lab/bin/kvm_double_dirty /mnt/data ${LAB_ROUNDS:-2}
dmesg | grep -i -E 'kvm|svm' | tail -20 > /out/kvm-dmesg.txt
