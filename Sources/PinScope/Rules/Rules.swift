import TraceReader

/// A write-capable pin or GUP reference held while the page is cleaned for writeback or written
/// back, or taken while it is under writeback: the device may write into the page while the
/// filesystem writes (and checksums) it.
public struct PinCrossesWriteback: Rule {
    public static let info = RuleInfo(
        id: "pin-crosses-writeback", severity: .error,
        title: "A write-capable pin is held while the page is written back",
        explanation: """
        A device (or another CPU through a pin) can write into a page at any moment while a
        write-capable FOLL_PIN / FOLL_GET reference is held. When writeback cleans that page
        (folio_clear_dirty_for_io + folio_mkclean) and writes it out, the data written to disk and
        any checksum computed over it can differ from what the page holds a moment later: stable
        pages are violated, the RAID/btrfs checksum fails, and the page is left clean with new data
        in it, so the last write is lost. The filesystem cannot tell: the page refcount does not say
        whether a GUP user holds it.
        Discussed in "Re: [RFC] mm: gup: add helper page_try_gup_pin(page)" (Jerome Glisse, John
        Hubbard, Jan Kara; linux-mm, Nov 2019), which led to FOLL_PIN tracking so writeback can see
        folio_maybe_dma_pinned() and use bounce pages or wait.
        Remedy: do not keep write pins on file-backed pages across writeback: pin anonymous or
        shmem memory, or release the pin (unpin_user_pages_dirty_lock) before the file is synced;
        on kernels with FOLL_PIN tracking make sure the driver uses pin_user_pages*, not
        get_user_pages*, so writeback can detect the pin.
        """)
    public static let kinds: Set<PageEventKind> = [.mkclean, .cleanForIO, .writebackStart, .pin, .get]

    public func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext) {
        guard let state else { return }
        switch e.kind {
        case .mkclean, .cleanForIO, .writebackStart:
            let cycle = state.inCycle ? state.cycle : state.cycle + 1
            for (i, h) in state.holds.enumerated() where h.isWrite && h.flaggedCycle != cycle {
                let what = e.kind == .writebackStart ? "writeback of the page started" : "the page was cleaned for writeback (\(e.api))"
                ctx.report(Self.info, uncertain: h.uncertain || ctx.lostBetween(h.acquiredNs, e.timestampNs),
                           "\(describeHold(h, ctx)) was held when \(what)",
                           page: e.page, state: state, owner: Owner(h), evidence: [h.acquire, Evidence(e)])
                ctx.crossings.append((e.page, i, cycle))
            }
        case .pin, .get:
            guard state.underWriteback, let flags = e.gupFlags,
                  ctx.follLayout?.decode(flags).flags.contains(.write) ?? false else { return }
            ctx.report(Self.info, uncertain: e.afterLostEvents,
                       "a write-capable \(e.kind == .pin ? "pin" : "FOLL_GET reference") (\(ctx.flagNames(e.gupFlags))) was taken by \(e.comm) (pid \(e.pid)) while the page was under writeback",
                       page: e.page, state: state, owner: Owner(e), evidence: [Evidence(e)])
        default:
            return
        }
    }
}

/// A page dirtied by a GUP reference holder after writeback cleaned it, with no page_mkwrite
/// (write fault or GUP-time fault) in between.
public struct DirtyAfterMkclean: Rule {
    public static let info = RuleInfo(
        id: "dirty-after-mkclean", severity: .error,
        title: "A page is dirtied by a GUP holder after page_mkclean, without page_mkwrite",
        explanation: """
        Filesystems learn that a clean file page is about to be written through ->page_mkwrite,
        which allocates blocks, reserves space, and starts journalling. page_mkclean write-protects
        every mapping so the next CPU write faults and calls it again. A GUP reference bypasses
        that: the device writes through its own mapping, and the holder then calls
        set_page_dirty_lock() (direct I/O completion in __bio_release_pages/bio_dirty_fn,
        unpin_user_pages_dirty_lock). The filesystem sees a dirty page it never prepared: ext4
        hits BUG_ON/WARN in its writepage paths, buffers without blocks, or silently drops the data.
        "->page_mkwrite must be called on every write access to a clean file backed page, not just
        the first one" (Dave Chinner, quoted in "[PATCH v3 0/1] mm: introduce put_user_page*(),
        placeholder versions", John Hubbard, Mar 2019); the same window in KVM is the
        mmu-notifier thread ("set_page_dirty after page_mkclean", Andrea Arcangeli, Jun 2019).
        Remedy: do not do direct I/O into MAP_SHARED file mappings, or hold file pages only with
        FOLL_PIN on a kernel whose writeback honours folio_maybe_dma_pinned(); the real fix is the
        pinned-page writeback work that followed FOLL_PIN.
        """)
    public static let kinds: Set<PageEventKind> = [.markDirty]

