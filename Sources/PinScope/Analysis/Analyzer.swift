import Dispatch
import TraceReader

public struct AnalysisOptions: Sendable {
    /// Pins held at least this long are long-term for pin-leak and the statistics.
    public var longtermNs: UInt64 = 1_000_000_000
    /// Kernel release to decode with, instead of the trace's uname.
    public var kernel: String?
    public var profiles: Set<Vocabulary.Profile> = Set(Vocabulary.Profile.allCases)
    public var userMap: UserMapping?

    public init() {}
}

/// Pin statistics for one driver (or one backing kind).
public struct PinGroupStats: Sendable {
    public var pins = 0
    public var gets = 0
    public var longterm = 0
    public var released = 0
    public var totalNs: UInt64 = 0
    public var maxNs: UInt64 = 0
    public var histogram = [Int](repeating: 0, count: 10)
    public var findings = 0
}

/// Everything `pinscope analyze` found in one trace.
public struct Analysis: Sendable {
    public var info: TraceInfo
    public var kernel: String?
    public var follLayout: String?
    public var eventsRead = 0
    public var pageEvents = 0
    public var pagesTracked = 0
    public var peakLivePages = 0
    public var pins = 0
    public var pinsReleased = 0
    public var pinsHeldAtEnd = 0
    public var gets = 0
    public var getsReleased = 0
    public var getsExpired = 0
    public var longtermPins = 0
    /// The most pins held at once on one page, and where.
    public var maxPinsOnOnePage: (pins: Int, page: PageRef)?
    /// The closest any page came to overflowing its refcount or pin count.
    public var leastPinHeadroom: PinHeadroom?
    public var lostEvents: UInt64 = 0
    public var lostAt: [(ts: UInt64, cpu: Int)] = []
    public var unresolvedIdentities = 0
    public var vmemmapBase: UInt64?
    public var firstNs: UInt64?
    public var lastNs: UInt64?
    public var findings: [Finding] = []
    public var findingCounts: [String: Int] = [:]
    public var uncertainCounts: [String: Int] = [:]
    public var byDriver: [String: PinGroupStats] = [:]
    public var byBacking: [String: PinGroupStats] = [:]
    public var longestPin: PinLifetime?
    public var durationHistogram: [Int] = []
    public var totalPinNs: UInt64 = 0
    public var lifetimes = 0
    public var anomalies = Anomalies()
    public var warnings: [String] = []
    public var longtermNs: UInt64 = 0
    /// The input was damaged (truncated, corrupt): what was read is analyzed, and `warnings` says where it stopped.
    public var damaged = false

    /// Findings that count for the exit status: certain ones at or above `severity`.
    public func certainFindings(atLeast severity: Severity) -> Int {
        findings.filter { !$0.uncertain && $0.severity >= severity }.count
    }

    /// The summary's finding counts: certain errors, certain warnings, and uncertain findings.
    public var findingTally: (errors: Int, warnings: Int, uncertain: Int) {
        var t = (errors: 0, warnings: 0, uncertain: 0)
        for f in findings {
            if f.uncertain {
                t.uncertain += 1
            } else if f.severity == .error {
                t.errors += 1
            } else if f.severity == .warning {
                t.warnings += 1
            }
        }
        return t
    }
}

/// Runs the pipeline: RawEvent → Vocabulary → PageEvent → identity → Ledger → Rules → findings.
public final class Analyzer {
    let options: AnalysisOptions
    private var vocabulary: Vocabulary
    private var ledger = Ledger()
    private var rules = Rules.fresh()
    private var ctx: RuleContext
    private var analysis: Analysis
    private let pageFlags: PageFlagLayout?
    private var seenPages = SeenPages(limit: 1 << 22)
    private var pending: [PageEvent] = []
    /// The reader already dropped the events the vocabulary does not read.
    private var prefiltered = false

