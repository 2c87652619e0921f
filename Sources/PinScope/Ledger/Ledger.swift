import TraceReader

/// A reference held on a page: a FOLL_PIN pin or a FOLL_GET reference.
public struct Hold: Sendable {
    public var kind: PageEventKind  // .pin or .get
    public var pid: Int32
    public var comm: String
    public var acquiredNs: UInt64
    public var gupFlags: UInt64?
    public var api: String
    public var caller: String?
    public var locator: TraceLocator
}

/// The life of one pin: acquire, release, and how it was released.
public struct PinLifetime: Sendable {
    public var hold: Hold
    public var releasedNs: UInt64
    public var releaseAPI: String
    public var durationNs: UInt64 { releasedNs &- hold.acquiredNs }
}

/// Per-page state rebuilt from PageEvents: references outstanding, writeback, dirty/clean epochs.
/// - Complexity: memory follows pages with something outstanding; a page whose references are
///   all released and that is not under writeback is dropped.
public struct Ledger {
    public struct PageState: Sendable {
        public var holds: [Hold] = []
        public var underWriteback = false
        public var lastCleanNs: UInt64?
        public var lastDirtyNs: UInt64?
        var isIdle: Bool { holds.isEmpty && !underWriteback && lastCleanNs == nil }
    }

    public private(set) var pages: [PageRef: PageState] = [:]
    public private(set) var pinsAcquired = 0
    public private(set) var pinsReleased = 0
    public private(set) var getsAcquired = 0
    public private(set) var getsReleased = 0
    /// Releases with no acquire seen (the trace may have started while they were held).
    public private(set) var releasesWithoutAcquire = 0
    public private(set) var maxHoldsOnOnePage = 0
    /// Completed pin lifetimes: how many, their total duration, and the longest.
    public private(set) var lifetimeCount = 0
    public private(set) var totalPinNs: UInt64 = 0
    public private(set) var longestPin: PinLifetime?

    public init() {}

    /// Applies one event; `onRelease` sees each completed pin lifetime.
    public mutating func apply(_ e: PageEvent, onRelease: (PinLifetime) -> Void = { _ in }) {
        switch e.kind {
        case .pin, .get:
            var state = pages[e.page, default: PageState()]
            let hold = Hold(kind: e.kind, pid: e.pid, comm: e.comm, acquiredNs: e.timestampNs, gupFlags: e.gupFlags,
                            api: e.api, caller: e.caller, locator: e.locator)
            for _ in 0..<max(1, e.refs) { state.holds.append(hold) }
            if e.kind == .pin { pinsAcquired += max(1, e.refs) } else { getsAcquired += max(1, e.refs) }
            maxHoldsOnOnePage = max(maxHoldsOnOnePage, state.holds.count)
            pages[e.page] = state
        case .unpin, .put:
            let wanted: PageEventKind = e.kind == .unpin ? .pin : .get
            guard var state = pages[e.page] else {
                releasesWithoutAcquire += max(1, e.refs)
                return
            }
            for _ in 0..<max(1, e.refs) {
                guard let i = state.holds.firstIndex(where: { $0.kind == wanted }) else {
                    releasesWithoutAcquire += 1
                    continue
                }
                let hold = state.holds.remove(at: i)
                if wanted == .pin {
                    pinsReleased += 1
                    let life = PinLifetime(hold: hold, releasedNs: e.timestampNs, releaseAPI: e.api)
                    lifetimeCount += 1
                    totalPinNs &+= life.durationNs
                    if life.durationNs > (longestPin?.durationNs ?? 0) { longestPin = life }
                    onRelease(life)
                } else {
                    getsReleased += 1
                }
            }
            store(e.page, state)
        case .writebackStart:
            var state = pages[e.page, default: PageState()]
            state.underWriteback = true
            pages[e.page] = state
        case .writebackEnd:
            guard var state = pages[e.page] else { return }
            state.underWriteback = false
            store(e.page, state)
        default:
            return
        }
    }

    /// References still held, over all pages.
    public var outstanding: Int { pages.values.reduce(0) { $0 + $1.holds.count } }

    private mutating func store(_ key: PageRef, _ state: PageState) {
        pages[key] = state.isIdle ? nil : state
    }
}