    public func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext) {
        guard e.kind == .markDirty, let source = e.dirtySource, source.isByReferenceHolder, source != .notifier,
              let state, let clean = state.cleanedBy else { return }
        let reference = state.lastWriteReference
        if let reference, reference.timestampNs > clean.timestampNs { return }
        let owner = state.lastWriteReferenceOwner ?? Owner(e)
        let by: String
        switch source {
        case .bioCompletion: by = "direct-I/O completion"
        case .bioSubmit: by = "direct-I/O submission (bio_set_pages_dirty)"
        default: by = "the pin holder releasing it (\(e.call ?? e.api))"
        }
        var evidence = [clean, Evidence(e, detail: "dirtied by \(by)" + (e.bio.map { " (bio 0x\(String($0, radix: 16)))" } ?? ""))]
        if let reference { evidence.insert(reference, at: 0) }
        let uncertain = reference == nil || e.afterLostEvents
            || ctx.lostBetween(reference?.timestampNs ?? clean.timestampNs, e.timestampNs)
        ctx.report(Self.info, uncertain: uncertain,
                   "page dirtied by \(by) after \(clean.event) cleaned it"
                   + (reference.map { " (the GUP reference was taken at \($0.event), before the clean)" } ?? " (no GUP reference seen: it may predate the trace)"),
                   page: e.page, state: state, owner: owner, evidence: evidence)
    }
}

/// A FOLL_PIN reference dropped with put_page, or a FOLL_GET one with unpin_user_page.
public struct ReleaseMismatch: Rule {
    public static let info = RuleInfo(
        id: "release-mismatch", severity: .error,
        title: "A pin released as a plain reference, or the reverse",
        explanation: """
        pin_user_pages*() (FOLL_PIN) adds GUP_PIN_COUNTING_BIAS (1024) to an order-0 page's
        refcount, or 1 to a large folio's separate pin count; unpin_user_page*() takes exactly that
        back. get_user_pages*() (FOLL_GET) adds 1 and is dropped with put_page(). Mixing them
        leaves the page looking pinned forever (folio_maybe_dma_pinned() true, writeback bounces
        or waits, migration fails) or underflows the refcount and frees a page still in use.
        This is why the block layer had to learn which pages a bio pinned ("Re: [PATCH v1 00/15]
        Keep track of GUPed pages", put_user_pages vs put_page in bio, Jerome Glisse and Boaz
        Harrosh, Apr 2019) and why bio_release_pages() later checked BIO_PAGE_PINNED.
        Remedy: release with the API matching the acquire: unpin_user_page(s)[_dirty_lock] for
        pin_user_pages*, put_page for get_user_pages*; with iov_iter_extract_pages() use
        bio_release_pages()/iov_iter_extraction_pinned() to choose.
        """)
    public static let kinds: Set<PageEventKind> = [.unpin, .put]

    public func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext) {
        guard e.kind == .unpin || (e.kind == .put && !e.inferred), let state, !state.holds.isEmpty else { return }
        let wanted: PageEventKind = e.kind == .unpin ? .pin : .get
        guard !state.holds.contains(where: { $0.kind == wanted }), let h = state.holds.first else { return }
        let released = e.kind == .unpin ? "unpinned (FOLL_PIN release)" : "released with put (FOLL_GET release)"
        ctx.report(Self.info, uncertain: h.uncertain || ctx.lostBetween(h.acquiredNs, e.timestampNs),
                   "\(describeHold(h, ctx)) was \(released) by \(e.call ?? e.api)",
                   page: e.page, state: state, owner: Owner(h), evidence: [h.acquire, Evidence(e)])
    }
}

