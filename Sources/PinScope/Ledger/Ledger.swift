import TraceReader

/// One event as evidence: when, where, what, who. A class: page states and holds keep several,
/// and copying them by reference keeps the ledger's per-event work small.
public final class Evidence: Sendable {
    public let timestampNs: UInt64
    public let cpu: Int
    public let pid: Int32
    public let comm: String
    public let event: String
    public let call: String?
    public let detail: String?
    public let locator: TraceLocator

    public init(_ e: PageEvent, detail: String? = nil) {
        timestampNs = e.timestampNs
        cpu = e.cpu
        pid = e.pid
        comm = e.comm
        event = e.api
        call = e.call
        self.detail = detail ?? e.detail
        locator = e.locator
    }
}

/// What memory backs a page: only block-backed file pages are written back to a device.
public enum Backing: String, Sendable {
    case anon, shmem, hugetlb, blockFile = "file", file = "file (unknown fs)", unknown
}

/// A reference held on a page: a FOLL_PIN pin or a FOLL_GET reference.
public struct Hold: Sendable {
    public var kind: PageEventKind  // .pin or .get
    public var pid: Int32
    public var comm: String
    public var acquiredNs: UInt64
    public var gupFlags: UInt64?
    public var follFlags: FollFlags?
    public var api: String
    public var call: String?
    public var caller: String?
    public var driver: Attribution?
    public var bio: UInt64?
    public var acquire: Evidence
    /// The acquire came after lost events, or its window has them.
    public var uncertain: Bool
    /// Writeback cycles of the page this hold was already reported crossing.
    public var flaggedCycle: Int = -1

    public var isWrite: Bool { follFlags?.contains(.write) ?? false }
    public var isLongterm: Bool { follFlags?.contains(.longterm) ?? false }
}

/// The life of one pin: acquire, release, and how it was released.
public struct PinLifetime: Sendable {
    public var hold: Hold
    public var release: Evidence
    public var releasedNs: UInt64 { release.timestampNs }
    public var releaseAPI: String { release.call ?? release.event }
    public var durationNs: UInt64 { releasedNs &- hold.acquiredNs }
}

/// Per-page state rebuilt from PageEvents: references outstanding, writeback, dirty/clean epochs,
/// backing, and every key the page is known by.
/// - Complexity: memory follows live pages: a page with nothing outstanding is dropped, and a
///   page leaves when it is freed or deleted from the page cache.
public struct Ledger {
    /// A class: the ledger looks a page up once per event and changes it in place.
    public final class PageState {
        public var holds: [Hold] = []
        /// FOLL_PIN holds among `holds`.
        public var pins = 0
        public var underWriteback = false
        /// Writeback cycles seen (a clean or a writeback start outside one opens a new cycle).
        public var cycle = 0
        var inCycle = false
        /// The clean (mkclean, clear-dirty-for-io, writepages range) since the last dirtying.
        public var cleanedBy: Evidence?
        /// Last time a write-capable reference was taken: a FOLL_WRITE grab, or a GUP-time fault
        /// dirtying the page (all a tracepoint-only trace shows of a GUP).
        public var lastWriteReference: Evidence?
        public var lastWriteReferenceOwner: Owner?
        /// The page was born in the trace (added to the page cache, or freed and reused): no
        /// reference on it can predate the trace.
        public var bornInTrace = false
        public var bornNs: UInt64?
        public var backing: Backing = .unknown
        public var pointer: UInt64?
        public var mapping: UInt64?
        /// When an event last showed `mapping`.
        var mappingSeenNs: UInt64 = 0
        public var ino: UInt64?
        public var index: UInt64?
        public var dev: UInt64?
        public var order: Int?
        /// The last dirtying from an mmu-notifier callback, and the cycle it was in.
        public var notifierDirty: (evidence: Evidence, cycle: Int)?
        /// The inode whose page list (for writepages ranges) holds this page, and the token of
        /// its entry there (entries with an older token are stale).
        fileprivate var listedUnder: UInt64?
        fileprivate var listToken: UInt32 = 0
        /// The key the analyzer last counted this page under in its pages-seen table.
        var countedAs: PageRef?

        init() {}

        var isIdle: Bool { holds.isEmpty && !underWriteback && lastWriteReference == nil && notifierDirty == nil }