    public init(info: TraceInfo, options: AnalysisOptions) {
        self.options = options
        let release = options.kernel ?? info.kernelRelease
        vocabulary = Vocabulary(kernelRelease: release, profiles: options.profiles, userMap: options.userMap)
        ctx = RuleContext(longtermNs: options.longtermNs)
        ctx.kernel = vocabulary.kernel
        ctx.follLayout = vocabulary.foll
        pageFlags = PageFlagLayout.forKernel(vocabulary.kernel)
        analysis = Analysis(info: info)
        analysis.kernel = release
        analysis.follLayout = vocabulary.foll?.name
        analysis.longtermNs = options.longtermNs
        if release == nil {
            analysis.warnings.append("the trace names no kernel release (no uname): FOLL_* flags are shown raw; pass --kernel VERSION to decode them")
        } else if vocabulary.foll == nil {
            analysis.warnings.append("no FOLL_* table for kernel \(release!): flags are shown raw and pins cannot be told from FOLL_GET references")
        }
    }

    /// Reads a whole source and returns the analysis.
    public static func analyze(_ source: RawEventSource, options: AnalysisOptions) throws -> Analysis {
        let analyzer = Analyzer(info: source.info, options: options)
        analyzer.vocabulary.eventsFromOneReader = true
        if let filtering = source as? EventFiltering, options.userMap == nil {
            filtering.onlyEvents = Vocabulary.consumedEventNames
            analyzer.prefiltered = true
        }
        if let dat = source as? TraceDatReader { dat.printedEvents = Vocabulary.printedEventNames }
        var damage: TraceError?
        // Decoding runs on a second thread, a batch ahead of the analysis. That thread also reads
        // the fields the vocabulary needs (by position: `Vocabulary.FieldPositions`), so the
        // analysis can load the table slots of the events ahead while it handles one.
        let extractor = Vocabulary.Extractor()
        let events = ReadAhead(source) { extractor($0) }
        do {
            try analyzer.consumeAll(events)
        } catch let e as TraceError {
            // Findings up to the damage, and the damage as a warning.
            damage = e
        }
        var result = analyzer.finish()
        if let filtering = source as? EventFiltering {
            result.eventsRead += filtering.skippedRecords
            if let span = filtering.skippedSpan {
                result.firstNs = min(result.firstNs ?? span.lowerBound, span.lowerBound)
                result.lastNs = max(result.lastNs ?? span.upperBound, span.upperBound)
            }
        }
        if let damage {
            result.warnings.append("\(damage) (analysis stops here: findings cover the trace up to this point)")
            result.damaged = true
        }
        result.anomalies.merge(source.anomalies)
        result.warnings += source.warnings.map(\.description)
        // Freeing a large trace's state (a page state per live page, the identity tables, the
        // read-ahead's batches) took ~10 ms after the analysis was done: another thread does it
        // while the caller writes the report.
        releaseInBackground(analyzer, events)
        return result
    }

    public func consume(_ e: RawEvent) { consume(e, extracted: nil) }

    /// Consumes every event read ahead. A method, so the loop holds `self` without a retain per
    /// event (a closure outside would retain the analyzer for each call).
    private func consumeAll(_ events: ReadAhead<Vocabulary.Extracted?>) throws {
        while try events.next({ consume($0, extracted: $1) }, ahead: { prefetch($0, after: $1) }) {}
    }

    /// Starts loading the hash-table slots the next events will look up while this one is
    /// handled: the tables outgrow the caches, and each lookup was a miss. The event after next
    /// gets its (ino, index) slot loaded; the next one, whose slot is loaded by now, its page's
    /// slot in the ledger (a guess: this event may change either, and a hint is all it is).
    private func prefetch(_ extracts: [Vocabulary.Extracted?], after i: Int) {
        guard i + 2 < extracts.count else { return }
        if let ino = extracts[i + 2]?.file.ino, let index = extracts[i + 2]?.file.index {
            vocabulary.prefetch(ino: ino, index: index)
        }
        // A page-cache event also adds or removes the pfn's entry.
        if let pfn = extracts[i + 2]?.file.pfn { vocabulary.prefetch(pfn: pfn) }
        if let pfn = extracts[i + 1]?.file.pfn {
            ledger.prefetch(.pfn(pfn))
        } else if let ino = extracts[i + 1]?.file.ino, let index = extracts[i + 1]?.file.index,
                  let pfn = vocabulary.pfnGuess(ino: ino, index: index) {
            ledger.prefetch(.pfn(pfn))
        }
    }

