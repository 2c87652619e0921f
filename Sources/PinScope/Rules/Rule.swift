import TraceReader

public enum Severity: String, Sendable, Comparable, CaseIterable {
    case info, warning, error
    var rank: Int { self == .info ? 0 : self == .warning ? 1 : 2 }
    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// What a rule is, for `pinscope explain`.
public struct RuleInfo: Sendable {
    public var id: String
    public var severity: Severity
    public var title: String
    /// Why it is dangerous, which kernel thread or patch discusses it, and the remedy.
    public var explanation: String
}

/// Every key known for a page.
public struct PageInfo: Sendable {
    public var pfn: UInt64?
    public var folio: UInt64?
    public var dev: UInt64?
    public var ino: UInt64?
    public var index: UInt64?
    public var backing: Backing?
}

public struct Owner: Sendable {
    public var pid: Int32
    public var comm: String
    public var driver: String
    public var attributedBy: Attribution.Basis

    init(_ hold: Hold) {
        pid = hold.pid
        comm = hold.comm
        let a = hold.driver ?? Attribution.attribute(stack: [], caller: hold.caller, comm: hold.comm)
        driver = a.driver
        attributedBy = a.basis
    }

    init(_ e: PageEvent) {
        pid = e.pid
        comm = e.comm
        let a = e.driver ?? Attribution.attribute(stack: e.stack, caller: e.caller, comm: e.comm)
        driver = a.driver
        attributedBy = a.basis
    }
}

/// How many more pins a page could take, computed at a pin from the counts the probe read.
public struct PinHeadroom: Sendable {
    public var pins: Int64
    public var page: PageRef
    public var refcount: Int64
    public var pincount: Int64?
    public var large: Bool
}

public struct Finding: Sendable {
    public var rule: String
    public var severity: Severity
    /// The finding depends on a window with lost events, or on history before the trace began.
    public var uncertain: Bool
    public var message: String
    public var pageRef: PageRef?
    public var page: PageInfo
    public var owner: Owner?
    public var evidence: [Evidence]
}

/// What rules share: where findings go, and the facts of the trace.
public struct RuleContext {
    public var findings: [Finding] = []
    /// Findings per rule id (kept even when the list is capped).
    public var counts: [String: Int] = [:]
    public var uncertainCounts: [String: Int] = [:]
    /// Timestamps after which a CPU lost events.
    public var lostAt: [UInt64] = []
    public var longtermNs: UInt64
    public var kernel: KernelVersion?
    public var follLayout: FollFlagLayout?
    public var endNs: UInt64 = 0
    /// Gets released where a probe sees it: else FOLL_GET references cannot be called leaked.
    public var visibleGetReleases = 0
    /// The pin event that left a page closest to overflowing its refcount or pin count.
    public var leastPinHeadroom: PinHeadroom?
    /// Cycle flags to store on holds once the ledger has applied the event.
    var crossings: [(page: PageRef, hold: Int, cycle: Int)] = []
    let findingLimit = 100_000

    /// True when events were lost between `from` and `to` (inclusive).
    public func lostBetween(_ from: UInt64, _ to: UInt64) -> Bool {
        lostAt.contains { $0 >= from && $0 <= to }
    }

    mutating func report(_ info: RuleInfo, severity: Severity? = nil, uncertain: Bool, _ message: String,
                         page: PageRef?, state: Ledger.PageState?, owner: Owner?, evidence: [Evidence]) {
        counts[info.id, default: 0] += 1
        if uncertain { uncertainCounts[info.id, default: 0] += 1 }
        guard findings.count < findingLimit else { return }
        var pi = PageInfo()
        if case .pfn(let p)? = page { pi.pfn = p }
        pi.folio = state?.pointer
        pi.dev = state?.dev
        pi.ino = state?.ino
        pi.index = state?.index
        pi.backing = state?.backing
        if case .file(let ino, let index)? = page { pi.ino = ino; pi.index = index }
        findings.append(Finding(rule: info.id, severity: severity ?? info.severity, uncertain: uncertain, message: message,
                                pageRef: page, page: pi, owner: owner, evidence: evidence))
    }

    func flagNames(_ raw: UInt64?) -> String {
        guard let raw else { return "?" }
        guard let layout = follLayout else { return "0x" + String(raw, radix: 16) }
        let names = layout.names(raw)
        return names.isEmpty ? "0" : names.joined(separator: "|")
    }
}

/// A rule over ledger transitions. `observe` sees each page event with the page's state before
/// the ledger applies it; `finish` sees the ledger at the end of the trace.
public protocol Rule {
    static var info: RuleInfo { get }
    /// The page-event kinds `observe` reads: it is called for those only.
    static var kinds: Set<PageEventKind> { get }
    mutating func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext)
    mutating func finish(_ ledger: Ledger, _ ctx: inout RuleContext)
}

extension Rule {
    public mutating func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext) {}
    public mutating func finish(_ ledger: Ledger, _ ctx: inout RuleContext) {}
}

/// The rules of one analysis, each called only for the event kinds it reads: most page events
/// (a page-cache add, a writeback wait) concern one rule or none, and a call through an
/// existential per rule per event was a measurable share of the analysis.
struct RuleSet {
    private var rules: [any Rule]
    /// Indices into `rules`, by `PageEventKind.ordinal`.
    private let byKind: [[Int]]

    init(_ rules: [any Rule]) {
        self.rules = rules
        byKind = PageEventKind.allCases.map { kind in rules.indices.filter { type(of: rules[$0]).kinds.contains(kind) } }
    }

    mutating func observe(_ e: PageEvent, _ state: Ledger.PageState?, _ ctx: inout RuleContext) {
        for i in byKind[e.kind.ordinal] { rules[i].observe(e, state, &ctx) }
    }

    mutating func finish(_ ledger: Ledger, _ ctx: inout RuleContext) {
        for i in rules.indices { rules[i].finish(ledger, &ctx) }
    }
}

/// Every rule, in the order `explain` lists them.
public enum Rules {
    /// Each rule, new: the one list of rules (an analysis runs them in this order too).
    private static let makers: [@Sendable () -> any Rule] = [
        PinCrossesWriteback.init, DirtyAfterMkclean.init, ReleaseMismatch.init, UnbalancedRelease.init,
        LongtermFilePin.init, PinOverflowRisk.init, DoubleDirty.init, PinBlocksMigration.init, PinLeak.init,
    ]

    public static let all: [RuleInfo] = makers.map { type(of: $0()).info }

    public static func info(_ id: String) -> RuleInfo? { all.first { $0.id == id } }

    static func fresh() -> RuleSet { RuleSet(makers.map { $0() }) }
}

func describeHold(_ h: Hold, _ ctx: RuleContext) -> String {
    let kind = h.kind == .pin ? "pin" : "FOLL_GET reference"
    return "\(kind) (\(ctx.flagNames(h.gupFlags))) taken by \(h.comm) (pid \(h.pid)) via \(h.call ?? h.api)"
}

/// "1.234 s", "12.345 ms", "56.7 us".
public func durationText(_ ns: UInt64) -> String {
    func fixed(_ value: UInt64, _ unit: UInt64, _ digits: Int, _ suffix: String) -> String {
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let scaled = (value * scale + unit / 2) / unit
        let frac = String(scaled % scale)
        return "\(scaled / scale)." + String(repeating: "0", count: digits - frac.count) + frac + " " + suffix
    }
    if ns >= 1_000_000_000 { return fixed(ns, 1_000_000_000, 3, "s") }
    if ns >= 1_000_000 { return fixed(ns, 1_000_000, 3, "ms") }
    return fixed(ns, 1_000, 1, "us")
}