        /// A page (re)born at `ns`: nothing on it can predate that.
        static func newLife(at ns: UInt64) -> PageState {
            let s = PageState()
            s.bornInTrace = true
            s.bornNs = ns
            return s
        }
    }

    public private(set) var pages = PageTable<PageState>()
    /// Pages of each inode not cleaned since last dirtied, for writepages range events.
    private var pagesOfIno = HashTable<UInt64, InodePages>()

    /// One inode's listed pages. Unlisting only bumps the page's token, so listing and unlisting
    /// (once or twice per dirtying) hash nothing; stale entries go when a range walks the list or
    /// when they outnumber the live ones.
    final class InodePages {
        var entries: [(key: PageRef, state: PageState, token: UInt32)] = []
        var live = 0

        func isCurrent(_ i: Int, _ ino: UInt64) -> Bool {
            entries[i].state.listedUnder == ino && entries[i].state.listToken == entries[i].token
        }

        func compact(_ ino: UInt64) {
            var kept = 0
            for i in entries.indices where isCurrent(i, ino) {
                entries.swapAt(kept, i)
                kept += 1
            }
            entries.removeLast(entries.count - kept)
        }
    }
    public private(set) var pinsAcquired = 0
    public private(set) var pinsReleased = 0
    public private(set) var getsAcquired = 0
    public private(set) var getsReleased = 0
    public private(set) var longtermPins = 0
    /// FOLL_GET references dropped where no probe sees it (6.1 inline put_page): removed when the
    /// page is freed, or when their bio completes.
    public private(set) var getsExpired = 0
    /// Releases with no acquire seen (the trace may have started while they were held).
    public private(set) var releasesWithoutAcquire = 0
    /// The most FOLL_PIN pins held at once on one page (folio), and that page.
    public private(set) var maxPinsOnOnePage: (pins: Int, page: PageRef)?
    public private(set) var pagesEverPinned = Set<PageRef>()
    /// Completed pin lifetimes: how many, their total duration, the longest, and a histogram.
    public private(set) var lifetimeCount = 0
    public private(set) var totalPinNs: UInt64 = 0
    public private(set) var longestPin: PinLifetime?
    /// Lifetimes by power-of-ten bucket: [<1us, <10us, ... , <100s, >=100s].
    public private(set) var durationHistogram = [Int](repeating: 0, count: 10)
    public private(set) var peakLivePages = 0

    public init() {}

    public subscript(page: PageRef) -> PageState? { pages[page] }

    /// Starts loading where looking `page` up will read (a hint).
    mutating func prefetch(_ page: PageRef) { pages.prefetch(page) }

    /// The pin lifetimes the last `apply` completed (most events complete none). A list the
    /// caller reads, not a closure `apply` calls: the closure's context cost a retain and a
    /// release of the caller for every event.
    public private(set) var completed: [PinLifetime] = []

    /// Applies one event and returns the page's state after it (nil when the ledger does not
    /// keep the page). `completed` holds the pin lifetimes it ended.
    @discardableResult
    public mutating func apply(_ e: PageEvent, follFlags: FollFlags?, pageFlagLayout: PageFlagLayout?) -> PageState? {
        apply(e, known: pages[e.page], follFlags: follFlags, pageFlagLayout: pageFlagLayout)
    }

