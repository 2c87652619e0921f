/* kvm_double_dirty: a secondary MMU (KVM, TDP MMU) dirtying file pages from its mmu_notifier
 * callback, twice, across a writeback clean.
 *
 * The guest memory of a tiny KVM VM (memslot 0, gpa 0..64 KiB) is a MAP_SHARED mapping of ext4
 * file K.  A vCPU in real mode runs at gpa 0x1000:
 *     inc byte [0x2000] ; inc byte [0x3000] ; hlt
 * i.e. it writes file pages 2 and 3 through KVM's SPTEs (KVM creates writable SPTEs with the
 * dirty bit preset).  Then the host does msync(MS_SYNC): writeback -> folio_clear_dirty_for_io
 * -> folio_mkclean -> page_mkclean_one -> mmu_notifier_invalidate_range_start(PROTECTION_PAGE)
 * -> kvm_mmu_notifier_invalidate_range_start -> zap SPTE -> kvm_set_pfn_dirty (6.1: SetPageDirty).
 * Round 2 runs the vCPU again (new write faults on the cleaned pages) and msyncs again.
 * Round 3 msyncs without running the vCPU (control: no SPTEs to zap).
 * usage: kvm_double_dirty [dir=/mnt/data] [rounds=2]
 */
#include "gt.h"
#include <linux/kvm.h>

#define KSZ (64UL << 10)

static int kvm_ok(int r, const char *what)
{
	if (r < 0) gt("%s failed: %s", what, strerror(errno));
	return r >= 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/mnt/data";
	int rounds = argc > 2 ? atoi(argv[2]) : 2;
	char path[256];
	struct stat st;

	gt_init();
	gt("kvm_double_dirty start rounds=%d", rounds);
	snprintf(path, sizeof(path), "%s/K", dir);
	int fd = write_file(path, KSZ, 0);
	fstat(fd, &st);
	unsigned char *mem = mmap(NULL, KSZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) { gt("mmap failed %s", strerror(errno)); return 1; }
	static const unsigned char code[] = {
		0xfe, 0x06, 0x00, 0x20,	/* inc byte [0x2000] */
		0xfe, 0x06, 0x00, 0x30,	/* inc byte [0x3000] */
		0xf4,			/* hlt */
	};
	memcpy(mem + 0x1000, code, sizeof(code));
	msync(mem, KSZ, MS_SYNC);
	gt("file K ino=%lu %lu bytes mapped MAP_SHARED at %p; code written to file page 1, msync'ed (all clean)",
	   (unsigned long)st.st_ino, KSZ, mem);
	gt_pfns("K", mem, KSZ);

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (!kvm_ok(kvm, "open /dev/kvm")) return 1;
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (!kvm_ok(vm, "KVM_CREATE_VM")) return 1;
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = KSZ, .userspace_addr = (uintptr_t)mem,
	};
	if (!kvm_ok(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region), "KVM_SET_USER_MEMORY_REGION")) return 1;
	gt("KVM VM fd=%d: memslot 0 gpa 0x0-0x%lx -> hva %p (file K, MAP_SHARED)", vm, KSZ, mem);
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (!kvm_ok(vcpu, "KVM_CREATE_VCPU")) return 1;
	int msz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, msz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);

	for (int r = 1; r <= rounds + 1; r++) {
		int do_run = r <= rounds;
		if (do_run) {
			struct kvm_sregs sregs;
			struct kvm_regs regs;
			ioctl(vcpu, KVM_GET_SREGS, &sregs);
			sregs.cs.base = 0; sregs.cs.selector = 0;
			sregs.ds.base = 0; sregs.ds.selector = 0;
			ioctl(vcpu, KVM_SET_SREGS, &sregs);
			memset(&regs, 0, sizeof(regs));
			regs.rip = 0x1000; regs.rflags = 0x2;
			ioctl(vcpu, KVM_SET_REGS, &regs);
			gt("round %d: KVM_RUN begin (vCPU writes gpa 0x2000 and 0x3000 = file K pages 2,3)", r);
			int rr = ioctl(vcpu, KVM_RUN, 0);
			int e = errno;
			gt("round %d: KVM_RUN end ret=%d%s%s exit_reason=%u (%s) bytes now: [0x2000]=%u [0x3000]=%u", r, rr,
			   rr < 0 ? " err=" : "", rr < 0 ? strerror(e) : "", run->exit_reason,
			   run->exit_reason == KVM_EXIT_HLT ? "HLT" : "other", mem[0x2000], mem[0x3000]);
			if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
				gt("  fail_entry reason=0x%llx", (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
				gt("  internal error suberror=%u", run->internal.suberror);
		} else {
			gt("round %d: control, vCPU not run (no new guest writes)", r);
		}
		gt_pfns("K", mem, KSZ);
		gt("round %d: MSYNC begin (MS_SYNC, writeback cleans file K pages)", r);
		int mr = msync(mem, KSZ, MS_SYNC);
		gt("round %d: MSYNC end ret=%d", r, mr);
	}
	close(vcpu); close(vm); close(kvm);
	munmap(mem, KSZ);
	close(fd);
	gt("kvm_double_dirty done");
	return 0;
}