/// A release with no acquire seen, when the acquire cannot predate the trace.
public struct UnbalancedRelease: Rule {
    public static let info = RuleInfo(
        id: "unbalanced-release", severity: .error,
        title: "A release with no matching acquire",
        explanation: """
        Every unpin_user_page()/put_page() of a GUP reference must match an earlier
        pin_user_pages()/get_user_pages() on that page. A release with nothing to release drops a
        reference someone else owns: the page can be freed while a device still writes to it
        (use-after-free, memory corruption), or the pin count goes negative and the page looks
        unpinned while DMA is in flight.
        PinScope reports it as an error only when the acquire cannot predate the trace: the page
        was added to the page cache, or freed and reused, after the trace began, and no events
        were lost since. Otherwise (a trace started while pins were held) it is an uncertain note.
        Remedy: audit the driver's error paths for double unpin, and release exactly the pages
        pin_user_pages() returned (it can pin fewer than asked).
        """)
    public static let kinds: Set<PageEventKind> = [.unpin, .put]

    private var notedPages = Set<PageRef>()

    public mutating func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext) {
        guard e.kind == .unpin || (e.kind == .put && !e.inferred) else { return }
        if let state, !state.holds.isEmpty { return }
        let born = state?.bornInTrace ?? false
        let certain = born && !ctx.lostBetween(0, e.timestampNs)
        // One uncertain note per page: a trace that starts mid-flight releases many.
        if !certain {
            guard notedPages.count < 100_000, notedPages.insert(e.page).inserted else { return }
        }
        let what = e.kind == .unpin ? "unpin" : "put of a GUP reference"
        ctx.report(Self.info, uncertain: !certain,
                   "\(what) by \(e.comm) (pid \(e.pid)) via \(e.call ?? e.api) with no acquire seen"
                   + (certain ? " although the page was born after the trace began" : " (the acquire may predate the trace or fall in lost events)"),
                   page: e.page, state: state, owner: Owner(e), evidence: [Evidence(e)])
    }
}

/// A FOLL_LONGTERM pin on a page of a block-backed filesystem.
public struct LongtermFilePin: Rule {
    public static let info = RuleInfo(
        id: "longterm-file-pin", severity: .error,
        title: "A FOLL_LONGTERM pin on a page of a block-backed filesystem",
        explanation: """
        Long-term pins (RDMA memory registration, VFIO, io_uring fixed buffers) can last for the
        life of a process. On a file page of a real filesystem they keep the page from being
        cleaned, truncated, reflinked or migrated, and every write through the pin dirties it
        behind the filesystem's back (see dirty-after-mkclean and pin-crosses-writeback).
        anonymous memory, shmem/tmpfs and hugetlbfs are not written back to a device and are fine.
        "filesystems do not actually support get_user_pages() being called on their pages and
        then being written to" ("Re: [PATCH v3 1/1] mm: introduce put_user_page*(), placeholder
        versions", John Hubbard / Dave Chinner, Mar 2019). Since 6.5 the kernel refuses
        FOLL_LONGTERM|FOLL_WRITE on such mappings (vma_needs_dirty_tracking); io_uring refused
        file-backed buffers itself, after pinning them.
        A pin released at once (a refused registration) is a warning; one still held at the end
        of the trace is an error.
        Remedy: register anonymous, shmem/memfd or hugetlbfs memory; for file data use a bounce
        buffer or ODP/HMM (mmu-notifier based) registration.
        """)
    public static let kinds: Set<PageEventKind> = [.unpin]

    /// What the page is called in a finding, and whether its filesystem is unknown (the finding
    /// is then uncertain); nil for pages that are not file pages.
    private static func filePage(_ state: Ledger.PageState) -> (what: String, unknownFS: Bool)? {
        switch state.backing {
        case .blockFile: return ("block-backed file", false)
        case .file: return ("file (filesystem not known)", true)
        default: return nil
        }
    }