    /// `apply(_:follFlags:pageFlagLayout:)` for a caller that has just looked the page up.
    /// - Parameter known: the page's state as `self[e.page]` gives it (saves a lookup per event).
    @discardableResult
    public mutating func apply(_ e: PageEvent, known: PageState?, follFlags: FollFlags?, pageFlagLayout: PageFlagLayout?) -> PageState? {
        if !completed.isEmpty { completed.removeAll(keepingCapacity: true) }
        if case .range = e.page { return nil }
        if e.kind == .cleanRange {
            applyRange(e)
            return nil
        }
        if e.kind == .migrateFail { return nil }
        let state = known ?? PageState()
        learnKeys(e, state, pageFlagLayout)
        switch e.kind {
        case .pin, .get:
            var hold = Hold(kind: e.kind, pid: e.pid, comm: e.comm, acquiredNs: e.timestampNs, gupFlags: e.gupFlags,
                            follFlags: follFlags, api: e.api, call: e.call, caller: e.caller, driver: e.driver, bio: e.bio,
                            acquire: Evidence(e), uncertain: e.afterLostEvents)
            let n = max(1, e.refs)
            if hold.isWrite {
                state.lastWriteReference = hold.acquire
                state.lastWriteReferenceOwner = Owner(hold)
            }
            if hold.kind == .pin {
                pinsAcquired += n
                pagesEverPinned.insert(e.page)
                if hold.isLongterm { longtermPins += n }
            } else {
                getsAcquired += n
            }
            hold.flaggedCycle = -1
            for _ in 0..<n { state.holds.append(hold) }
            if hold.kind == .pin {
                state.pins += n
                if state.pins > maxPinsOnOnePage?.pins ?? 0 { maxPinsOnOnePage = (state.pins, e.page) }
            }
        case .unpin, .put:
            let wanted: PageEventKind = e.kind == .unpin ? .pin : .get
            for _ in 0..<max(1, e.refs) {
                // Prefer the matching kind; a mismatched release still ends a hold (release-mismatch).
                let i = state.holds.firstIndex(where: { $0.kind == wanted })
                    ?? (e.inferred ? nil : state.holds.firstIndex(where: { $0.kind != wanted }))
                guard let i else {
                    if !e.inferred { releasesWithoutAcquire += 1 }
                    continue
                }
                let hold = state.holds.remove(at: i)
                if hold.kind == .pin {
                    state.pins -= 1
                    pinsReleased += 1
                    let life = PinLifetime(hold: hold, release: Evidence(e))
                    lifetimeCount += 1
                    totalPinNs &+= life.durationNs
                    durationHistogram[Self.bucket(life.durationNs)] += 1
                    if life.durationNs > (longestPin?.durationNs ?? 0) { longestPin = life }
                    completed.append(life)
                } else {
                    getsReleased += 1
                }
            }
        case .markDirty:
            if e.dirtySource == .gupFault {
                state.lastWriteReference = Evidence(e)
                state.lastWriteReferenceOwner = Owner(e)
            }
            if e.dirtySource == .notifier {
                state.notifierDirty = (Evidence(e), state.cycle)
            }
            // A dirtying between a clean and the writeback start it leads to stays in that cycle.
            if !state.underWriteback && state.cleanedBy == nil { state.inCycle = false }
            if e.dirtySource != .writeback { state.cleanedBy = nil }
        case .mkclean, .cleanForIO:
            openCycle(state)
            state.cleanedBy = Evidence(e)
        case .writebackStart:
            openCycle(state)
            state.underWriteback = true
        case .writebackEnd:
            state.underWriteback = false
            state.inCycle = false
        case .cacheAdd:
            // A page entering the page cache was just allocated: whatever the trace had on this
            // pfn belonged to an earlier life whose last references went unseen.
            getsExpired += state.holds.filter { $0.kind == .get }.count
            if known != nil { drop(e.page, state) }
            let fresh = PageState.newLife(at: e.timestampNs)
            learnKeys(e, fresh, pageFlagLayout)
            return store(e.page, fresh, known: false)
        case .freed, .cacheDelete:
            // The page is gone (or leaves the cache): references the trace could not see dropped went with it.
            let gets = state.holds.filter { $0.kind == .get }.count
            getsExpired += gets
            if e.kind == .freed || state.holds.isEmpty {
                if known != nil { drop(e.page, state) }
                if e.kind == .freed {
                    let reborn = PageState.newLife(at: e.timestampNs)
                    reborn.pointer = state.pointer
                    if !reborn.isIdle { put(e.page, reborn) }
                }
                return nil
            }
        default:
            break
        }
        return store(e.page, state, known: known != nil)
    }

