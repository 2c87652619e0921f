/* pinlab_ioctl.h - ioctl interface of the pinlab_gup test module (/dev/pinlab), shared by the
 * module (module/pinlab_gup.c) and the workloads (release_mismatch.c, migrate_longterm.c). */
#ifndef PINLAB_IOCTL_H
#define PINLAB_IOCTL_H
#ifdef __KERNEL__
#include <linux/ioctl.h>
#include <linux/types.h>
#else
#include <linux/types.h>
#include <sys/ioctl.h>
#endif

#define PINLAB_MAX_PAGES 64
#define PINLAB_NREF 4          /* refcounts reported for the first PINLAB_NREF pages */

struct pinlab_req {
	__u64 addr;             /* in: user address (page aligned) */
	__u32 npages;           /* in: number of pages (<= PINLAB_MAX_PAGES) */
	__s32 gup_ret;          /* out: return value of the GUP/PUP call */
	__u64 page[PINLAB_NREF];           /* out: struct page pointers (first pages) */
	__s32 ref_before[PINLAB_NREF];     /* out: page_ref_count before the GUP call */
	__s32 ref_after_gup[PINLAB_NREF];  /* out: after the GUP/PUP call */
	__s32 ref_after_release[PINLAB_NREF]; /* out: after the (mismatched) release */
};

/* BUG 1: get_user_pages_fast(FOLL_WRITE) (= FOLL_GET reference) released with
 *        unpin_user_pages() (a FOLL_PIN release).  Refcounts kept sane with
 *        GUP_PIN_COUNTING_BIAS-1 extra get_page() per page before the wrong release. */
#define PINLAB_GET_THEN_UNPIN  _IOWR('P', 1, struct pinlab_req)
/* BUG 2: pin_user_pages_fast(FOLL_WRITE) (FOLL_PIN) released with put_page() x GUP_PIN_COUNTING_BIAS */
#define PINLAB_PIN_THEN_PUT    _IOWR('P', 2, struct pinlab_req)
/* correct pairs (controls) */
#define PINLAB_GET_THEN_PUT    _IOWR('P', 3, struct pinlab_req)
#define PINLAB_PIN_THEN_UNPIN  _IOWR('P', 4, struct pinlab_req)
/* hold a FOLL_PIN pin (pin_user_pages_fast, no FOLL_LONGTERM) until PINLAB_UNPIN_HELD */
#define PINLAB_PIN_HOLD        _IOWR('P', 5, struct pinlab_req)
#define PINLAB_UNPIN_HELD      _IOWR('P', 6, struct pinlab_req)
#endif
