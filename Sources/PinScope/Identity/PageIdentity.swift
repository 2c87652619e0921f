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
    // Looked up for nearly every event: one-word hash tables, not SipHash dictionaries.
    private var fileToPfn = HashTable<FileKey, UInt64>(minimumCapacity: 4096)
    private var pfnToFile = HashTable<UInt64, (dev: UInt64?, file: FileKey)>(minimumCapacity: 4096)
    private var mappingToIno = HashTable<UInt64, UInt64>()
    private var inoDev = HashTable<UInt64, UInt64>()
    /// The last folio kprobe per CPU: (pointer, mapping, index, ts).
    private var lastFolio = DenseTable<(ptr: UInt64, mapping: UInt64, index: UInt64, ts: UInt64)>()
    /// The last writeback_dirty_folio per CPU: (ino, index, ts).
    private var lastDirtied = DenseTable<(ino: UInt64, index: UInt64, ts: UInt64)>()
    private let tableLimit = 1 << 20

    struct FileKey: TableKey, Sendable {
        var ino: UInt64
        var index: UInt64
        var word: UInt64 { ino &* 0x9e37_79b9_7f4a_7c15 ^ index }
    }

    public init() {}

    /// The canonical key for a page: its pfn whenever the trace so far can tell it.
    public func resolve(_ ref: PageRef, mapping: UInt64? = nil, index: UInt64? = nil) -> PageRef {
        switch ref {
        case .pointer(let p):
            if let pfn = pfn(ofPointer: p) { return .pfn(pfn) }
            if let mapping, let index, let ino = mappingToIno[mapping], let pfn = fileToPfn[FileKey(ino: ino, index: index)] {
                return .pfn(pfn)
            }
            return ref
        case .file(let ino, let index):
            return fileToPfn[FileKey(ino: ino, index: index)].map { .pfn($0) } ?? ref
        case .pfn, .range:
            return ref
        }
    }

    /// Starts loading where `resolve` will look (ino, index) up.
    func prefetch(ino: UInt64, index: UInt64) { fileToPfn.prefetch(FileKey(ino: ino, index: index)) }
    /// Starts loading where the page cache's entry of `pfn` is kept.
    func prefetch(pfn: UInt64) { pfnToFile.prefetch(pfn) }
    /// The pfn of (ino, index) when its slot is cached and holds it (for prefetching only).
    func pfnGuess(ino: UInt64, index: UInt64) -> UInt64? { fileToPfn.valueAtHome(FileKey(ino: ino, index: index)) }

    /// The `struct page *` of a pfn, once calibrated.
    public func pointer(ofPfn pfn: UInt64) -> UInt64? { vmemmapBase.map { $0 &+ pfn &* structPageSize } }

    /// What the page cache said of a pfn: (dev, ino, index).
    public func file(ofPfn pfn: UInt64) -> (dev: UInt64?, ino: UInt64, index: UInt64)? {
        pfnToFile[pfn].map { ($0.dev, $0.file.ino, $0.file.index) }
    }

    /// The inode behind an address_space pointer, once tied by events.
    public func ino(ofMapping mapping: UInt64) -> UInt64? { mappingToIno[mapping] }
    public func dev(ofIno ino: UInt64) -> UInt64? { inoDev[ino] }

    /// The pfn a pointer names, once calibrated.
    public func pfn(ofPointer p: UInt64) -> UInt64? {
        guard let base = vmemmapBase, p >= base, (p - base) % structPageSize == 0 else { return nil }
        return (p - base) / structPageSize
    }

    /// `mm_filemap_add_to_page_cache`: (ino, index) is this pfn now.
    mutating func cacheAdded(pfn: UInt64, ino: UInt64, index: UInt64, dev: UInt64?) {
        let key = FileKey(ino: ino, index: index)
        if fileToPfn.count < tableLimit {
            fileToPfn[key] = pfn
            pfnToFile[pfn] = (dev, key)
        }
        if let dev, inoDev.count < tableLimit { inoDev[ino] = dev }
    }

    /// `mm_filemap_delete_from_page_cache`: (ino, index) names no pfn any more.
    mutating func cacheDeleted(ino: UInt64, index: UInt64) {
        if let pfn = fileToPfn.removeValue(forKey: FileKey(ino: ino, index: index)) { pfnToFile[pfn] = nil }
    }

    /// A folio kprobe: a folio pointer with its (mapping, index).
    mutating func folioSeen(_ ptr: UInt64, mapping: UInt64, index: UInt64, cpu: Int, at ts: UInt64) {
        lastFolio[cpu] = (ptr, mapping, index, ts)
        // The tracepoint may come just before the probe on the same CPU.
        if let d = lastDirtied[cpu], d.index == index, ts &- d.ts < 1_000_000, mappingToIno.count < tableLimit {
            mappingToIno[mapping] = d.ino
        }
        if let ino = mappingToIno[mapping] { calibrate(pointer: ptr, file: FileKey(ino: ino, index: index)) }
    }

    /// `writeback_dirty_folio` / `_page`: (ino, index), next to the folio kprobe of the same page.
    mutating func dirtied(ino: UInt64, index: UInt64, cpu: Int, at ts: UInt64) {
        lastDirtied[cpu] = (ino, index, ts)
        guard let last = lastFolio[cpu], last.index == index, ts &- last.ts < 1_000_000 else { return }
        if mappingToIno.count < tableLimit { mappingToIno[last.mapping] = ino }
        calibrate(pointer: last.ptr, file: FileKey(ino: ino, index: index))
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
