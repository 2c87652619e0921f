import TraceReader

/// Maps raw events to PageEvents. Profiles know event names and field names; they know nothing
/// of bytes (the readers' job) nor of rules (the ledger's).
public struct Vocabulary {
    /// FOLL_* layout of the traced kernel; nil when unknown (flags are then kept raw).
    public let foll: FollFlagLayout?
    public private(set) var identity = PageIdentity()
    public private(set) var anomalies = Anomalies()
    /// Raw events mapped, by profile.
    public private(set) var consumed: [String: Int] = [:]

    public init(kernelRelease: String?) {
        foll = kernelRelease.flatMap { KernelVersion(release: $0) }.flatMap { FollFlagLayout.forKernel($0) }
    }

    /// Decodes GUP flags with the trace's kernel layout.
    public func follFlags(_ raw: UInt64?) -> FollFlags? {
        guard let raw, let foll else { return nil }
        return foll.decode(raw).flags
    }

    /// Maps one raw event to zero or more page events.
    public mutating func map(_ e: RawEvent, _ emit: (PageEvent) -> Void) {
        identity.observe(e)
        switch e.name {
        // PinScope's kprobe set (pinscope profiles --kprobes).
        case "try_grab_page", "try_grab_folio":
            guard let page = e.u("page") else { return miss(e) }
            let flags = e.u("flags")
            let refs = Int(e.s("refs") ?? 1)
            let kind: PageEventKind = isPin(flags) ? .pin : .get
            emit(PageEvent(kind: kind, from: e, page: .pointer(page), api: e.name, refs: refs, gupFlags: flags,
                           mapping: e.u("mapping"), index: e.u("index")))
            count("kprobes")
        case "gup_put_folio":
            guard let folio = e.u("folio") else { return miss(e) }
            let flags = e.u("flags")
            emit(PageEvent(kind: isPin(flags) ? .unpin : .put, from: e, page: .pointer(folio), api: e.name,
                           refs: Int(e.s("refs") ?? 1), gupFlags: flags, mapping: e.u("mapping"), index: e.u("index")))
            count("kprobes")
        case "folio_mkclean", "folio_clear_dirty_for_io", "__folio_start_writeback", "folio_end_writeback",
             "folio_mark_dirty", "set_page_dirty_lock":
            guard let folio = e.u("folio") ?? e.u("page") else { return miss(e) }
            let kind: PageEventKind
            switch e.name {
            case "folio_mkclean": kind = .mkclean
            case "folio_clear_dirty_for_io": kind = .cleanForIO
            case "__folio_start_writeback": kind = .writebackStart
            case "folio_end_writeback": kind = .writebackEnd
            default: kind = .markDirty
            }
            emit(PageEvent(kind: kind, from: e, page: .pointer(folio), api: e.name, mapping: e.u("mapping"), index: e.u("index")))
            count("kprobes")
        // Tracepoints (writeback:*, filemap:*).
        case "mm_filemap_add_to_page_cache", "mm_filemap_delete_from_page_cache":
            guard let pfn = e.u("pfn") else { return miss(e) }
            emit(PageEvent(kind: e.name.hasSuffix("add_to_page_cache") ? .cacheAdd : .cacheDelete, from: e,
                           page: .pfn(pfn), api: e.name, index: e.filemapIndex))
            count("tracepoints")
        case "writeback_dirty_folio", "writeback_dirty_page":
            guard let ino = e.u("ino"), let index = e.u("index") else { return miss(e) }
            emit(PageEvent(kind: .markDirty, from: e, page: .file(dev: nil, ino: ino, index: index), api: e.name, index: index))
            count("tracepoints")
        case "folio_wait_writeback", "wait_on_page_writeback":
            guard let ino = e.u("ino"), let index = e.u("index") else { return miss(e) }
            emit(PageEvent(kind: .waitWriteback, from: e, page: .file(dev: nil, ino: ino, index: index), api: e.name, index: index))
            count("tracepoints")
        default:
            return
        }
    }

    private func isPin(_ flags: UInt64?) -> Bool {
        follFlags(flags)?.contains(.pin) ?? false
    }

    private mutating func miss(_ e: RawEvent) {
        anomalies.count("\(e.name): expected fields missing", .error, at: e.locator.description)
    }

    private mutating func count(_ profile: String) { consumed[profile, default: 0] += 1 }
}

extension RawEvent {
    /// A field as an unsigned integer (binary fields, or text printed as decimal or 0x-hex).
    func u(_ name: String) -> UInt64? { self[field: name]?.unsignedValue }
    func s(_ name: String) -> Int64? { self[field: name]?.signedValue }

    /// The inode of a `filemap:` event (`i_ino` in the binary format, `ino` elsewhere).
    var filemapIno: UInt64? { u("i_ino") ?? u("ino") }
    /// The page index of a `filemap:` event: `index`, or the byte offset `ofs` in 4 KiB pages.
    var filemapIndex: UInt64? { u("index") ?? u("ofs").map { $0 / 4096 } }
}
