import TraceReader

/// Maps raw events to PageEvents. Profiles know event names and field names; they know nothing
/// of bytes (the readers' job) nor of rules (the ledger's).
///
/// Per-page kprobes (`try_grab_page`, `folio_mark_dirty`, ...) carry no stack in PinScope's
/// capture set; the public call they happen in does (`pin_user_pages_remote`,
/// `unpin_user_pages_dirty_lock`, `__bio_release_pages`, ...). The vocabulary keeps, per task, the
/// call it is in, and gives the per-page events that call's API, caller, driver and dirty source.
public struct Vocabulary {
    /// FOLL_* layout of the traced kernel; nil when unknown (flags are then kept raw).
    public let foll: FollFlagLayout?
    public let kernel: KernelVersion?
    public private(set) var identity = PageIdentity()
    public private(set) var anomalies = Anomalies()
    /// Raw events mapped, by profile.
    public var consumed: [String: Int] {
        var d: [String: Int] = [:]
        for p in Profile.allCases where consumedByProfile[p.ordinal] > 0 { d[p.rawValue] = consumedByProfile[p.ordinal] }
        return d
    }
    private var consumedByProfile = [Int](repeating: 0, count: Profile.allCases.count)
    let profiles: Set<Profile>
    /// `profiles` as flags: tested for every event.
    private let tracepointsOn: Bool, pageRefOn: Bool, kprobesOn: Bool
    let userMap: UserMapping?

    /// The GUP call a task is in (outermost public entry point), and the last dirtying wrapper.
    struct CallContext {
        var api: String
        var flags: UInt64?
        var stack: [StackFrame]
        var caller: String?
        var driver: Attribution
        var startNs: UInt64
    }
    struct DirtyContext {
        var source: DirtySource
        var api: String
        var bio: UInt64?
        var stack: [StackFrame]
        var startNs: UInt64
    }
    private var gupCalls: [Int32: CallContext] = [:]
    private var dirtyCalls: [Int32: DirtyContext] = [:]
    /// Pages a read bio will dirty at submission (bio_set_pages_dirty), so its completion can
    /// release them: 6.1 drops FOLL_GET references with an inline put_page no probe sees.
    private var bioPages: [UInt64: [PageRef]] = [:]
    /// Tasks inside a KVM mmu-notifier invalidation, and each task's last kvm_release_pfn_clean.
    private var kvmInvalidating = Set<Int32>()
    private var lastKvmRelease: [Int32: UInt64] = [:]
    /// Set once `folio_mark_dirty` kprobes are seen: the writeback_dirty_folio tracepoint then
    /// repeats the same dirtying and is used for identity only.
    private var dirtyKprobesSeen = false
    /// A dirtying wrapper's context is trusted this long without a newer call by the task.
    private let wrapperWindowNs: UInt64 = 2_000_000

    public enum Profile: String, Sendable, CaseIterable {
        case tracepoints, pageRef = "page_ref", kprobes, user

        var ordinal: Int {
            switch self {
            case .tracepoints: return 0
            case .pageRef: return 1
            case .kprobes: return 2
            case .user: return 3
            }
        }
    }

    public init(kernelRelease: String?, profiles: Set<Profile> = Set(Profile.allCases), userMap: UserMapping? = nil) {
        kernel = kernelRelease.flatMap { KernelVersion(release: $0) }
        foll = kernel.flatMap { FollFlagLayout.forKernel($0) }
        self.profiles = profiles
        tracepointsOn = profiles.contains(.tracepoints)
        pageRefOn = profiles.contains(.pageRef)
        kprobesOn = profiles.contains(.kprobes)
        self.userMap = userMap
    }

    /// `identity.resolve`, and the lookups below, for a caller holding the vocabulary in a class:
    /// called in place (as mutating), where reading `identity` through the stored property first
    /// copied its 168 bytes, for every page event.
    mutating func resolve(_ ref: PageRef, mapping: UInt64?, index: UInt64?) -> PageRef {
        identity.resolve(ref, mapping: mapping, index: index)
    }
    mutating func file(ofPfn pfn: UInt64) -> (dev: UInt64?, ino: UInt64, index: UInt64)? { identity.file(ofPfn: pfn) }
    mutating func dev(ofIno ino: UInt64) -> UInt64? { identity.dev(ofIno: ino) }
    mutating func isCalibrated() -> Bool { identity.vmemmapBase != nil }
    mutating func prefetch(ino: UInt64, index: UInt64) { identity.prefetch(ino: ino, index: index) }
    mutating func pfnGuess(ino: UInt64, index: UInt64) -> UInt64? { identity.pfnGuess(ino: ino, index: index) }
    mutating func prefetch(pfn: UInt64) { identity.prefetch(pfn: pfn) }

    /// Decodes GUP flags with the trace's kernel layout. Without one, only FOLL_WRITE (0x1 in
    /// every kernel since 2.6) is read; the rest stays raw.
    public func follFlags(_ raw: UInt64?) -> FollFlags? {
        guard let raw else { return nil }
        guard let foll else { return raw & 1 != 0 ? .write : [] }
        return foll.decode(raw).flags
    }