    func consume(_ e: RawEvent, extracted: Vocabulary.Extracted?) {
        analysis.eventsRead += 1
        if analysis.firstNs == nil { analysis.firstNs = e.timestampNs }
        analysis.lastNs = e.timestampNs
        if let lost = e.lostBefore {
            analysis.lostEvents += lost
            ctx.lostAt.append(e.timestampNs)
            if analysis.lostAt.count < 1000 { analysis.lostAt.append((e.timestampNs, e.cpu)) }
        }
        guard prefiltered || options.userMap != nil || Vocabulary.consumedEventNames.contains(e.name) else { return }
        let calibrated = vocabulary.isCalibrated()
        // Mapped into a local array (the stored one swapped in and back, which moves its buffer):
        // reading a stored property's array in the loop below retained and released its buffer.
        var events: [PageEvent] = []
        swap(&events, &pending)
        vocabulary.map(e, extracted: extracted, into: &events)
        // The page events stay in `events` until recycled: handle them without a retain and a
        // release of each per event.
        events.withUnsafeBufferPointer { events in
            for i in events.indices { Unmanaged.passUnretained(events[i])._withUnsafeGuaranteedRef { handle($0) } }
        }
        vocabulary.recycle(&events)
        swap(&events, &pending)
        if !calibrated, vocabulary.isCalibrated() {
            let identity = vocabulary.identity
            ledger.rekey { key in
                guard case .pointer(let p) = key, let pfn = identity.pfn(ofPointer: p) else { return nil }
                return .pfn(pfn)
            }
        }
    }

    private func handle(_ e: PageEvent) {
        analysis.pageEvents += 1
        let key = vocabulary.resolve(e.page, mapping: e.mapping, index: e.index)
        if key != e.page {
            ledger.merge(e.page, into: key)
            e.page = key
        }
        switch key {
        case .pointer, .file: analysis.unresolvedIdentities += 1
        default: break
        }
        ledger.noteReuse(e)
        let before = ledger[key]
        // Counted once per key: a kept page remembers the key it was counted under.
        if before?.countedAs != key {
            if case .range = key {} else {
                seenPages.insert(key)
                before?.countedAs = key
            }
        }
        rules.observe(e, before, &ctx)
        let foll = e.gupFlags == nil ? nil : vocabulary.follFlags(e.gupFlags)
        let backingBefore = before?.backing
        let after = ledger.apply(e, known: before, follFlags: foll, pageFlagLayout: pageFlags)
        if !ledger.completed.isEmpty {
            for life in ledger.completed {
                let driver = life.hold.driver?.driver ?? life.hold.comm
                analysis.byDriver[driver, default: PinGroupStats()].record(life)
                if let backingBefore {
                    analysis.byBacking[backingBefore.rawValue, default: PinGroupStats()].record(life)
                }
            }
        }
        // Checked first: reading the array to loop over it cost a retain and a release per event.
        if !ctx.crossings.isEmpty {
            for c in ctx.crossings { ledger.markFlagged(c.page, holdAt: c.hold, cycle: c.cycle) }
            ctx.crossings.removeAll()
        }
        var backing = after?.backing
        if let after {
            if case .pfn(let pfn) = key, after.dev == nil || after.ino == nil || after.index == nil,
               let f = vocabulary.file(ofPfn: pfn) {
                backing = ledger.learnDevice(key, after, dev: f.dev ?? vocabulary.dev(ofIno: f.ino), ino: f.ino, index: f.index)
            } else if let ino = after.ino, after.dev == nil, let dev = vocabulary.dev(ofIno: ino) {
                backing = ledger.learnDevice(key, after, dev: dev, ino: nil, index: nil)
            }
        }
        switch e.kind {
        case .pin, .get:
            let longterm = foll?.contains(.longterm) ?? false
            analysis.byDriver[e.driver?.driver ?? e.comm, default: PinGroupStats()].count(e, longterm: longterm)
            if let backing { analysis.byBacking[backing.rawValue, default: PinGroupStats()].count(e, longterm: longterm) }
        case .put where !e.inferred:
            ctx.visibleGetReleases += 1
        default:
            break
        }
    }

