/* migrate_longterm: FOLL_LONGTERM pins on ZONE_MOVABLE pages -> migration (reason longterm_pin),
 * and that migration failing because other references/pins hold the pages.
 *
 * Needs the guest booted with movablecore=... (capture.sh EXTRA_APPEND) so that user anon memory
 * (GFP_HIGHUSER_MOVABLE) comes from ZONE_MOVABLE.  6.1: pin_user_pages(FOLL_LONGTERM) ->
 * __gup_longterm_locked -> check_and_migrate_movable_pages(): pages that are not
 * folio_is_longterm_pinnable() (Movable zone) are isolated, unpinned and migrate_pages(...,
 * MIGRATE_SYNC, MR_LONGTERM_PIN) moves them out; then GUP is retried (-EAGAIN loop).  If
 * migrate_pages() cannot move every page it returns >0 and GUP fails with -ENOMEM.
 *
 *   case 1 CONTROL : anon buffer A (Movable) registered as io_uring fixed buffer -> migrated,
 *                    registration succeeds, pfns change (Movable -> DMA32/Normal); unregister.
 *   case 2 FAILURE : anon buffer B (Movable); its first half is vmsplice()d into a pipe that is
 *                    not read (the pipe holds FOLL_GET page references).  Register B:
 *                    migration of the spliced pages fails (refcount != expected, -EAGAIN x10
 *                    passes) -> register returns -ENOMEM.  Then the pipe is drained (refs
 *                    dropped) and B is registered again: migration succeeds.
 *   case 3 FAILURE (only if /dev/pinlab from the pinlab_gup test module exists): buffer C's
 *                    pages are held by a driver FOLL_PIN pin (pin_user_pages_fast, no
 *                    FOLL_LONGTERM) while C is registered -> migration fails -> -ENOMEM;
 *                    the driver unpins, registration retried.
 * usage: migrate_longterm [npages=32]
 */
#include "gt.h"
#include <liburing.h>
#include <sys/uio.h>
#include "pinlab_ioctl.h"

struct zinfo { char name[16]; unsigned long start, spanned, present; };
static struct zinfo zones[8];
static int nzones;

static void read_zones(void)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	char line[256];
	struct zinfo *z = NULL;

	while (f && fgets(line, sizeof(line), f)) {
		char nm[32];
		unsigned long v;
		if (sscanf(line, "Node %*d, zone %31s", nm) == 1) {
			if (nzones < 8) { z = &zones[nzones++]; memset(z, 0, sizeof(*z)); snprintf(z->name, sizeof(z->name), "%s", nm); }
			continue;
		}
		if (!z) continue;
		if (sscanf(line, " spanned %lu", &v) == 1) z->spanned = v;
		else if (sscanf(line, " present %lu", &v) == 1) z->present = v;
		else if (sscanf(line, " start_pfn: %lu", &v) == 1) z->start = v;
	}
	if (f) fclose(f);
	for (int i = 0; i < nzones; i++)
		gt("zone %-8s start_pfn=0x%lx spanned=%lu present=%lu -> pfn range [0x%lx, 0x%lx)", zones[i].name,
		   zones[i].start, zones[i].spanned, zones[i].present, zones[i].start, zones[i].start + zones[i].spanned);
}

/* ZONE_MOVABLE is carved out of the top of the highest zone and overlaps its span, so test
 * Movable first */
static const char *zone_of(uint64_t pfn)
{
	for (int i = 0; i < nzones; i++)
		if (!strcmp(zones[i].name, "Movable") && zones[i].spanned && pfn >= zones[i].start &&
		    pfn < zones[i].start + zones[i].spanned)
			return "Movable";
	for (int i = nzones - 1; i >= 0; i--)
		if (zones[i].spanned && pfn >= zones[i].start && pfn < zones[i].start + zones[i].spanned)
			return zones[i].name;
	return "?";
}

static uint64_t pfn_of(void *va)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;
	pread(fd, &e, 8, ((uintptr_t)va / PAGE_SZ) * 8);
	close(fd);
	return (e & (1ULL << 63)) ? (e & ((1ULL << 55) - 1)) : 0;
}

/* pfns (run-length) + per-zone page counts of [buf, buf+n pages) */
static void zone_report(const char *tag, char *buf, int n)
{
	char out[512];
	int o = 0, cnt[9] = {0};

	gt_pfns(tag, buf, n * PAGE_SZ);
	for (int i = 0; i < n; i++) {
		const char *z = zone_of(pfn_of(buf + i * PAGE_SZ));
		int k;
		for (k = 0; k < nzones; k++) if (!strcmp(z, zones[k].name)) break;
		cnt[k]++;
	}
	for (int k = 0; k <= nzones; k++)
		if (cnt[k]) o += snprintf(out + o, sizeof(out) - o, " %s=%d", k < nzones ? zones[k].name : "?", cnt[k]);
	gt("zones %s pages=%d:%s", tag, n, out);
}

