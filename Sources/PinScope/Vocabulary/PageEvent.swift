import TraceReader

/// The canonical events the pin model is built from, whatever the trace called them.
public enum PageEventKind: String, Sendable, CaseIterable {
    case pin, unpin, get, put, refMod, markDirty, mkclean, cleanForIO, cleanRange, mkwrite
    case writebackStart, writebackEnd, waitWriteback, cacheAdd, cacheDelete, freed
    case invalidateStart, invalidateEnd, migrateFail

    /// The case's position in `allCases`, for tables indexed by kind (a switch: hashing the
    /// raw value per event would cost more than what the table saves).
    public var ordinal: Int {
        switch self {
        case .pin: return 0
        case .unpin: return 1
        case .get: return 2
        case .put: return 3
        case .refMod: return 4
        case .markDirty: return 5
        case .mkclean: return 6
        case .cleanForIO: return 7
        case .cleanRange: return 8
        case .mkwrite: return 9
        case .writebackStart: return 10
        case .writebackEnd: return 11
        case .waitWriteback: return 12
        case .cacheAdd: return 13
        case .cacheDelete: return 14
        case .freed: return 15
        case .invalidateStart: return 16
        case .invalidateEnd: return 17
        case .migrateFail: return 18
        }
    }
}

/// What names a page. Keys, strongest first: pfn; `struct page`/folio pointer (converted to a pfn
/// once the vmemmap base is known); (dev, inode, index) for page-cache pages; (mm, range) for
/// notifier ranges.
public enum PageRef: Hashable, Sendable, CustomStringConvertible {
    case pfn(UInt64)
    case pointer(UInt64)
    case file(ino: UInt64, index: UInt64)
    case range(mm: UInt64, start: UInt64, end: UInt64)

    /// The key folded into one word (kinds kept apart), for hashing: the ledger and the identity
    /// tables hash a key several times per event.
    public var word: UInt64 {
        switch self {
        case .pfn(let p): return p
        case .pointer(let p): return p ^ 0x5bd1_e995_0000_0001
        case .file(let ino, let index): return ino &* 0x9e37_79b9_7f4a_7c15 ^ index ^ 0x2
        case .range(let mm, let start, let end): return mm ^ start &* 31 ^ end &* 131 ^ 0x3
        }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(word) }

    public var isPfn: Bool {
        if case .pfn = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .pfn(let p): return "pfn 0x" + String(p, radix: 16)
        case .pointer(let p): return "page 0x" + String(p, radix: 16)
        case .file(let ino, let index): return "ino \(ino) index \(index)"
        case .range(let mm, let start, let end):
            return "mm 0x\(String(mm, radix: 16)) [0x\(String(start, radix: 16)), 0x\(String(end, radix: 16)))"
        }
    }
}

/// Who dirtied a page, told from the event's kernel stack or the call it happened in.
public enum DirtySource: String, Sendable {
    /// GUP faulting the page in for write (`__get_user_pages` → `handle_mm_fault` → `page_mkwrite`):
    /// the filesystem was told; a GUP reference is being taken.
    case gupFault
    /// Direct-I/O completion dirtying the pages it read into (`__bio_release_pages`, `bio_dirty_fn`).
    case bioCompletion
    /// A direct-I/O read marking the pages it will fill dirty at submission (`bio_set_pages_dirty`).
    case bioSubmit
    /// A pin holder releasing with `unpin_user_page*_dirty_lock(make_dirty)` or `set_page_dirty_lock`.
    case pinRelease
    /// A secondary MMU (KVM) dirtying from an mmu-notifier callback.
    case notifier
    /// Writeback itself re-dirtying (`folio_clear_dirty_for_io`, `redirty_page_for_writepage`).
    case writeback
    /// Anything else: a CPU write fault (`page_mkwrite`), `write(2)`, buffer heads, ...
    case other

    /// Dirtying by a GUP reference holder, which the filesystem did not see coming.
    public var isByReferenceHolder: Bool {
        self == .bioCompletion || self == .bioSubmit || self == .pinRelease || self == .notifier
    }
}