    /// Starts a new life for a page the event shows was freed and reused: it names a different
    /// address_space (or anon_vma) than the page had. The references of its earlier life went
    /// where no probe saw them. Call before rules look at the page.
    public mutating func noteReuse(_ e: PageEvent) {
        guard let m = e.mapping, m != 0, let state = pages[e.page], let old = state.mapping, old != m else { return }
        // A referenced page cannot be freed: references taken after the old mapping was last
        // seen were taken on the new life (the probes that take them may not show a mapping).
        let carried = state.holds.filter { $0.acquiredNs > state.mappingSeenNs }
        getsExpired += state.holds.count - carried.count
        drop(e.page, state)
        let life = PageState.newLife(at: state.mappingSeenNs)
        life.holds = carried
        life.pins = carried.filter { $0.kind == .pin }.count
        if let w = state.lastWriteReference, w.timestampNs > state.mappingSeenNs {
            life.lastWriteReference = w
            life.lastWriteReferenceOwner = state.lastWriteReferenceOwner
        }
        put(e.page, life)
    }

    /// A writepages pass over [index, lastIndex] of an inode cleans the dirty pages it covers
    /// (the inode's list holds the pages not cleaned since they were last dirtied).
    private mutating func applyRange(_ e: PageEvent) {
        guard let ino = e.ino, let first = e.index, let last = e.lastIndex, let list = pagesOfIno[ino] else { return }
        var clean: Evidence?
        for i in list.entries.indices where list.isCurrent(i, ino) {
            let state = list.entries[i].state
            guard let index = state.index, index >= first, index <= last else { continue }
            openCycle(state)
            if clean == nil { clean = Evidence(e) }
            state.cleanedBy = clean
            unlist(list.entries[i].key, state)
        }
        list.compact(ino)
        if list.entries.isEmpty { pagesOfIno[ino] = nil }
    }

    private func openCycle(_ state: PageState) {
        if !state.inCycle {
            state.cycle += 1
            state.inCycle = true
        }
    }

    private func learnKeys(_ e: PageEvent, _ state: PageState, _ layout: PageFlagLayout?) {
        if case .pointer(let p) = e.page { state.pointer = p }
        if let m = e.mapping, m != 0 {
            state.mapping = m
            state.mappingSeenNs = e.timestampNs
        }
        if let ino = e.ino { state.ino = ino }
        if case .file(let ino, let index) = e.page, state.ino == nil {
            state.ino = ino
            state.index = index
        }
        if let index = e.index, e.kind != .cleanRange, state.mapping.map({ $0 & 1 == 0 }) ?? true { state.index = index }
        if let dev = e.dev { state.dev = dev }
        if let order = e.order { state.order = order }
        state.backing = Self.backing(state, pageFlags: e.pageFlags, layout: layout)
    }

    /// Backing from the mapping pointer (PAGE_MAPPING_ANON), PG_swapbacked, and the device the
    /// page cache named (major 0 = an in-memory filesystem).
    static func backing(_ s: PageState, pageFlags: UInt64?, layout: PageFlagLayout?) -> Backing {
        if let m = s.mapping, m & 1 != 0 { return .anon }
        if let dev = s.dev { return dev >> 20 == 0 ? .shmem : .blockFile }
        if let flags = pageFlags, let layout, s.mapping != nil {
            return flags & layout.swapBacked != 0 ? .shmem : (s.backing == .blockFile ? .blockFile : .file)
        }
        if s.ino != nil && s.backing == .unknown { return .file }
        return s.backing
    }

    /// Tells the ledger that a page's device/backing is known (from the identity resolver).
    /// Returns the page's backing now.
    @discardableResult
    public mutating func learnDevice(_ page: PageRef, _ state: PageState, dev: UInt64?, ino: UInt64?, index: UInt64?) -> Backing {
        if let dev { state.dev = dev }
        if let ino, state.ino == nil { state.ino = ino }
        if let index, state.index == nil { state.index = index }
        state.backing = Self.backing(state, pageFlags: nil, layout: nil)
        list(page, state)
        return state.backing
    }

    /// Marks the reported writeback cycle on a page's holds.
    mutating func markFlagged(_ page: PageRef, holdAt i: Int, cycle: Int) {
        guard let state = pages[page], i < state.holds.count else { return }
        state.holds[i].flaggedCycle = cycle
    }

