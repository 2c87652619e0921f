// SPDX-License-Identifier: GPL-2.0
/*
 * pinlab_gup - a deliberately BUGGY test "driver" for the PinScope trace lab.
 *
 * It plays a driver that releases user pages with the wrong API, so that a real kernel trace
 * contains a release-mismatch:
 *
 *   PINLAB_GET_THEN_UNPIN: get_user_pages_fast(FOLL_WRITE)  -> FOLL_GET reference (refcount +1)
 *                          ... released with unpin_user_pages()  (FOLL_PIN release)
 *   PINLAB_PIN_THEN_PUT:   pin_user_pages_fast(FOLL_WRITE)  -> FOLL_PIN pin (order-0 page:
 *                          refcount + GUP_PIN_COUNTING_BIAS)
 *                          ... released with put_page() x GUP_PIN_COUNTING_BIAS
 *   PINLAB_GET_THEN_PUT / PINLAB_PIN_THEN_UNPIN: the correct pairs (controls)
 *   PINLAB_PIN_HOLD / PINLAB_UNPIN_HELD: take a FOLL_PIN pin (no FOLL_LONGTERM) and keep it
 *                          until the second ioctl (used by migrate_longterm case 3)
 *
 * KEEPING THE GUEST SANE.  A real mismatch corrupts refcounts: unpin_user_page() on an order-0
 * page drops GUP_PIN_COUNTING_BIAS (1024) references although GUP took 1, and put_page() after a
 * pin drops 1 of the 1024.  So that the test machine survives the run, each buggy path balances
 * the arithmetic with invisible inline refcount operations:
 *   - GET_THEN_UNPIN: before the wrong unpin_user_pages(), each page gets
 *     GUP_PIN_COUNTING_BIAS - 1 = 1023 extra get_page() calls (inline, not visible to kprobes),
 *     so refcount = start + 1 + 1023 and unpin_user_pages() (-1024 per order-0 page) returns it
 *     to start.  (node stat NR_FOLL_PIN_RELEASED still grows without a matching ACQUIRED.)
 *   - PIN_THEN_PUT: put_page() is called GUP_PIN_COUNTING_BIAS times per page (refcount returns
 *     to start; NR_FOLL_PIN_ACQUIRED grows without a matching RELEASED).
 * Large folios (THP/hugetlb) are refused (-EINVAL after a correct release): for them a FOLL_PIN
 * uses folio->_pincount, which the balancing above cannot fix.
 *
 * What a trace sees: the GUP/PUP entry points and try_grab_folio/try_grab_page (flags with
 * FOLL_GET 0x4 or FOLL_PIN 0x40000), unpin_user_pages -> gup_put_folio(flags=0x40000), and the
 * noinline helpers below (kprobe-able module symbols: pinlab_release_put_page is how the
 * otherwise inline put_page() release becomes visible).  Stacks show [pinlab_gup] frames.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <linux/mutex.h>
#include "pinlab_ioctl.h"

static DEFINE_MUTEX(pinlab_lock);
static struct page *held[PINLAB_MAX_PAGES];
static int nheld;

static void fill_refs(struct page **pages, int n, __s32 *dst)
{
	int i;

	for (i = 0; i < PINLAB_NREF; i++)
		dst[i] = i < n ? page_ref_count(pages[i]) : -1;
}

static bool any_large(struct page **pages, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (PageCompound(pages[i]))
			return true;
	return false;
}

/* release helpers: noinline so that they are symbols in kallsyms that kprobes can attach to */
static noinline void pinlab_release_put_page(struct page **pages, int n, int times)
{
	int i, k;

	for (i = 0; i < n; i++)
		for (k = 0; k < times; k++)
			put_page(pages[i]);
}

static noinline void pinlab_release_unpin(struct page **pages, int n)
{
	unpin_user_pages(pages, n);
}

static noinline void pinlab_balance_get_page(struct page **pages, int n, int times)
{
	int i, k;

	for (i = 0; i < n; i++)
		for (k = 0; k < times; k++)
			get_page(pages[i]);
}

/* BUG 1: FOLL_GET reference released with unpin_user_pages() */
static noinline long pinlab_get_then_unpin(struct pinlab_req *rq, struct page **pages)
{
	int n = get_user_pages_fast(rq->addr, rq->npages, FOLL_WRITE, pages);

	rq->gup_ret = n;
	if (n <= 0)
		return n ? n : -EFAULT;
	fill_refs(pages, n, rq->ref_after_gup);
	if (any_large(pages, n)) {
		pinlab_release_put_page(pages, n, 1);	/* correct release */
		return -EINVAL;
	}
	/* keep refcounts sane: +1023 so the wrong -1024 below nets out to the GUP's +1 */
	pinlab_balance_get_page(pages, n, GUP_PIN_COUNTING_BIAS - 1);
	pinlab_release_unpin(pages, n);			/* WRONG: unpin of a FOLL_GET page */
	fill_refs(pages, n, rq->ref_after_release);
	return n;
}