    /// Event names this vocabulary reads (a fast reader can skip the others undecoded): the
    /// names it has a handler for.
    public static let consumedEventNames: Set<String> = Set(handlers.keys)

    /// Events whose binary records hold symbolic values as numbers: a trace.dat reader renders
    /// their payload with the print format (libtraceevent) for the text the vocabulary reads.
    public static let printedEventNames: Set<String> = ["mm_migrate_pages"]

    /// Public GUP entry points: the call a per-page grab happens in.
    static let gupEntryPoints: Set<String> = [
        "pin_user_pages_fast", "pin_user_pages_fast_only", "pin_user_pages", "pin_user_pages_unlocked",
        "pin_user_pages_remote", "get_user_pages_fast", "get_user_pages_fast_only", "get_user_pages",
        "get_user_pages_unlocked", "get_user_pages_remote", "__gup_longterm_locked",
        "internal_get_user_pages_fast", "__get_user_pages", "pin_user_pages_fast_only",
    ]

    /// What the vocabulary does with an event name: one dictionary lookup per event instead of
    /// a chain of string comparisons.
    enum Handler {
        case gupEntry, gupReturn, dirtyWrapperReturn, grab, gupPut, unpinCall, bioSetDirty, bioRelease
        case markDirty, folioState, notifierRange, filemapAdd, filemapDelete, dirtyTracepoint, waitWriteback, writepages
        case migrate, pageRef
        case kvmDirty, kvmRelease, kvmInvalidate

        /// Whether mapping the event may read its stack (the page-cache and writeback range
        /// tracepoints never do; a finding may still read any page event's stack).
        var readsStack: Bool {
            switch self {
            case .filemapAdd, .filemapDelete, .waitWriteback, .writepages, .migrate: return false
            default: return true
            }
        }
    }

    static let handlers: [String: Handler] = {
        var h: [String: Handler] = [:]
        for name in gupEntryPoints {
            h[name] = .gupEntry
            h[name + "_ret"] = .gupReturn
        }
        h["folio_clear_dirty_for_io_ret"] = .dirtyWrapperReturn
        h["set_page_dirty_lock_ret"] = .dirtyWrapperReturn
        for name in ["try_grab_page", "try_grab_folio"] { h[name] = .grab }
        h["gup_put_folio"] = .gupPut
        for name in ["unpin_user_pages_dirty_lock", "unpin_user_page_range_dirty_lock", "unpin_user_pages", "unpin_user_page"] {
            h[name] = .unpinCall
        }
        h["bio_set_pages_dirty"] = .bioSetDirty
        h["__bio_release_pages"] = .bioRelease
        for name in ["folio_mark_dirty", "set_page_dirty_lock"] { h[name] = .markDirty }
        for name in ["folio_mkclean", "folio_clear_dirty_for_io", "__folio_start_writeback", "folio_end_writeback", "__folio_put"] {
            h[name] = .folioState
        }
        for name in ["mmu_notifier_invalidate_range_start", "mmu_notifier_invalidate_range_end"] { h[name] = .notifierRange }
        h["mm_filemap_add_to_page_cache"] = .filemapAdd
        h["mm_filemap_delete_from_page_cache"] = .filemapDelete
        for name in ["writeback_dirty_folio", "writeback_dirty_page"] { h[name] = .dirtyTracepoint }
        for name in ["folio_wait_writeback", "wait_on_page_writeback"] { h[name] = .waitWriteback }
        h["ext4_writepages"] = .writepages
        h["mm_migrate_pages"] = .migrate
        for name in ["page_ref_mod", "page_ref_mod_and_test", "page_ref_mod_and_return", "page_ref_mod_unless"] { h[name] = .pageRef }
        for name in ["kvm_set_pfn_dirty", "kvm_set_page_dirty"] { h[name] = .kvmDirty }
        for name in ["kvm_release_pfn_clean", "kvm_release_page_clean"] { h[name] = .kvmRelease }
        for name in ["kvm_mmu_notifier_invalidate_range_start", "kvm_mmu_notifier_invalidate_range_end"] { h[name] = .kvmInvalidate }
        return h
    }()

    /// Handlers by the reader's type id, with the name they were looked up for (`key`, the
    /// reader's own string, so the check is an identity compare) and the cache's own copy of it
    /// (`own`), which the page events carry: a string the reading thread also retains and
    /// releases for every event costs both threads a contended reference count. One per thread.
    struct HandlerCache {
        private var keys = DenseTable<String>()
        private var byType = DenseTable<(own: String, handler: Handler?)>()
        /// The events come from one reader, whose type ids each name one type: the id alone
        /// finds the handler. Otherwise the name is checked too (reading the reader's copy of it
        /// costs a reference count both threads bump).
        var trustsTypeIDs = false