/// One thing that happened to a page, mapped from a raw event by a vocabulary profile.
///
/// A class: the vocabulary fills it in, the analyzer re-keys it, and rules and the ledger read
/// it; one reference moves where a struct of two dozen fields would be copied, with a retain per
/// string and array in it. Nothing keeps one after the analyzer is done with it, so the
/// vocabulary refills spent ones (`fill`) instead of allocating one per event.
public final class PageEvent: @unchecked Sendable {
    public var kind: PageEventKind = .pin
    public var timestampNs: UInt64 = 0
    public var cpu = 0
    public var pid: Int32 = 0
    public var comm = ""
    public var page = PageRef.pfn(0)
    /// Other keys the same event gives for the page.
    public var mapping: UInt64?
    public var ino: UInt64?
    public var index: UInt64?
    public var dev: UInt64?
    /// Last page index of a `cleanRange` (inclusive).
    public var lastIndex: UInt64?
    /// References taken or dropped (pins count 1 each, whatever the refcount bias).
    public var refs = 1
    /// GUP flags as the kernel passed them (decode with `FollFlagLayout`).
    public var gupFlags: UInt64?
    /// struct page flags, refcount and (large folios only) pin count, when the event read them.
    public var pageFlags: UInt64?
    public var refcount: Int64?
    public var pincount: Int64?
    public var order: Int?
    /// The kernel function the event came from (the probe or tracepoint), the public API call it
    /// happened in (e.g. `pin_user_pages_remote`) and that call's caller.
    public var api = ""
    public var call: String?
    /// The stack's first frame outside the event's own function and the kernel's plumbing,
    /// found when first read: most page events never have theirs read, and finding it
    /// symbolizes the stack.
    public var caller: String? {
        get {
            resolveCaller()
            return storedCaller
        }
        set {
            callerPending = false
            storedCaller = newValue
        }
    }
    private var storedCaller: String?
    private var callerPending = false
    public var driver: Attribution?
    public var dirtySource: DirtySource?
    /// The direct-I/O bio a reference belongs to, when the trace ties them.
    public var bio: UInt64?
    /// The raw event's stack (symbolized when first read).
    public var stack: [StackFrame] {
        get { lazyStack.frames }
        set {
            // The caller is the raw event's, whatever stack replaces it.
            resolveCaller()
            lazyStack = LazyStack(newValue)
        }
    }
    private var lazyStack = LazyStack()
    /// Whether the event has a stack (without symbolizing it).
    public var hasStack: Bool { !lazyStack.isEmpty }

    private func resolveCaller() {
        guard callerPending else { return }
        callerPending = false
        storedCaller = Attribution.firstInterestingFrame(stack, skipping: api)
    }
    public var locator = PageEvent.noLocator
    /// The raw event came right after lost events on its CPU.
    public var afterLostEvents = false
    /// Free text for the evidence line (e.g. a migrate reason).
    public var detail: String?
    /// Not seen in the trace but implied by an event that was (a bio's completion releasing the
    /// FOLL_GET references its submission dirtied).
    public var inferred = false

    private static let noLocator = TraceLocator(file: "")

    /// - Parameter name: the event's name, when the caller holds its own copy of it (the default
    ///   is `e.name`); `api` defaults to it.
    public init(name: String? = nil, kind: PageEventKind, from e: RawEvent, page: PageRef, api: String? = nil, refs: Int = 1,
                gupFlags: UInt64? = nil, mapping: UInt64? = nil, index: UInt64? = nil) {
        fill(name: name, kind: kind, from: e, page: page, api: api, refs: refs, gupFlags: gupFlags, mapping: mapping, index: index)
    }

    /// Makes this event what `init` with these arguments makes: every property is set here.
    func fill(name: String? = nil, kind: PageEventKind, from e: RawEvent, page: PageRef, api: String? = nil, refs: Int = 1,
              gupFlags: UInt64? = nil, mapping: UInt64? = nil, index: UInt64? = nil) {
        self.kind = kind
        timestampNs = e.timestampNs
        cpu = e.cpu
        pid = e.pid
        comm = e.comm
        self.page = page
        self.mapping = mapping
        ino = nil
        self.index = index
        dev = nil
        lastIndex = nil
        self.refs = refs
        self.gupFlags = gupFlags
        pageFlags = nil
        refcount = nil
        pincount = nil
        order = nil
        self.api = api ?? name ?? e.name
        // A refilled event mostly has no call, caller, driver, detail or stack, and nor does the
        // new one: each is reset only when set (an assignment is a release call, and a copy of
        // an empty stack two more).
        if call != nil { call = nil }
        if !(lazyStack.isEmpty && e.lazyStack.isEmpty) { lazyStack = e.lazyStack }
        if storedCaller != nil { storedCaller = nil }
        callerPending = !lazyStack.isEmpty
        if driver != nil { driver = nil }
        dirtySource = nil
        bio = nil
        locator = e.locator
        afterLostEvents = e.lostBefore != nil
        if detail != nil { detail = nil }
        inferred = false
    }
}