/* BUG 2: FOLL_PIN pin released with put_page() */
static noinline long pinlab_pin_then_put(struct pinlab_req *rq, struct page **pages)
{
	int n = pin_user_pages_fast(rq->addr, rq->npages, FOLL_WRITE, pages);

	rq->gup_ret = n;
	if (n <= 0)
		return n ? n : -EFAULT;
	fill_refs(pages, n, rq->ref_after_gup);
	if (any_large(pages, n)) {
		unpin_user_pages(pages, n);
		return -EINVAL;
	}
	/* WRONG: put_page() for a FOLL_PIN pin (x1024 so the refcount returns to its start) */
	pinlab_release_put_page(pages, n, GUP_PIN_COUNTING_BIAS);
	fill_refs(pages, n, rq->ref_after_release);
	return n;
}

static noinline long pinlab_get_then_put(struct pinlab_req *rq, struct page **pages)
{
	int n = get_user_pages_fast(rq->addr, rq->npages, FOLL_WRITE, pages);

	rq->gup_ret = n;
	if (n <= 0)
		return n ? n : -EFAULT;
	fill_refs(pages, n, rq->ref_after_gup);
	pinlab_release_put_page(pages, n, 1);		/* correct */
	fill_refs(pages, n, rq->ref_after_release);
	return n;
}

static noinline long pinlab_pin_then_unpin(struct pinlab_req *rq, struct page **pages)
{
	int n = pin_user_pages_fast(rq->addr, rq->npages, FOLL_WRITE, pages);

	rq->gup_ret = n;
	if (n <= 0)
		return n ? n : -EFAULT;
	fill_refs(pages, n, rq->ref_after_gup);
	pinlab_release_unpin(pages, n);			/* correct */
	fill_refs(pages, n, rq->ref_after_release);
	return n;
}

static noinline long pinlab_pin_hold(struct pinlab_req *rq)
{
	int n;

	if (nheld)
		return -EBUSY;
	n = pin_user_pages_fast(rq->addr, rq->npages, FOLL_WRITE, held);
	rq->gup_ret = n;
	if (n <= 0)
		return n ? n : -EFAULT;
	nheld = n;
	fill_refs(held, n, rq->ref_after_gup);
	return n;
}

static noinline long pinlab_unpin_held(struct pinlab_req *rq)
{
	int n = nheld;

	if (!n)
		return -ENOENT;
	fill_refs(held, n, rq->ref_before);
	pinlab_release_unpin(held, n);			/* correct */
	nheld = 0;
	return n;
}

static long pinlab_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	struct pinlab_req rq;
	struct page **pages;
	long ret;

	if (copy_from_user(&rq, (void __user *)arg, sizeof(rq)))
		return -EFAULT;
	if (!rq.npages || rq.npages > PINLAB_MAX_PAGES || (rq.addr & ~PAGE_MASK))
		return -EINVAL;
	memset(rq.page, 0, sizeof(rq.page));
	memset(rq.ref_after_gup, 0xff, sizeof(rq.ref_after_gup));
	memset(rq.ref_after_release, 0xff, sizeof(rq.ref_after_release));
	memset(rq.ref_before, 0xff, sizeof(rq.ref_before));
	pages = kcalloc(PINLAB_MAX_PAGES, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	mutex_lock(&pinlab_lock);
	switch (cmd) {
	case PINLAB_GET_THEN_UNPIN: ret = pinlab_get_then_unpin(&rq, pages); break;
	case PINLAB_PIN_THEN_PUT:   ret = pinlab_pin_then_put(&rq, pages); break;
	case PINLAB_GET_THEN_PUT:   ret = pinlab_get_then_put(&rq, pages); break;
	case PINLAB_PIN_THEN_UNPIN: ret = pinlab_pin_then_unpin(&rq, pages); break;
	case PINLAB_PIN_HOLD:       ret = pinlab_pin_hold(&rq); if (ret > 0) memcpy(pages, held, ret * sizeof(*pages)); break;
	case PINLAB_UNPIN_HELD: {
		int n = nheld;
		memcpy(pages, held, n * sizeof(*pages));
		ret = pinlab_unpin_held(&rq);
		break;
	}
	default: ret = -ENOTTY;
	}
	mutex_unlock(&pinlab_lock);
	if (ret > 0) {
		int i;
		for (i = 0; i < PINLAB_NREF && i < ret; i++)
			rq.page[i] = (unsigned long)pages[i];
	}
	kfree(pages);
	if (copy_to_user((void __user *)arg, &rq, sizeof(rq)))
		return -EFAULT;
	return ret < 0 ? ret : 0;
}

static const struct file_operations pinlab_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = pinlab_ioctl,
};

static struct miscdevice pinlab_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "pinlab",
	.fops = &pinlab_fops,
	.mode = 0666,
};

static int __init pinlab_init(void)
{
	return misc_register(&pinlab_dev);
}

static void __exit pinlab_exit(void)
{
	if (nheld)
		unpin_user_pages(held, nheld);
	misc_deregister(&pinlab_dev);
}

module_init(pinlab_init);
module_exit(pinlab_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("PinScope lab: buggy GUP release test driver (release mismatch) + pin holder");