        /// The handler for an event's name and the name to give its page events: looked up
        /// once per type id, not hashed per event.
        mutating func lookup(_ e: RawEvent) -> (handler: Handler?, name: String) {
            let id = Int(e.typeID)
            guard id >= 0, id < 1 << 16 else { return (Vocabulary.handlers[e.name], e.name) }
            if let cached = byType[id], trustsTypeIDs || keys[id] == e.name { return (cached.handler, cached.own) }
            // The handler table's key where there is one: most are string literals, which have no
            // reference count to bump (the page events of the type all carry the name).
            let entry = Vocabulary.handlers.index(forKey: e.name).map { Vocabulary.handlers[$0] }
            let handler = entry?.value
            let own = entry?.key ?? String(decoding: Array(e.name.utf8), as: UTF8.self)
            keys[id] = e.name
            byType[id] = (own, handler)
            return (handler, own)
        }
    }
    private var handlerCache = HandlerCache()
    /// Every event comes from one reader (`HandlerCache.trustsTypeIDs`).
    var eventsFromOneReader: Bool {
        get { handlerCache.trustsTypeIDs }
        set { handlerCache.trustsTypeIDs = newValue }
    }

    /// Maps one raw event to zero or more page events.
    public mutating func map(_ e: RawEvent, _ emit: (PageEvent) -> Void) {
        var out: [PageEvent] = []
        map(e, into: &out)
        out.forEach(emit)
    }

    /// What the vocabulary reads from an event that depends on the event alone: the fields of
    /// the page-cache and writeback tracepoints, most of a large trace. `Extractor` computes it
    /// on the reading thread (`ReadAhead`), so the analysis thread only applies it.
    struct Extracted {
        /// filemap add/delete: pfn, ino, index, dev; writeback dirty/wait: ino, index;
        /// ext4_writepages: ino.
        var file = FileFields()
        /// ext4_writepages: the byte range written.
        var rangeStart: UInt64?
        var rangeEnd: UInt64?
    }

    /// The fields `extract` reads, as the binary formats name them (a text payload may print
    /// some as words instead, like the kernel's filemap `dev 254:0 ino 52d5ce`).
    enum FieldName: Int {
        case pfn, inode, ino, index, ofs, device, rangeStart, rangeEnd
        var string: String {
            switch self {
            case .pfn: "pfn"
            case .inode: "i_ino"
            case .ino: "ino"
            case .index: "index"
            case .ofs: "ofs"
            case .device: "s_dev"
            case .rangeStart: "range_start"
            case .rangeEnd: "range_end"
            }
        }
    }

    /// Where `extract` finds its fields in the events of one type, learned from the first event
    /// that reads each: reading a field by name costs a search of the type's field names per
    /// event. A binary type's positions are fixed; a text type's (its `key=value` pairs keep
    /// their order) are checked in each event and searched for by name when they differ.
    struct FieldPositions: Equatable {
        /// Per `FieldName`: the position, -1 for none, -2 before it was looked up. Small
        /// numbers in one vector: the extractor copies a type's positions for every event.
        private var positions = SIMD8<Int16>(repeating: -2)
        /// Every field read so far had a position (a text field printed as a word has none).
        private(set) var complete = true

        /// `e`'s field `name` as an unsigned integer.
        @inline(__always)
        mutating func unsigned(_ name: FieldName, of e: RawEvent) -> UInt64? {
            let at = positions[name.rawValue]
            if at >= 0 { return e.unsignedField(at: Int(at), named: name.string) }
            return unsigned(name, of: e, notAt: at)
        }

        /// `unsigned` for a field without a position, or not looked up yet (`at` -2).
        private mutating func unsigned(_ name: FieldName, of e: RawEvent, notAt at: Int16) -> UInt64? {
            let key = name.string
            var at = at
            if at == -2 {
                at = (e.isBinary ? e.fieldIndex(named: key) : e.textPairIndex(named: key)).flatMap { Int16(exactly: $0) } ?? -1
                positions[name.rawValue] = at
                if at < 0 && !e.isBinary { complete = false }
                if at >= 0 { return e.unsignedField(at: Int(at), named: key) }
            }
            // A binary type lacks it; a text event may have it where its type's first one had not.
            return e.isBinary ? nil : e.u(key)
        }
    }

    /// What the vocabulary reads from `e`, by name, or at `positions` (those of `e`'s type,
    /// learned as they are read) when given.
    static func extract(_ e: RawEvent, _ handler: Handler?, at positions: inout FieldPositions?) -> Extracted {
        func u(_ name: FieldName) -> UInt64? {
            guard positions != nil else { return e.u(name.string) }
            return positions!.unsigned(name, of: e)
        }
        var x = Extracted()
        switch handler {
        case .filemapAdd?, .filemapDelete?:
            x.file = FileFields(pfn: u(.pfn), ino: u(.inode) ?? e.filemapPrintedIno,
                                index: u(.index) ?? u(.ofs).map { $0 / 4096 }, dev: u(.device) ?? e.filemapPrintedDev)
        case .dirtyTracepoint?, .waitWriteback?:
            x.file.ino = u(.ino)
            x.file.index = u(.index)
        case .writepages?:
            x.file.ino = u(.ino) ?? e.payloadNumber("ino")
            x.rangeStart = u(.rangeStart) ?? e.payloadNumber("range_start")
            x.rangeEnd = u(.rangeEnd) ?? e.payloadNumber("range_end")
        default:
            break
        }
        return x
    }