static char *alloc_anon(int n, char fill)
{
	char *p = mmap(NULL, n * PAGE_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(p, n * PAGE_SZ, MADV_NOHUGEPAGE);   /* order-0 folios only */
	memset(p, fill, n * PAGE_SZ);
	return p;
}

static struct io_uring ring;

static int reg(const char *what, char *buf, int n)
{
	struct iovec iov = { buf, n * PAGE_SZ };
	gt("%s REGISTER begin addr=%p len=%lu (%d pages) -> pin_user_pages(FOLL_WRITE|FOLL_LONGTERM)", what, buf,
	   n * PAGE_SZ, n);
	double t0 = gt_now();
	int r = io_uring_register_buffers(&ring, &iov, 1);
	gt("%s REGISTER end ret=%d%s%s (%.3f s)%s", what, r, r < 0 ? " err=" : "", r < 0 ? strerror(-r) : "",
	   gt_now() - t0, r == 0 ? " -> PINNED" : " -> REFUSED");
	return r;
}

static void unreg(const char *what)
{
	gt("%s UNREGISTER begin", what);
	int r = io_uring_unregister_buffers(&ring);
	gt("%s UNREGISTER end ret=%d", what, r);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 32;
	int kvm, r, p[2];
	char cmdline[512] = "";

	gt_init();
	int cf = open("/proc/cmdline", O_RDONLY);
	if (cf >= 0) { int k = read(cf, cmdline, sizeof(cmdline) - 1); if (k > 0) cmdline[k - 1] = 0; close(cf); }
	gt("migrate_longterm start npages=%d cmdline: %s", n, cmdline);
	read_zones();
	kvm = gt_kvm_subscribe();
	r = io_uring_queue_init(4, &ring, 0);
	if (r) { gt("io_uring_queue_init failed %d", r); return 1; }

	/* ---------------- case 1: control */
	char *a = alloc_anon(n, 'A');
	gt("case1 CONTROL anon buffer A %p %d pages, touched", a, n);
	zone_report("case1-A-before", a, n);
	r = reg("case1", a, n);
	zone_report("case1-A-after-register", a, n);
	if (r == 0) unreg("case1");

	/* ---------------- case 2: pipe references block the migration */
	char *b = alloc_anon(n, 'B');
	int half = n / 2 > 16 ? 16 : n / 2;
	gt("case2 FAILURE anon buffer B %p %d pages, touched", b, n);
	zone_report("case2-B-before", b, n);
	pipe(p);
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	struct iovec vi = { b, half * PAGE_SZ };
	gt("case2 VMSPLICE begin B[0..%d) %lu bytes into pipe (pipe keeps FOLL_GET refs, not read)", half,
	   half * PAGE_SZ);
	ssize_t vr = vmsplice(p[1], &vi, 1, 0);
	gt("case2 VMSPLICE end ret=%zd", vr);
	zone_report("case2-B-after-vmsplice", b, n);
	r = reg("case2", b, n);
	zone_report("case2-B-after-failed-register", b, n);
	if (r == 0) unreg("case2(unexpected success)");
	{
		char *tmp = malloc(half * PAGE_SZ);
		ssize_t got = 0, k;
		while (got < vr && (k = read(p[0], tmp + got, half * PAGE_SZ - got)) > 0) got += k;
		gt("case2 PIPE drained %zd bytes (pipe page references dropped), first byte '%c'", got, got ? tmp[0] : '-');
		free(tmp);
	}
	close(p[0]); close(p[1]);
	r = reg("case2-retry", b, n);
	zone_report("case2-B-after-retry", b, n);
	if (r == 0) unreg("case2-retry");

	/* ---------------- case 3: a driver's (non-longterm) FOLL_PIN pin blocks the migration */
	int dev = open("/dev/pinlab", O_RDWR);
	if (dev < 0) {
		gt("case3 skipped: /dev/pinlab not available (%s)", strerror(errno));
	} else {
		char *c = alloc_anon(n, 'C');
		gt("case3 FAILURE anon buffer C %p %d pages, touched", c, n);
		zone_report("case3-C-before", c, n);
		struct pinlab_req q = { .addr = (uintptr_t)c, .npages = half };
		gt("case3 PINLAB_PIN_HOLD begin C[0..%d): driver pin_user_pages_fast(FOLL_WRITE) (FOLL_PIN, no LONGTERM), held", half);
		r = ioctl(dev, PINLAB_PIN_HOLD, &q);
		gt("case3 PINLAB_PIN_HOLD end ret=%d%s%s", r, r < 0 ? " err=" : "", r < 0 ? strerror(errno) : "");
		zone_report("case3-C-after-driver-pin", c, n);
		r = reg("case3", c, n);
		zone_report("case3-C-after-failed-register", c, n);
		if (r == 0) unreg("case3(unexpected success)");
		gt("case3 PINLAB_UNPIN_HELD begin (driver unpin_user_pages)");
		r = ioctl(dev, PINLAB_UNPIN_HELD, &q);
		gt("case3 PINLAB_UNPIN_HELD end ret=%d", r);
		r = reg("case3-retry", c, n);
		zone_report("case3-C-after-retry", c, n);
		if (r == 0) unreg("case3-retry");
		close(dev);
	}

	io_uring_queue_exit(&ring);
	if (kvm >= 0) close(kvm);
	gt("migrate_longterm done");
	return 0;
}