    public func finish() -> Analysis {
        ctx.endNs = analysis.lastNs ?? 0
        rules.finish(ledger, &ctx)
        let identity = vocabulary.identity
        var a = analysis
        // Completed in place: the list can be long, and a copy would double its peak memory.
        a.findings = ctx.findings
        ctx.findings = []
        for i in a.findings.indices {
            var f = a.findings[i]
            // Keys learnt after the finding was made (the vmemmap base, the page cache's file).
            if f.page.pfn == nil, let ptr = f.page.folio ?? f.pageRef.flatMap({ if case .pointer(let p) = $0 { return p } else { return nil } }) {
                f.page.folio = ptr
                f.page.pfn = identity.pfn(ofPointer: ptr)
            }
            if let pfn = f.page.pfn {
                if f.page.folio == nil { f.page.folio = identity.pointer(ofPfn: pfn) }
                if let file = identity.file(ofPfn: pfn) {
                    f.page.ino = f.page.ino ?? file.ino
                    f.page.index = f.page.index ?? file.index
                    f.page.dev = f.page.dev ?? file.dev
                }
            }
            if f.page.dev == nil, let ino = f.page.ino { f.page.dev = identity.dev(ofIno: ino) }
            a.findings[i] = f
        }
        a.findings.sort { ($0.evidence.last?.timestampNs ?? 0) < ($1.evidence.last?.timestampNs ?? 0) }
        a.findingCounts = ctx.counts
        a.uncertainCounts = ctx.uncertainCounts
        for f in a.findings where f.owner != nil {
            a.byDriver[f.owner!.driver, default: PinGroupStats()].findings += 1
        }
        a.pagesTracked = seenPages.count
        a.peakLivePages = ledger.peakLivePages
        a.pins = ledger.pinsAcquired
        a.pinsReleased = ledger.pinsReleased
        a.pinsHeldAtEnd = ledger.pages.values.reduce(0) { $0 + $1.holds.filter { $0.kind == .pin }.count }
        a.gets = ledger.getsAcquired
        a.getsReleased = ledger.getsReleased
        a.getsExpired = ledger.getsExpired
        a.longtermPins = ledger.longtermPins
        a.maxPinsOnOnePage = ledger.maxPinsOnOnePage.map { ($0.pins, canonical($0.page, identity)) }
        a.leastPinHeadroom = ctx.leastPinHeadroom.map { var h = $0; h.page = canonical(h.page, identity); return h }
        a.vmemmapBase = identity.vmemmapBase
        a.longestPin = ledger.longestPin
        a.durationHistogram = ledger.durationHistogram
        a.totalPinNs = ledger.totalPinNs
        a.lifetimes = ledger.lifetimeCount
        a.anomalies.merge(vocabulary.anomalies)
        return a
    }
}

/// A page's key as a pfn when the whole trace ties its pointer to one.
private func canonical(_ page: PageRef, _ identity: PageIdentity) -> PageRef {
    if case .pointer(let p) = page, let pfn = identity.pfn(ofPointer: p) { return .pfn(pfn) }
    return page
}

extension PinGroupStats {
    /// An acquire: a pin or a FOLL_GET reference, `refs` of them.
    mutating func count(_ e: PageEvent, longterm: Bool) {
        let n = max(1, e.refs)
        if e.kind == .pin { pins += n } else { gets += n }
        if longterm { self.longterm += n }
    }

    mutating func record(_ life: PinLifetime) {
        released += 1
        totalNs &+= life.durationNs
        maxNs = max(maxNs, life.durationNs)
        histogram[Ledger.bucket(life.durationNs)] += 1
    }
}

/// Drops the last references to `objects` on another thread, so that freeing what they hold
/// overlaps the caller's next work instead of delaying it.
func releaseInBackground(_ objects: AnyObject...) {
    nonisolated(unsafe) let held = objects
    DispatchQueue.global(qos: .utility).async { withExtendedLifetime(held) {} }
}