    /// `extract` by name.
    static func extract(_ e: RawEvent, _ handler: Handler?) -> Extracted {
        var byName: FieldPositions? = nil
        return extract(e, handler, at: &byName)
    }

    /// `extract` for a reading thread, with its own handler cache by type id (the vocabulary's
    /// belongs to the analysis thread). One extractor serves one reader, whose type ids each
    /// name one event type: after the first event of a type, its id alone gives the handler and
    /// where the fields are (checking the name too cost two reference counts per event).
    final class Extractor: @unchecked Sendable {
        private var handlers = HandlerCache()
        /// Per event type: its handler, where its fields are, and whether this thread extracts
        /// its events (`here`). A text type with fields printed as words, not pairs, is left to
        /// the analysis: searching its payload words here made the reading thread, the busier
        /// one on text, slower than the analysis gained.
        private var byType = DenseTable<(handler: Handler?, fields: FieldPositions?, here: Bool)>()

        /// A stack was going to be read, and its symbols' parse was started.
        private var symbolsPrefetched = false

        /// What `Vocabulary.extract` gives for `e`, or nil to leave it to the analysis.
        func callAsFunction(_ e: RawEvent) -> Extracted? {
            let id = Int(e.typeID)
            if var known = byType[id] {
                if !symbolsPrefetched, known.handler?.readsStack ?? false, !e.lazyStack.isEmpty {
                    // The analysis reads this stack soon: parse the symbols meanwhile.
                    e.lazyStack.prefetchSymbols()
                    symbolsPrefetched = true
                }
                guard known.here else { return nil }
                let before = known.fields
                let x = Vocabulary.extract(e, known.handler, at: &known.fields)
                // Most events learn nothing: their type's positions are all known by now.
                if known.fields != before { byType[id] = known }
                return x
            }
            let handler = handlers.lookup(e).handler
            guard id >= 0, id < 1 << 16 else { return e.isBinary ? Vocabulary.extract(e, handler) : nil }
            var fields: FieldPositions? = FieldPositions()
            let x = Vocabulary.extract(e, handler, at: &fields)
            byType[id] = (handler, fields, e.isBinary || fields!.complete)
            return x
        }
    }

    /// Maps one raw event to zero or more page events, appended to `out`.
    public mutating func map(_ e: RawEvent, into out: inout [PageEvent]) { map(e, extracted: nil, into: &out) }