    public func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext) {
        guard e.kind == .unpin, let state, let file = Self.filePage(state),
              let h = state.holds.first(where: { $0.kind == .pin }), h.isLongterm else { return }
        let held = e.timestampNs &- h.acquiredNs
        ctx.report(Self.info, severity: .warning, uncertain: file.unknownFS || h.uncertain,
                   "\(describeHold(h, ctx)) on a \(file.what) page, released after \(durationText(held)) by \(e.call ?? e.api)",
                   page: e.page, state: state, owner: Owner(h), evidence: [h.acquire, Evidence(e)])
    }

    public func finish(_ ledger: Ledger, _ ctx: inout RuleContext) {
        for (page, state) in ledger.pages {
            guard let file = Self.filePage(state) else { continue }
            for h in state.holds where h.kind == .pin && h.isLongterm {
                ctx.report(Self.info, uncertain: file.unknownFS || h.uncertain,
                           "\(describeHold(h, ctx)) on a \(file.what) page is still held at the end of the trace (\(durationText(ctx.endNs &- h.acquiredNs)))",
                           page: page, state: state, owner: Owner(h), evidence: [h.acquire])
            }
        }
    }
}

/// Refcount / pin-count headroom of a page below a margin.
public struct PinOverflowRisk: Rule {
    public static let info = RuleInfo(
        id: "pin-overflow-risk", severity: .warning,
        title: "A page's refcount or pin count is close to overflowing",
        explanation: """
        An order-0 page's FOLL_PIN adds GUP_PIN_COUNTING_BIAS (1024) to its 31-bit refcount:
        about 2.1 million pins before it overflows. Since 5.7 large folios keep an exact, separate
        pin count and add 1 per pin. Before 5.7 the bias applied to compound pages too, so a
        1 GiB page with 262144 subpage references overflowed after a handful of pins ("Re:
        [PATCH v11 00/25] mm/gup: track dma-pinned pages: FOLL_PIN", Dan Williams and John
        Hubbard, Dec 2019). An overflowed refcount frees a page that is still in use.
        PinScope computes, from the refcount (and pin count) the trace shows at each pin, how many
        more pins the page can take for the kernel version and folio order, and warns below 1024.
        Remedy: pin huge pages once and share the pin; on older kernels avoid pinning the same
        huge page from many registrations; upgrade to a kernel with separate pin counts.
        """)
    public static let kinds: Set<PageEventKind> = [.pin]

    static let marginPins: Int64 = 1024
    private var flagged = Set<PageRef>()

    /// Pins left before the refcount (or pin count) overflows a signed 32-bit counter.
    static func headroom(refcount: Int64, pincount: Int64?, large: Bool, kernel: KernelVersion?) -> Int64 {
        let limit = Int64(Int32.max)
        let exactLargeCounts = kernel.map { $0 >= KernelVersion(5, 7, 0) } ?? true
        if large && exactLargeCounts {
            return min(limit - refcount, limit - (pincount ?? 0))
        }
        return (limit - refcount) / 1024
    }

    public mutating func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext) {
        guard e.kind == .pin, let refcount = e.refcount else { return }
        // A large folio: its order, or PG_head in the flags the probe read.
        var head = false
        if let flags = e.pageFlags, let layout = PageFlagLayout.forKernel(ctx.kernel) { head = flags & layout.head != 0 }
        let large = e.order.map { $0 > 0 } ?? head
        let left = Self.headroom(refcount: refcount, pincount: e.pincount, large: large, kernel: ctx.kernel)
        if left < ctx.leastPinHeadroom?.pins ?? .max {
            ctx.leastPinHeadroom = PinHeadroom(pins: left, page: e.page, refcount: refcount, pincount: e.pincount, large: large)
        }
        guard left < Self.marginPins, flagged.count < 100_000, flagged.insert(e.page).inserted else { return }
        ctx.report(Self.info, uncertain: e.afterLostEvents,
                   "refcount \(refcount)\(e.pincount.map { ", pin count \($0)" } ?? "")\(e.order.map { ", order \($0)" } ?? ""): only \(max(0, left)) more pins before overflow",
                   page: e.page, state: state, owner: Owner(e), evidence: [Evidence(e)])
    }
}