    /// Moves a page's state from one key to another (a pointer resolved to a pfn).
    public mutating func merge(_ from: PageRef, into to: PageRef) {
        // Most events name a page-cache page by (ino, index) that resolves to a pfn the ledger
        // keys it by: with no page kept under another key, there is nothing to look up.
        if !from.isPfn && keptUnderOtherKeys == 0 { return }
        guard from != to, let old = remove(from) else { return }
        unlist(from, old)
        if pagesEverPinned.remove(from) != nil { pagesEverPinned.insert(to) }
        if let existing = pages[to] {
            // State from before the page's (re)birth under the new key belonged to an earlier life.
            if let born = existing.bornNs {
                let stale = old.holds.filter { $0.acquiredNs < born }
                getsExpired += stale.filter { $0.kind == .get }.count
                let kept = old.holds.filter { $0.acquiredNs >= born }
                existing.holds += kept
                existing.pins += kept.filter { $0.kind == .pin }.count
                if existing.lastWriteReference == nil, let w = old.lastWriteReference, w.timestampNs >= born {
                    existing.lastWriteReference = w
                }
                return
            }
            existing.holds += old.holds
            existing.pins += old.pins
            existing.underWriteback = existing.underWriteback || old.underWriteback
            existing.cleanedBy = existing.cleanedBy ?? old.cleanedBy
            existing.lastWriteReference = existing.lastWriteReference ?? old.lastWriteReference
            existing.pointer = existing.pointer ?? old.pointer
            existing.mapping = existing.mapping ?? old.mapping
            existing.ino = existing.ino ?? old.ino
            existing.index = existing.index ?? old.index
            existing.bornInTrace = existing.bornInTrace || old.bornInTrace
            list(to, existing)
        } else {
            put(to, old)
            list(to, old)
        }
    }

    /// Re-keys every page `f` gives a new key for (after the vmemmap base is calibrated).
    public mutating func rekey(_ f: (PageRef) -> PageRef?) {
        for key in pages.keyList {
            if let to = f(key) { merge(key, into: to) }
        }
    }

    /// References still held, over all pages.
    public var outstanding: Int { pages.values.reduce(0) { $0 + $1.holds.count } }

    /// Keeps a page that still matters, forgets one that does not. Returns it when kept.
    private mutating func store(_ key: PageRef, _ state: PageState, known: Bool) -> PageState? {
        if state.isIdle && !state.bornInTrace && state.cleanedBy == nil {
            if known { drop(key, state) }
            return nil
        }
        if !known {
            put(key, state)
            peakLivePages = max(peakLivePages, pages.count)
        }
        list(key, state)
        return state
    }

    /// Pages kept under a key other than a pfn (a pointer, a file index): `merge` has nothing
    /// to move while there are none.
    private var keptUnderOtherKeys = 0

    /// Every change to `pages` goes through `put` and `remove`, which keep that count.
    private mutating func put(_ key: PageRef, _ state: PageState) {
        if key.isPfn {
            pages[key] = state
        } else if pages.insert(key, state) {
            keptUnderOtherKeys += 1
        } else {
            pages[key] = state
        }
    }

    private mutating func remove(_ key: PageRef) -> PageState? {
        let old = pages.removeValue(forKey: key)
        if old != nil, !key.isPfn { keptUnderOtherKeys -= 1 }
        return old
    }

    private mutating func drop(_ key: PageRef, _ state: PageState) {
        _ = remove(key)
        unlist(key, state)
    }

    /// Lists a kept page under its inode while it is not cleaned, for writepages ranges.
    private mutating func list(_ key: PageRef, _ state: PageState) {
        let under = state.cleanedBy == nil ? state.ino : nil
        guard state.listedUnder != under else { return }
        unlist(key, state)
        if let ino = under {
            let list: InodePages
            if let l = pagesOfIno[ino] {
                list = l
            } else {
                list = InodePages()
                pagesOfIno[ino] = list
            }
            state.listedUnder = ino
            list.entries.append((key, state, state.listToken))
            list.live += 1
            if list.entries.count > 64 && list.entries.count > list.live * 2 { list.compact(ino) }
        }
    }

    private mutating func unlist(_ key: PageRef, _ state: PageState) {
        guard let ino = state.listedUnder else { return }
        state.listedUnder = nil
        state.listToken &+= 1
        guard let list = pagesOfIno[ino] else { return }
        list.live -= 1
        if list.live == 0 { pagesOfIno[ino] = nil }
    }

    static func bucket(_ ns: UInt64) -> Int {
        var b = 0
        var limit: UInt64 = 1000
        while b < 9 && ns >= limit { b += 1; limit &*= 10 }
        return b
    }
}