    /// Maps one raw event to zero or more page events, appended to `out`.
    /// - Parameter extracted: `Extractor`'s result for the event, when it ran already.
    mutating func map(_ e: RawEvent, extracted: Extracted?, into out: inout [PageEvent]) {
        let (handler, name) = handlerCache.lookup(e)
        let x = extracted ?? Self.extract(e, handler)
        // What identity learns from the event, whatever the profiles; the page event below
        // reuses the fields read for it.
        let file = x.file
        switch handler {
        case .filemapAdd, .filemapDelete:
            if let ino = file.ino, let index = file.index {
                if handler == .filemapAdd {
                    if let pfn = file.pfn { identity.cacheAdded(pfn: pfn, ino: ino, index: index, dev: file.dev) }
                } else {
                    identity.cacheDeleted(ino: ino, index: index)
                }
            }
        case .folioState where e.name != "__folio_put", .markDirty where e.name == "folio_mark_dirty":
            if let ptr = e.u("folio"), let mapping = e.u("mapping"), let index = e.u("index") {
                identity.folioSeen(ptr, mapping: mapping, index: index, cpu: e.cpu, at: e.timestampNs)
            }
        case .dirtyTracepoint:
            if let ino = file.ino, let index = file.index { identity.dirtied(ino: ino, index: index, cpu: e.cpu, at: e.timestampNs) }
        default: break
        }
        if let userMap, let mapped = userMap.map(e) {
            count(.user)
            out.append(mapped)
            return
        }
        guard let handler else { return }
        switch handler {
        case .gupEntry:
            guard kprobesOn else { return }
            if gupCalls[e.pid] == nil {
                let caller = Attribution.firstInterestingFrame(e.stack, skipping: name)
                gupCalls[e.pid] = CallContext(api: name, flags: e.u("gup_flags"), stack: e.stack, caller: caller,
                                              driver: Attribution.attribute(stack: e.stack, caller: caller, comm: e.comm),
                                              startNs: e.timestampNs)
            }
            dirtyCalls[e.pid] = nil
            return
        case .gupReturn:
            if gupCalls[e.pid]?.api == String(name.dropLast(4)) { gupCalls[e.pid] = nil }
            return
        case .dirtyWrapperReturn:
            dirtyCalls[e.pid] = nil
            return
        default:
            break
        }
        switch handler {
        // PinScope's kprobe set (pinscope profiles --kprobes).
        case .grab:
            guard kprobesOn, let page = e.u("page") else { return miss(e) }
            let flags = e.u("flags")
            let refs = Int(e.s("refs") ?? 1)
            let pin = foll != nil ? isPin(flags) : gupCalls[e.pid]?.api.hasPrefix("pin_user_pages") ?? false
            let pe = event(name: name, kind: pin ? .pin : .get, from: e, page: .pointer(page), refs: refs,
                           gupFlags: flags, mapping: e.u("mapping"), index: e.u("index"))
            readPageFields(e, into: pe)
            if let call = gupCalls[e.pid] {
                pe.call = call.api
                pe.caller = call.caller
                pe.driver = call.driver
                if !pe.hasStack { pe.stack = call.stack }
            } else {
                pe.driver = Attribution.attribute(stack: e.stack, caller: pe.caller, comm: e.comm)
            }
            out.append(consume pe)
            count(.kprobes)
        case .gupPut:
            guard kprobesOn, let folio = e.u("folio") else { return miss(e) }
            let flags = e.u("flags")
            // Without a FOLL_* table the call tells: unpin_user_page* drops pins.
            let unpin = foll != nil ? isPin(flags)
                : dirtyCalls[e.pid].map { $0.source == .pinRelease && e.timestampNs &- $0.startNs < wrapperWindowNs } ?? false
            let pe = event(name: name, kind: unpin ? .unpin : .put, from: e, page: .pointer(folio),
                           refs: Int(e.s("refs") ?? 1), gupFlags: flags, mapping: e.u("mapping"), index: e.u("index"))
            readPageFields(e, into: pe)
            if let d = dirtyCalls[e.pid], e.timestampNs &- d.startNs < wrapperWindowNs { pe.call = d.api }
            out.append(consume pe)
            count(.kprobes)
        case .unpinCall:
            guard kprobesOn else { return }
            dirtyCalls[e.pid] = DirtyContext(source: .pinRelease, api: name, bio: nil, stack: e.stack, startNs: e.timestampNs)
            gupCalls[e.pid] = nil
        case .bioSetDirty:
            guard kprobesOn, let bio = e.u("bio") else { return }
            dirtyCalls[e.pid] = DirtyContext(source: .bioSubmit, api: name, bio: bio, stack: e.stack, startNs: e.timestampNs)
            bioPages[bio] = []
        case .bioRelease:
            guard kprobesOn, let bio = e.u("bio") else { return }
            let markDirty = (e.u("mark_dirty") ?? 0) != 0
            dirtyCalls[e.pid] = markDirty
                ? DirtyContext(source: .bioCompletion, api: name, bio: bio, stack: e.stack, startNs: e.timestampNs) : nil
            // The bio's references go now; dirtying (if any) follows, by a task that had them.
            for page in bioPages.removeValue(forKey: bio) ?? [] {
                let pe = event(name: name, kind: .put, from: e, page: page)
                pe.bio = bio
                pe.call = name
                pe.inferred = true
                out.append(consume pe)
            }
            count(.kprobes)
        case .markDirty:
            guard kprobesOn, let folio = e.u("folio") ?? e.u("page") else { return miss(e) }
            dirtyKprobesSeen = true
            let pe = event(name: name, kind: .markDirty, from: e, page: .pointer(folio), mapping: e.u("mapping"), index: e.u("index"))
            readPageFields(e, into: pe)
            pe.dirtySource = dirtySource(e)
            if let d = dirtyCalls[e.pid], e.timestampNs &- d.startNs < wrapperWindowNs {
                pe.call = d.api
                pe.bio = d.bio
                if !pe.hasStack { pe.stack = d.stack }
                // The pages a read bio dirties at submission are the pages it holds references on.
                if d.source == .bioSubmit, let bio = d.bio, bioPages[bio]?.last != .pointer(folio) {
                    bioPages[bio, default: []].append(.pointer(folio))
                }
            }
            if name == "set_page_dirty_lock" {
                // folio_mark_dirty of the same page follows inside; let it carry the evidence.
                dirtyCalls[e.pid] = DirtyContext(source: pe.dirtySource ?? .other, api: pe.call ?? name, bio: pe.bio,
                                                 stack: pe.stack, startNs: e.timestampNs)
                return
            }
            out.append(consume pe)
            count(.kprobes)
        case .folioState:
            guard kprobesOn, let folio = e.u("folio") else { return miss(e) }
            let kind: PageEventKind
            switch name {
            case "folio_mkclean": kind = .mkclean
            case "folio_clear_dirty_for_io":
                kind = .cleanForIO
                dirtyCalls[e.pid] = DirtyContext(source: .writeback, api: name, bio: nil, stack: [], startNs: e.timestampNs)
            case "__folio_start_writeback": kind = .writebackStart
            case "folio_end_writeback": kind = .writebackEnd
            default: kind = .freed
            }
            let pe = event(name: name, kind: kind, from: e, page: .pointer(folio), mapping: e.u("mapping"), index: e.u("index"))
            readPageFields(e, into: pe)
            out.append(consume pe)
            count(.kprobes)
        case .notifierRange:
            guard kprobesOn, let mm = e.u("mm"), let start = e.u("start"), let end = e.u("end") else { return }
            let pe = event(name: name, kind: name.hasSuffix("start") ? .invalidateStart : .invalidateEnd, from: e,
                           page: .range(mm: mm, start: start, end: end))
            pe.detail = e.u("event").map { "event \($0)" }
            out.append(consume pe)
            count(.kprobes)

        // Tracepoints: writeback:*, filemap:*, ext4:*, migrate:*.
        case .filemapAdd, .filemapDelete:
            guard tracepointsOn, let pfn = file.pfn else { return miss(e) }
            let pe = event(name: name, kind: handler == .filemapAdd ? .cacheAdd : .cacheDelete, from: e,
                           page: .pfn(pfn), index: file.index)
            pe.ino = file.ino
            pe.dev = file.dev
            out.append(consume pe)
            count(.tracepoints)
        case .dirtyTracepoint:
            guard tracepointsOn, !dirtyKprobesSeen else { return }
            guard let ino = file.ino, let index = file.index else { return miss(e) }
            let pe = event(name: name, kind: .markDirty, from: e, page: .file(ino: ino, index: index), index: index)
            pe.ino = ino
            pe.dirtySource = dirtySource(e)
            if pe.dirtySource == .bioCompletion || pe.dirtySource == .bioSubmit { pe.driver = Attribution(driver: "direct-io", basis: .stack) }
            out.append(consume pe)
            count(.tracepoints)
        case .waitWriteback:
            guard tracepointsOn, let ino = file.ino, let index = file.index else { return }
            let pe = event(name: name, kind: .waitWriteback, from: e, page: .file(ino: ino, index: index), index: index)
            pe.ino = ino
            out.append(consume pe)
            count(.tracepoints)
        case .writepages:
            // The inode's dirty pages in [range_start, range_end] are cleaned for writeback.
            guard tracepointsOn, let ino = file.ino, let start = x.rangeStart, let end = x.rangeEnd else { return miss(e) }
            let pe = event(name: name, kind: .cleanRange, from: e, page: .file(ino: ino, index: start / 4096), index: start / 4096)
            pe.ino = ino
            pe.lastIndex = end / 4096
            out.append(consume pe)
            count(.tracepoints)
        case .migrate:
            guard tracepointsOn else { return }
            let failed = e.u("failed") ?? e.u("nr_failed") ?? 0
            guard failed > 0 else { return }
            let pe = event(name: name, kind: .migrateFail, from: e, page: .pfn(0), refs: Int(failed))
            pe.detail = e.migrateReason
            out.append(consume pe)
            count(.tracepoints)
        case .pageRef:
            // CONFIG_DEBUG_PAGE_REF: a pin is a +GUP_PIN_COUNTING_BIAS step on an order-0 page.
            guard pageRefOn, let pfn = e.u("pfn"), let val = e.s("val") else { return miss(e) }
            let pe: PageEvent
            if val == Self.pinBias || val == -Self.pinBias {
                pe = event(name: name, kind: val > 0 ? .pin : .unpin, from: e, page: .pfn(pfn))
            } else {
                pe = event(name: name, kind: .refMod, from: e, page: .pfn(pfn), refs: Int(val))
            }
            pe.refcount = e.s("count")
            pe.pageFlags = e.u("flags")
            pe.mapping = e.u("mapping")
            pe.driver = Attribution.attribute(stack: e.stack, caller: pe.caller, comm: e.comm)
            out.append(consume pe)
            count(.pageRef)
        // KVM (kprobes): hva_to_pfn takes FOLL_GET references and KVM drops them with
        // kvm_release_pfn_clean once the page is in its page tables (the mmu notifier, not a
        // reference, keeps it coherent after that); kvm_set_pfn_dirty is a secondary MMU dirtying.
        case .kvmInvalidate:
            guard kprobesOn else { return }
            if name.hasSuffix("_start") { kvmInvalidating.insert(e.pid) } else { kvmInvalidating.remove(e.pid) }
        case .kvmRelease:
            guard kprobesOn else { return }
            let page: PageRef
            if let pfn = e.u("pfn") {
                page = .pfn(pfn)
                lastKvmRelease[e.pid] = e.timestampNs
            } else if let p = e.u("page") {
                // kvm_release_pfn_clean calls kvm_release_page_clean: one release, not two.
                if let t = lastKvmRelease[e.pid], e.timestampNs &- t < 50_000 { return }
                page = .pointer(p)
            } else { return miss(e) }
            let pe = event(name: name, kind: .put, from: e, page: page)
            pe.call = name
            out.append(consume pe)
            count(.kprobes)
        case .kvmDirty:
            guard kprobesOn else { return }
            let page: PageRef
            if let pfn = e.u("pfn") { page = .pfn(pfn) } else if let p = e.u("page") { page = .pointer(p) } else { return miss(e) }
            let pe = event(name: name, kind: .markDirty, from: e, page: page)
            let inNotifier = e.stack.contains { Self.notifierFrames.contains($0.symbol) }
            pe.dirtySource = inNotifier || (e.stack.isEmpty && kvmInvalidating.contains(e.pid)) ? .notifier : .other
            pe.driver = Attribution(driver: "kvm", basis: e.stack.isEmpty ? .caller : .stack)
            out.append(consume pe)
            count(.kprobes)
        case .gupEntry, .gupReturn, .dirtyWrapperReturn:
            return
        }
    }