/// Two dirtyings of one page from mmu-notifier callbacks with a clean in between.
public struct DoubleDirty: Rule {
    public static let info = RuleInfo(
        id: "double-dirty", severity: .warning,
        title: "A secondary MMU dirtied a page twice across a clean",
        explanation: """
        A secondary MMU (KVM, ODP, HMM mirror) must mark a page dirty atomically with
        establishing the writable mapping, under the notifier lock. Dirtying it from the
        invalidate callback instead can run twice when invalidates overlap, and the second
        set_page_dirty lands after page_mkclean/writeback cleaned the page: the same window as
        dirty-after-mkclean ("Re: [PATCH 1/1] mm: mmu_notifier: ... set_page_dirty after
        page_mkclean", Andrea Arcangeli and Christoffer Dall, kvmarm, Jun 2019).
        Remedy: dirty the page when the writable secondary mapping is created (kvm_set_pfn_dirty
        at fault time under mmu_lock), not in the invalidate callback.
        """)
    public static let kinds: Set<PageEventKind> = [.markDirty]

    public func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext) {
        guard e.kind == .markDirty, e.dirtySource == .notifier, let state, let previous = state.notifierDirty,
              let clean = state.cleanedBy, state.cycle > previous.cycle else { return }
        ctx.report(Self.info, uncertain: ctx.lostBetween(previous.evidence.timestampNs, e.timestampNs),
                   "dirtied again from an mmu-notifier callback after \(clean.event) cleaned it",
                   page: e.page, state: state, owner: Owner(e), evidence: [previous.evidence, clean, Evidence(e)])
    }
}

/// Migration failing on pinned pages.
public struct PinBlocksMigration: Rule {
    public static let info = RuleInfo(
        id: "pin-blocks-migration", severity: .warning,
        title: "Page migration fails because of pins",
        explanation: """
        Pinned pages cannot be migrated: memory hot-remove, CMA allocations, compaction for huge
        pages and NUMA balancing fail around them. FOLL_LONGTERM pins first migrate pages out of
        ZONE_MOVABLE/CMA (check_and_migrate_movable_pages, migrate reason "longterm_pin"); when
        that migration fails the pin fails or the region stays fragmented
        ("Re: [PATCH v3 1/1] mm: introduce put_user_page*()", long-term GUP discussion, Mar 2019).
        Remedy: pin early, from non-movable memory, and unpin promptly; do not long-term pin CMA
        or movable-zone memory.
        """)
    public static let kinds: Set<PageEventKind> = [.migrateFail]

    public func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext) {
        guard e.kind == .migrateFail, let reason = e.detail, reason.contains("longterm") || reason.contains("cma") else { return }
        ctx.report(Self.info, uncertain: e.afterLostEvents,
                   "\(e.refs) pages failed to migrate (\(reason)) for \(e.comm) (pid \(e.pid))",
                   page: nil, state: nil, owner: Owner(e), evidence: [Evidence(e)])
    }
}

/// Pins still held at the end of the trace, older than the long-term threshold.
public struct PinLeak: Rule {
    public static let info = RuleInfo(
        id: "pin-leak", severity: .warning,
        title: "Pins still held at the end of the trace",
        explanation: """
        A pin held past the end of the trace and older than the long-term threshold (--longterm,
        default 1 s) was either leaked (an error path that never unpins: the page can never be
        freed, migrated or reclaimed, and stays "maybe DMA pinned" for writeback) or is a
        long-term registration the trace did not see end. Short-term pins (O_DIRECT) last one I/O.
        FOLL_GET references are reported only when the trace shows their releases (on 6.1
        put_page is inline and no probe sees it).
        Remedy: check the owner's teardown and error paths release every page pin_user_pages()
        returned; for registrations, confirm they are meant to outlive the trace.
        """)
    public static let kinds: Set<PageEventKind> = []

    public func finish(_ ledger: Ledger, _ ctx: inout RuleContext) {
        for (page, state) in ledger.pages {
            for h in state.holds where ctx.endNs &- h.acquiredNs >= ctx.longtermNs {
                if h.kind == .get && ctx.visibleGetReleases == 0 { continue }
                ctx.report(Self.info, uncertain: h.uncertain || ctx.lostBetween(h.acquiredNs, ctx.endNs),
                           "\(describeHold(h, ctx)) still held at the end of the trace, \(durationText(ctx.endNs &- h.acquiredNs)) after it was taken",
                           page: page, state: state, owner: Owner(h), evidence: [h.acquire])
            }
        }
    }
}
