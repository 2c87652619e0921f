/* release_mismatch: a (deliberately buggy) driver releases GUP references with the wrong API.
 * Uses /dev/pinlab from the pinlab_gup test module (module/pinlab_gup.c):
 *   case 1 control  PINLAB_GET_THEN_PUT   get_user_pages_fast(FOLL_WRITE) -> put_page()      (correct)
 *   case 2 control  PINLAB_PIN_THEN_UNPIN pin_user_pages_fast(FOLL_WRITE) -> unpin_user_pages (correct)
 *   case 3 BUG      PINLAB_GET_THEN_UNPIN get_user_pages_fast (FOLL_GET) -> unpin_user_pages()
 *   case 4 BUG      PINLAB_PIN_THEN_PUT   pin_user_pages_fast (FOLL_PIN) -> put_page() x1024
 * Each case uses its own anon buffer (order-0 pages, MADV_NOHUGEPAGE), kept mapped until exit,
 * so page pointers do not repeat across cases.  The module balances the refcount arithmetic of the buggy cases (see its
 * source); /proc/vmstat nr_foll_pin_acquired/released show the accounting imbalance.
 * usage: release_mismatch [npages=8]
 */
#include "gt.h"
#include "pinlab_ioctl.h"

static long vmstat(const char *key)
{
	/* fold the per-cpu vmstat diffs first, else nr_foll_pin_* lag behind (vm.stat_refresh) */
	int rf = open("/proc/sys/vm/stat_refresh", O_WRONLY);
	if (rf >= 0) { write(rf, "1", 1); close(rf); }
	FILE *f = fopen("/proc/vmstat", "r");
	char k[64];
	long v, r = -1;
	while (f && fscanf(f, "%63s %ld", k, &v) == 2)
		if (!strcmp(k, key)) { r = v; break; }
	if (f) fclose(f);
	return r;
}

static int dev;

static void run_case(int no, const char *what, unsigned long cmd, const char *cmdname, int n)
{
	char *b = mmap(NULL, n * PAGE_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char tag[64], refs[512];
	int o = 0;

	madvise(b, n * PAGE_SZ, MADV_NOHUGEPAGE);
	memset(b, 'a' + no, n * PAGE_SZ);
	gt("case%d %s buffer %p %d pages, touched", no, what, b, n);
	snprintf(tag, sizeof(tag), "case%d", no);
	gt_pfns(tag, b, n * PAGE_SZ);
	long acq0 = vmstat("nr_foll_pin_acquired"), rel0 = vmstat("nr_foll_pin_released");
	struct pinlab_req q = { .addr = (uintptr_t)b, .npages = n };
	gt("case%d %s begin addr=%p npages=%d (vmstat nr_foll_pin_acquired=%ld released=%ld)", no, cmdname, b, n,
	   acq0, rel0);
	int r = ioctl(dev, cmd, &q);
	int e = errno;
	long acq1 = vmstat("nr_foll_pin_acquired"), rel1 = vmstat("nr_foll_pin_released");
	for (int i = 0; i < PINLAB_NREF && i < n; i++)
		o += snprintf(refs + o, sizeof(refs) - o, " [%d] page=0x%llx pfn=0x%llx refcount after_gup=%d after_release=%d", i,
			      (unsigned long long)q.page[i],
			      q.page[i] ? (unsigned long long)((q.page[i] - 0xffffea0000000000ULL) / 64) : 0ULL,
			      q.ref_after_gup[i], q.ref_after_release[i]);
	gt("case%d %s end ioctl=%d%s%s gup_ret=%d%s", no, cmdname, r, r < 0 ? " err=" : "", r < 0 ? strerror(e) : "",
	   q.gup_ret, refs);
	gt("case%d vmstat nr_foll_pin_acquired %ld->%ld (+%ld) nr_foll_pin_released %ld->%ld (+%ld)", no, acq0, acq1,
	   acq1 - acq0, rel0, rel1, rel1 - rel0);
	gt_pfns(tag, b, n * PAGE_SZ);
	/* buffer stays mapped until exit, so the next case gets different pages */
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 8;

	gt_init();
	gt("release_mismatch start npages=%d", n);
	dev = open("/dev/pinlab", O_RDWR);
	if (dev < 0) { gt("cannot open /dev/pinlab: %s", strerror(errno)); return 1; }
	run_case(1, "CONTROL get/put", PINLAB_GET_THEN_PUT,
		 "PINLAB_GET_THEN_PUT (get_user_pages_fast FOLL_GET -> put_page)", n);
	run_case(2, "CONTROL pin/unpin", PINLAB_PIN_THEN_UNPIN,
		 "PINLAB_PIN_THEN_UNPIN (pin_user_pages_fast FOLL_PIN -> unpin_user_pages)", n);
	run_case(3, "BUG get/unpin", PINLAB_GET_THEN_UNPIN,
		 "PINLAB_GET_THEN_UNPIN (get_user_pages_fast FOLL_GET -> +1023 get_page -> unpin_user_pages: MISMATCH)", n);
	run_case(4, "BUG pin/put", PINLAB_PIN_THEN_PUT,
		 "PINLAB_PIN_THEN_PUT (pin_user_pages_fast FOLL_PIN -> put_page x1024: MISMATCH)", n);
	close(dev);
	gt("release_mismatch done");
	return 0;
}