    /// A page-cache page's fields, read once per event for identity and the page event.
    struct FileFields {
        var pfn: UInt64?
        var ino: UInt64?
        var index: UInt64?
        var dev: UInt64?
    }

    /// Spent page events to refill (`recycle`) instead of allocating one per event.
    private var spare: [PageEvent] = []

    private mutating func event(name: String, kind: PageEventKind, from e: RawEvent, page: PageRef, refs: Int = 1,
                                gupFlags: UInt64? = nil, mapping: UInt64? = nil, index: UInt64? = nil) -> PageEvent {
        guard let pe = spare.popLast() else {
            return PageEvent(name: name, kind: kind, from: e, page: page, refs: refs, gupFlags: gupFlags, mapping: mapping, index: index)
        }
        pe.fill(name: name, kind: kind, from: e, page: page, refs: refs, gupFlags: gupFlags, mapping: mapping, index: index)
        return pe
    }

    /// Takes back page events the caller is done with; those nobody else holds are refilled.
    public mutating func recycle(_ events: inout [PageEvent]) {
        while var e = events.popLast() {
            if spare.count < 64, isKnownUniquelyReferenced(&e) { spare.append(consume e) }
        }
    }

    /// GUP_PIN_COUNTING_BIAS: what one FOLL_PIN adds to an order-0 page's refcount.
    static let pinBias: Int64 = 1024

