import TraceReader

/// Joins the keys a page goes by. `struct page` pointers become pfns once the vmemmap base is
/// calibrated from events that tie a pointer to a pfn: a folio kprobe naming (mapping, index),
/// the `writeback_dirty_folio` tracepoint it fires next to naming (ino, index), and
/// `mm_filemap_add_to_page_cache` naming (ino, index, pfn). Nothing is assumed about KASLR.
/// - Complexity: memory follows page-cache pages seen (bounded tables), not trace length.
public struct PageIdentity: Sendable {
    /// sizeof(struct page) on 64-bit kernels.
    public var structPageSize: UInt64 = 64
    public private(set) var vmemmapBase: UInt64?
    /// Agreeing calibrations seen before the base was fixed.
    public private(set) var calibrations = 0
    private var candidate: UInt64?
    private var fileToPfn: [FileKey: UInt64] = [:]
    private var mappingToIno: [UInt64: UInt64] = [:]
    /// The last folio kprobe per CPU: (pointer, mapping, index, ts).
    private var lastFolio: [Int: (ptr: UInt64, mapping: UInt64, index: UInt64, ts: UInt64)] = [:]
    /// The last writeback_dirty_folio per CPU: (ino, index, ts).
    private var lastDirtied: [Int: (ino: UInt64, index: UInt64, ts: UInt64)] = [:]
    private let tableLimit = 1 << 20

    struct FileKey: Hashable { var ino: UInt64; var index: UInt64 }

    public init() {}

    /// The pfn a pointer names, once calibrated.
    public func pfn(ofPointer p: UInt64) -> UInt64? {
        guard let base = vmemmapBase, p >= base, (p - base) % structPageSize == 0 else { return nil }
        return (p - base) / structPageSize
    }

    mutating func observe(_ e: RawEvent) {
        switch e.name {
        case "mm_filemap_add_to_page_cache":
            guard let pfn = e.u("pfn"), let ino = e.filemapIno, let index = e.filemapIndex else { return }
            if fileToPfn.count < tableLimit { fileToPfn[FileKey(ino: ino, index: index)] = pfn }
        case "mm_filemap_delete_from_page_cache":
            guard let ino = e.filemapIno, let index = e.filemapIndex else { return }
            fileToPfn[FileKey(ino: ino, index: index)] = nil
        case "folio_mark_dirty", "folio_mkclean", "__folio_start_writeback", "folio_end_writeback", "folio_clear_dirty_for_io":
            guard let ptr = e.u("folio"), let mapping = e.u("mapping"), let index = e.u("index") else { return }
            lastFolio[e.cpu] = (ptr, mapping, index, e.timestampNs)
            // The tracepoint may come just before the probe on the same CPU.
            if let d = lastDirtied[e.cpu], d.index == index, e.timestampNs &- d.ts < 1_000_000, mappingToIno.count < tableLimit {
                mappingToIno[mapping] = d.ino
            }
            if let ino = mappingToIno[mapping] { calibrate(pointer: ptr, file: FileKey(ino: ino, index: index)) }
        case "writeback_dirty_folio", "writeback_dirty_page":
            guard let ino = e.u("ino"), let index = e.u("index") else { return }
            lastDirtied[e.cpu] = (ino, index, e.timestampNs)
            guard let last = lastFolio[e.cpu],
                  last.index == index, e.timestampNs &- last.ts < 1_000_000 else { return }
            if mappingToIno.count < tableLimit { mappingToIno[last.mapping] = ino }
            calibrate(pointer: last.ptr, file: FileKey(ino: ino, index: index))
        default:
            return
        }
    }

    private mutating func calibrate(pointer: UInt64, file: FileKey) {
        guard vmemmapBase == nil, let pfn = fileToPfn[file] else { return }
        let base = pointer &- pfn &* structPageSize
        if base == candidate {
            calibrations += 1
            if calibrations >= 3 { vmemmapBase = base }
        } else {
            candidate = base
            calibrations = 1
        }
    }
}