    /// Who dirtied, from the event's own stack, else from the call the task is in.
    private func dirtySource(_ e: RawEvent) -> DirtySource {
        // Most dirtyings have no stack: asking first spares reading (copying out) an empty one.
        if !e.lazyStack.isEmpty, let s = Self.dirtySource(fromStack: e.stack) { return s }
        if !gupCalls.isEmpty, gupCalls[e.pid] != nil { return .gupFault }
        if !dirtyCalls.isEmpty, let d = dirtyCalls[e.pid], e.timestampNs &- d.startNs < wrapperWindowNs { return d.source }
        return .other
    }

    /// Dirty source told by a kernel stack; nil when no frame tells. The whole stack is read and
    /// the most specific source wins: a GUP reference holder's frame (bio completion, unpin) is
    /// deeper than the `page_mkwrite`/`handle_mm_fault` frames a GUP-time fault also shows.
    static func dirtySource(fromStack stack: [StackFrame]) -> DirtySource? {
        var best: DirtySource?
        var bestRank = Int.max
        for f in stack {
            guard let s = stackSources[f.symbol], let rank = sourcePriority.firstIndex(of: s), rank < bestRank else { continue }
            best = s
            bestRank = rank
        }
        return best
    }

    /// Frames of an mmu-notifier invalidation (a secondary MMU's callback runs under them).
    static let notifierFrames: Set<String> = [
        "kvm_mmu_notifier_invalidate_range_start", "__mmu_notifier_invalidate_range_start",
        "mmu_notifier_invalidate_range_start", "kvm_unmap_gfn_range",
    ]

    static let sourcePriority: [DirtySource] = [.bioCompletion, .bioSubmit, .pinRelease, .notifier, .gupFault, .writeback, .other]

    static let stackSources: [String: DirtySource] = [
        "__bio_release_pages": .bioCompletion, "bio_dirty_fn": .bioCompletion, "bio_release_pages": .bioCompletion,
        "bio_check_pages_dirty": .bioCompletion, "bio_set_pages_dirty": .bioSubmit,
        "unpin_user_pages_dirty_lock": .pinRelease, "unpin_user_page_range_dirty_lock": .pinRelease, "unpin_folios": .pinRelease,
        "kvm_set_pfn_dirty": .notifier, "kvm_release_pfn_dirty": .notifier, "kvm_mmu_notifier_invalidate_range_start": .notifier,
        "__get_user_pages": .gupFault, "faultin_page": .gupFault, "get_user_pages_remote": .gupFault,
        "__gup_longterm_locked": .gupFault,
        "folio_clear_dirty_for_io": .writeback, "clear_page_dirty_for_io": .writeback,
        "folio_redirty_for_writepage": .writeback, "redirty_page_for_writepage": .writeback,
        "do_page_mkwrite": .other, "do_wp_page": .other, "wp_page_shared": .other, "fault_dirty_shared_page": .other,
        "handle_mm_fault": .other, "generic_perform_write": .other, "iomap_write_iter": .other,
        "mark_buffer_dirty": .other, "block_dirty_folio": .other,
    ]

    /// struct page flags/refcount/pincount read by the kprobe (`+0`, `+52`, `+88` in the 6.1 set).
    private func readPageFields(_ e: RawEvent, into pe: PageEvent) {
        pe.pageFlags = e.u("pflags") ?? e.u("fflags")
        pe.refcount = e.s("refcount")
        // `order` and `pincount` live in the first tail page: meaningful only for a large folio.
        if let flags = pe.pageFlags, let layout = PageFlagLayout.forKernel(kernel), flags & layout.head != 0 {
            pe.order = e.s("order").map { Int($0) }
            pe.pincount = e.s("pincount")
        }
    }

    private func isPin(_ flags: UInt64?) -> Bool {
        guard let flags, let foll else { return false }
        return foll.decode(flags).flags.contains(.pin)
    }

    private mutating func miss(_ e: RawEvent) {
        anomalies.count("\(e.name): expected fields missing", .error, at: e.locator.description)
    }

    private mutating func count(_ profile: Profile) { consumedByProfile[profile.ordinal] += 1 }
}

/// struct page flag bits PinScope reads (enum pageflags). Only kernels whose order was read.
public struct PageFlagLayout: Sendable {
    public let head: UInt64
    public let swapBacked: UInt64
    public let dirty: UInt64
    public let writeback: UInt64

    /// 5.10–6.11 x86_64 (include/linux/page-flags.h, Debian 6.1): PG_dirty 3, PG_writeback 15,
    /// PG_head 16, PG_swapbacked 19. 6.12 removed PG_error and shifted them.
    static let v5_10 = PageFlagLayout(head: 1 << 16, swapBacked: 1 << 19, dirty: 1 << 3, writeback: 1 << 15)

    public static func forKernel(_ v: KernelVersion?) -> PageFlagLayout? {
        guard let v, v >= KernelVersion(5, 10, 0), v < KernelVersion(6, 12, 0) else { return nil }
        return v5_10
    }
}

extension RawEvent {
    /// A field as an unsigned integer (binary fields, or text printed as decimal or 0x-hex).
    func u(_ name: String) -> UInt64? { unsignedField(named: name) }
    func s(_ name: String) -> Int64? { self[field: name]?.signedValue }

    /// The inode of a `filemap:` event as the kernel's text prints it, `ino %lx` (the binary
    /// format's `i_ino`).
    var filemapPrintedIno: UInt64? { payloadWord("ino", { parseUnsigned($0, radix: 16) }) }
    /// The device of a `filemap:` event as the text prints it, `dev %d:%d` (the binary format's
    /// `s_dev`), as a kernel dev_t (major << 20 | minor).
    var filemapPrintedDev: UInt64? {
        payloadWord("dev") { word in
            // `major:minor` (or `major,minor`): two non-empty parts between the separators.
            var first: Range<Int>?, second: Range<Int>?
            var start = 0
            for i in 0...word.count where i == word.count || word[i] == 0x3A || word[i] == 0x2C {
                if i > start {
                    guard second == nil else { return nil }
                    if first == nil { first = start..<i } else { second = start..<i }
                }
                start = i + 1
            }
            guard let first, let second, let major = parseUnsigned(UnsafeBufferPointer(rebasing: word[first]), radix: 10),
                  let minor = parseUnsigned(UnsafeBufferPointer(rebasing: word[second]), radix: 10) else { return nil }
            return major << 20 | minor
        }
    }
    /// `reason` of `migrate:mm_migrate_pages` (a string in text, an enum number in binary).
    var migrateReason: String? {
        if case .string(let s)? = self[field: "reason"] { return s }
        if let printed = payloadAssignment("reason") { return String(printed) }
        if let r = u("reason") { return "reason \(r)" }
        return payloadWord("reason") { String(decoding: $0, as: UTF8.self) }
    }

    /// `parse` of the bytes of the word after `key ` in a text payload printed as `key value`
    /// pairs (ext4, filemap), read without making strings.
    func payloadWord<T>(_ key: String, _ parse: (UnsafeBufferPointer<UInt8>) -> T?) -> T? {
        withPayloadBytes { chars -> T? in
            guard let (start, end) = Self.wordSpan(after: key, in: chars) else { return nil }
            return parse(UnsafeBufferPointer(rebasing: chars[start..<end]))
        } ?? nil
    }

    /// Byte offsets of the word after `key ` (a whole word) in `chars`.
    private static func wordSpan(after key: String, in chars: UnsafeBufferPointer<UInt8>) -> (Int, Int)? {
        var key = key
        return key.withUTF8 { k in
            // From word start to word start (the first byte and each one after a space).
            var i = 0
            while i + k.count < chars.count {
                if chars[i + k.count] == 0x20 && UnsafeBufferPointer(rebasing: chars[i..<(i + k.count)]).elementsEqual(k) {
                    let start = i + k.count + 1
                    var end = start
                    while end < chars.count && chars[end] != 0x20 { end += 1 }
                    return (start, end)
                }
                while i < chars.count && chars[i] != 0x20 { i += 1 }
                i += 1
            }
            return nil
        }
    }

    /// The value after `key=` in a printed payload (`a=1 b=two`).
    func payloadAssignment(_ key: String) -> Substring? {
        guard let payload else { return nil }
        for word in payload.split(separator: " ") where word.hasPrefix(key) {
            let rest = word.dropFirst(key.count)
            if rest.first == "=" { return rest.dropFirst() }
        }
        return nil
    }

    func payloadNumber(_ key: String) -> UInt64? { payloadWord(key) { parseKernelInteger($0) } }
}
