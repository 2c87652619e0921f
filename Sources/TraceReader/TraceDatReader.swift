import CTraceEvent
import CTraceEventPrint
import HeapModule

/// Which event types a reader decodes (`TraceDatReader.onlyEvents`): the others are skipped in
/// their CPU's stream, before the merge across CPUs, with the stacks recorded right after them.
final class RecordFilter {
    let names: Set<String>
    private unowned let dat: TraceDatFile
    /// `ftrace:kernel_stack`'s type id (-1: none): a stack goes with the event before it.
    let stackID: Int
    /// Per type id: 0 not looked up yet, 1 wanted, 2 skipped.
    private var wanted = [UInt8](repeating: 0, count: 1 << 16)

    init(names: Set<String>, dat: TraceDatFile, stackID: Int) {
        self.names = names
        self.dat = dat
        self.stackID = stackID
    }

    @inline(__always)
    func skips(_ id: Int) -> Bool {
        if wanted[id] == 0 { wanted[id] = isWanted(id) ? 1 : 2 }
        return wanted[id] == 2
    }

    private func isWanted(_ id: Int) -> Bool {
        guard let n = dat.eventNames(id: Int32(id)) else { return false }
        return id == stackID || names.contains(n.name)
    }
}

/// One CPU's ring-buffer pages, read a block at a time (a run of raw pages, or one decompressed
/// chunk) and walked record by record with libtraceevent's kbuffer.
/// - Complexity: memory is one block (at most 64 pages or one chunk) per CPU, whatever the trace length.
final class CPUStream {
    let cpu: Int
    private let dat: TraceDatFile
    /// This CPU's own descriptor of the file (read-ahead works per descriptor).
    private let file: RandomAccessFile
    private let pageSize: Int
    private let compressed: Bool
    private let kbuf: OpaquePointer
    private let commitSize: Int
    /// Next file offset to read from, and where this CPU's data ends.
    private var fileOffset: UInt64
    private let end: UInt64
    private var chunksLeft: Int = 0
    /// The current block of whole pages; slack after it keeps corrupt length fields in bounds.
    private var block: UnsafeMutableRawPointer
    private var blockCapacity: Int
    private var blockPages = 0
    private var pageIndex = 0
    /// File offset of the current page (for raw data) or of its chunk (compressed).
    private var blockFileOffset: UInt64 = 0
    private var pageLoaded = false
    private var firstOfPage = false
    private var compressedScratch: [UInt8] = []
    private static let slack = 1 << 17
    private(set) var finished = false

    /// The current record, at a stable address for libtraceevent calls.
    let record: UnsafeMutablePointer<tep_record>
    var timestamp: UInt64 = 0
    /// With a filter: the current record's type id, and whether records were skipped on this CPU
    /// since the record before it (no stack can follow the events before those).
    private(set) var typeID: Int32 = -1
    var skippedBefore = false
    /// Records skipped undecoded, and the first and last of their timestamps.
    private(set) var skipped = 0
    private(set) var firstSkippedNs = UInt64.max
    private(set) var lastSkippedNs: UInt64 = 0
    /// The last record read here was skipped: a stack after it goes with it.
    private var skippedLast = false
    /// Set by the reader before reading: records it does not want are skipped here. Unretained:
    /// the reader owns it, and taking a reference per record cost a retain and a release.
    private var filter: Unmanaged<RecordFilter>?

    init(dat: TraceDatFile, data: TraceDatFile.CPUData, pageSize: Int, compressed: Bool) {
        self.cpu = data.cpu
        self.dat = dat
        file = dat.file.sequentialTwin() ?? dat.file
        self.pageSize = pageSize
        self.compressed = compressed
        let longSize = tep_get_header_page_size(dat.tep) == 4 ? KBUFFER_LSIZE_4 : KBUFFER_LSIZE_8
        kbuf = kbuffer_alloc(longSize, dat.bigEndian ? KBUFFER_ENDIAN_BIG : KBUFFER_ENDIAN_LITTLE)
        commitSize = tep_get_header_page_size(dat.tep) == 4 ? 4 : 8
        if tep_is_old_format(dat.tep) { kbuffer_set_old_format(kbuf) }
        fileOffset = data.offset
        blockCapacity = pageSize * 64
        block = UnsafeMutableRawPointer.allocate(byteCount: blockCapacity + Self.slack, alignment: 16)
        block.initializeMemory(as: UInt8.self, repeating: 0, count: blockCapacity + Self.slack)
        if compressed {
            end = data.offset &+ data.size &+ 4
            if data.size == 0 {
                finished = true
            } else if let bytes = try? file.readExactly(at: fileOffset, count: 4, what: "chunk count") {
                var c = ByteCursor(bytes, base: fileOffset, file: dat.path, bigEndian: dat.bigEndian)
                chunksLeft = Int((try? c.readInteger(UInt32.self, "chunk count")) ?? 0)
                fileOffset += 4
            } else {
                dat.warn(fileOffset, "CPU \(cpu): truncated: expected a compressed chunk count")
                finished = true
            }
        } else {
            var stop = data.offset &+ data.size
            if stop > dat.file.size || stop < data.offset {
                dat.warn(dat.file.size, "CPU \(cpu): truncated flyrecord data: expected \(data.size) bytes at offset \(data.offset), the file ends at \(dat.file.size); reading the whole pages present")
                stop = data.offset > dat.file.size ? data.offset : dat.file.size
            }
            end = stop
        }
        record = UnsafeMutablePointer<tep_record>.allocate(capacity: 1)
        record.initialize(to: tep_record())
        record.pointee.cpu = Int32(cpu)
        record.pointee.ref_count = 1
        record.pointee.locked = 1
        if !finished { advance() }
    }

    deinit {
        kbuffer_free(kbuf)
        block.deallocate()
        record.deallocate()
    }

    /// Loads the next block of pages; false at the end of this CPU's data.
    private func loadBlock() -> Bool {
        if compressed {
            guard chunksLeft > 0 else { return false }
            chunksLeft -= 1
            let at = fileOffset
            guard let head = try? file.readExactly(at: at, count: 8, what: "chunk header") else {
                dat.warn(at, "CPU \(cpu): truncated compressed data: expected a chunk header (\(chunksLeft + 1) chunks left)")
                return false
            }
            var c = ByteCursor(head, base: at, file: dat.path, bigEndian: dat.bigEndian)
            let csize = Int((try? c.readInteger(UInt32.self, "compressed size")) ?? 0)
            let usize = Int((try? c.readInteger(UInt32.self, "uncompressed size")) ?? 0)
            guard usize > 0, usize <= 1 << 28, csize <= 1 << 28, usize % pageSize == 0 else {
                dat.warn(at, "CPU \(cpu): corrupt chunk header (compressed \(csize), uncompressed \(usize) bytes): expected a whole number of \(pageSize)-byte pages")
                return false
            }
            let n = file.read(at: at + 8, count: csize, into: &compressedScratch)
            guard n == csize else {
                dat.warn(at + 8, "CPU \(cpu): truncated compressed chunk: expected \(csize) bytes, found \(n)")
                return false
            }
            guard let plain = compressedScratch.withUnsafeBytes({
                dat.decompressor.decompress(UnsafeRawBufferPointer(rebasing: $0[0..<csize]), expected: usize)
            }) else {
                dat.warn(at + 8, "CPU \(cpu): corrupt \(dat.decompressorName) chunk: does not decompress to \(usize) bytes")
                return false
            }
            ensureCapacity(usize)
            plain.withUnsafeBytes { block.copyMemory(from: $0.baseAddress!, byteCount: usize) }
            blockPages = usize / pageSize
            blockFileOffset = at
            fileOffset = at + 8 + UInt64(csize)
        } else {
            guard fileOffset < end else { return false }
            let want = Int(min(UInt64(blockCapacity), end - fileOffset))
            let pages = want / pageSize
            guard pages > 0 else {
                dat.warn(fileOffset, "CPU \(cpu): truncated page: expected \(pageSize) bytes, found \(want)")
                return false
            }
            let n = file.read(at: fileOffset, count: pages * pageSize, toPointer: block)
            guard n == pages * pageSize else {
                dat.warn(fileOffset + UInt64(n), "CPU \(cpu): truncated data: read \(n) of \(pages * pageSize) bytes")
                blockPages = n / pageSize
                fileOffset = end
                blockFileOffset = fileOffset
                return blockPages > 0
            }
            blockPages = pages
            blockFileOffset = fileOffset
            fileOffset += UInt64(n)
        }
        pageIndex = 0
        return true
    }

    private func ensureCapacity(_ size: Int) {
        guard size > blockCapacity else { return }
        block.deallocate()
        blockCapacity = size
        block = UnsafeMutableRawPointer.allocate(byteCount: size + Self.slack, alignment: 16)
        block.initializeMemory(as: UInt8.self, repeating: 0, count: size + Self.slack)
    }

    /// Loads the next page that holds a sane header; false at the end of the data.
    private func loadPage() -> Bool {
        while true {
            if pageIndex >= blockPages {
                guard loadBlock() else { return false }
            }
            let page = block + pageIndex * pageSize
            pageIndex += 1
            if kbuffer_load_subbuffer(kbuf, page) < 0 { continue }
            let size = Int(kbuffer_subbuffer_size(kbuf))
            // The sub-buffer header is a u64 timestamp and the commit word (header_page format).
            if size + 8 + commitSize > pageSize {
                dat.warn(pageOffset, "CPU \(cpu): corrupt page header: commit size \(size) exceeds the \(pageSize)-byte page; page skipped")
                dat.countCorruptPage()
                continue
            }
            return true
        }
    }

    /// File offset of the current page (for compressed data: of its chunk).
    var pageOffset: UInt64 {
        compressed ? blockFileOffset : blockFileOffset + UInt64((pageIndex - 1) * pageSize)
    }

    /// Filters from now on; the current record too.
    func setFilter(_ f: RecordFilter) {
        filter = Unmanaged.passUnretained(f)
        if !finished, !take() { advance() }
    }

    /// Whether the filter lets the current record through; counts it as skipped when not.
    @inline(__always)
    private func take() -> Bool {
        guard let filter else { return true }
        typeID = tep_data_type(dat.tep, record)
        let id = Int(UInt16(truncatingIfNeeded: typeID))
        let (isStack, skips) = filter._withUnsafeGuaranteedRef { f in (id == f.stackID, f.skips(id)) }
        // A record after lost events is always decoded: it carries the loss.
        if record.pointee.missed_events == 0, skips || (isStack && skippedLast) {
            skippedLast = true
            skippedBefore = true
            skipped += 1
            firstSkippedNs = min(firstSkippedNs, timestamp)
            lastSkippedNs = max(lastSkippedNs, timestamp)
            return false
        }
        if !isStack { skippedLast = false }
        return true
    }

    /// Moves to the next record; sets `finished` at the end.
    func advance() {
        while true {
            if pageLoaded {
                var ts: UInt64 = 0
                if let data = kbuffer_read_event(kbuf, &ts) {
                    let size = Int(kbuffer_event_size(kbuf))
                    record.pointee.data = data
                    record.pointee.size = Int32(size)
                    // Only a page's first record can carry missed events.
                    record.pointee.missed_events = firstOfPage ? Int64(kbuffer_missed_events(kbuf)) : 0
                    firstOfPage = false
                    record.pointee.offset = pageOffset + UInt64(kbuffer_curr_offset(kbuf))
                    timestamp = dat.convertTimestamp(ts)
                    record.pointee.ts = timestamp
                    kbuffer_next_event(kbuf, nil)
                    if size <= 0 || size > pageSize {
                        dat.countCorruptRecord()
                        continue
                    }
                    if !take() { continue }
                    return
                }
                pageLoaded = false
            }
            guard loadPage() else {
                finished = true
                record.pointee.data = nil
                return
            }
            pageLoaded = true
            firstOfPage = true
        }
    }
}

/// Reads a trace.dat's events in time order across CPUs (a heap over per-CPU streams), like
/// `tracecmd_iterate_events`: ties go to the lower CPU.
public final class TraceDatReader: RawEventSource, EventFiltering {
    public let dat: TraceDatFile
    private var streams = ContiguousArray<CPUStream>()
    /// The same streams, unretained: reading one for every record from `streams` cost a retain
    /// and a release (`streams` owns them for the reader's life).
    private var streamRefs: [Unmanaged<CPUStream>] = []
    private var heap = Heap<HeapEntry>()
    private var current: Int = -1
    private let attachStacks: Bool
    private var decoder: EventDecoder
    public var info: TraceInfo { dat.info }
    public var anomalies: Anomalies {
        var a = dat.anomalies
        a.merge(decoder.anomalies)
        return a
    }
    public var warnings: [TraceWarning] { dat.warnings }

    struct HeapEntry: Comparable {
        var ts: UInt64
        var index: Int
        static func < (a: HeapEntry, b: HeapEntry) -> Bool { a.ts != b.ts ? a.ts < b.ts : a.index < b.index }
    }

    /// - Parameter attachStacks: attach each `kernel_stack` record to the event before it on its
    ///   CPU (as `RawEvent.stack`) instead of yielding it as an event of its own.
    public init(path: String, attachStacks: Bool = true) throws {
        dat = try TraceDatFile(path: path)
        self.attachStacks = attachStacks
        decoder = EventDecoder(dat: dat)
        if let top = dat.buffers.first(where: { $0.name == "" }) {
            for data in top.cpus where data.size > 0 {
                streams.append(CPUStream(dat: dat, data: data, pageSize: top.subBufferSize, compressed: top.compressed))
            }
        }
        for b in dat.buffers where b.name != "" {
            dat.countInstance(b.name)
        }
        streamRefs = streams.map { Unmanaged.passUnretained($0) }
        for (i, s) in streams.enumerated() where !s.finished {
            heap.insert(HeapEntry(ts: s.timestamp, index: i))
        }
    }

    /// The record the last `nextRecord()` returned is valid until the next call.
    /// - Complexity: O(log cpus) per record; no allocation.
    @inline(__always)
    public func nextRecord() -> UnsafeMutablePointer<tep_record>? {
        if current >= 0 {
            streamRefs[current]._withUnsafeGuaranteedRef { $0.advance() }
            requeueCurrent()
        }
        guard let top = heap.min else { return nil }
        current = top.index
        return streamRefs[current]._withUnsafeGuaranteedRef { $0.record }
    }

    /// Puts the current stream, moved on past its record, back in the heap by its next record's
    /// time (or drops it at its end); nothing is current after.
    private func requeueCurrent() {
        let (finished, ts) = streamRefs[current]._withUnsafeGuaranteedRef { ($0.finished, $0.timestamp) }
        if finished {
            _ = heap.removeMin()
        } else {
            heap.replaceMin(with: HeapEntry(ts: ts, index: current))
        }
        current = -1
    }

    /// Event type id of a record.
    @inline(__always)
    public func eventID(of record: UnsafeMutablePointer<tep_record>) -> Int32 {
        tep_data_type(dat.tep, record)
    }

    public func eventName(id: Int32) -> (system: String, name: String)? {
        decoder.names(id: id)
    }

    /// Prints the current record as `trace-cmd report` would (with `-R` when `raw`).
    public func reportLine(_ record: UnsafeMutablePointer<tep_record>, raw: Bool, nanoseconds: Bool = false) -> String {
        decoder.reportLine(record, timeMode: dat.timestampsInNanoseconds ? (nanoseconds ? 1 : 0) : 2, raw: raw)
    }

    /// When set, `next()` decodes only events with these names (and the stacks recorded right
    /// after them); the others are skipped undecoded, in their CPU's stream. Set before reading.
    public var onlyEvents: Set<String>? {
        didSet {
            guard let onlyEvents else { return }
            let f = RecordFilter(names: onlyEvents, dat: dat, stackID: stackID)
            filter = f
            heap = Heap()
            for (i, s) in streams.enumerated() {
                s.setFilter(f)
                if !s.finished { heap.insert(HeapEntry(ts: s.timestamp, index: i)) }
            }
        }
    }
    /// The streams' filter (they hold it unowned).
    private var filter: RecordFilter?
    /// Events whose payload is also rendered from their print format (`RawEvent.payload`), for
    /// symbolic values the binary record holds as numbers. Set before reading.
    public var printedEvents: Set<String> {
        get { decoder.printedEvents }
        set { decoder.printedEvents = newValue }
    }
    /// Records skipped undecoded because of `onlyEvents`.
    public var skippedRecords: Int { streams.reduce(0) { $0 + $1.skipped } }
    public var skippedSpan: ClosedRange<UInt64>? {
        guard skippedRecords > 0 else { return nil }
        return streams.map(\.firstSkippedNs).min()!...streams.map(\.lastSkippedNs).max()!
    }
    private lazy var stackID: Int = {
        for id in 0..<(1 << 16) where decoder.names(id: Int32(id)).map({ $0.name == "kernel_stack" && $0.system == "ftrace" }) ?? false {
            return id
        }
        return -1
    }()

    /// Spent events to refill (`recycle`).
    private var pool = EventPool()

    public func recycle(_ events: inout [RawEvent]) { pool.recycle(&events) }

    public func next() throws -> RawEvent? {
        guard let rec = nextRecord() else { return nil }
        let (cpu, typeID) = streamRefs[current]._withUnsafeGuaranteedRef { s in (s.cpu, filter == nil ? nil : s.typeID) }
        let event = decoder.decode(rec, cpu: cpu, typeID: typeID, into: pool.take())
        if attachStacks, !isStack(event.typeID) { attachFollowingStack(to: event) }
        return event
    }

    /// The interrupt context a decoded event was recorded in, from its own copy of the record.
    private func context(of event: RawEvent) -> UInt8? {
        event.withRecord { data, size in
            var r = tep_record()
            r.data = UnsafeMutableRawPointer(mutating: data)
            r.size = Int32(size)
            return IRQContext.of(flags: tep_data_flags(dat.tep, &r))
        }
    }

    private func isStack(_ typeID: Int32) -> Bool { typeID >= 0 && Int(UInt16(truncatingIfNeeded: typeID)) == stackID }

    /// The kernel records an event's stack right after the event, in the same CPU's buffer: when
    /// the next record there is a stack, it becomes the event's (`RawEvent.stack`). Done in the
    /// CPU's stream, before the merge across CPUs: joining them after it held every event behind
    /// the last one of an idle CPU until that CPU's next record came (and gave up after 64).
    /// A stack in another interrupt context than the event's is not its own (the event of an
    /// interrupt came between the event and its stack), and goes out alone. Moves the stream on
    /// and puts it back in the heap.
    private func attachFollowingStack(to event: RawEvent) {
        streamRefs[current]._withUnsafeGuaranteedRef { s in
            s.skippedBefore = false
            s.advance()
            // A stack after records skipped undecoded is theirs (and skipped with them, unless it
            // carries lost events: then it goes out on its own, as one with no event before it).
            guard !s.finished, !s.skippedBefore else { return }
            let id = filter == nil ? tep_data_type(dat.tep, s.record) : s.typeID
            guard isStack(id), IRQContext.same(context(of: event), IRQContext.of(flags: tep_data_flags(dat.tep, s.record))) else { return }
            let stack = decoder.decode(s.record, cpu: s.cpu, typeID: id, into: pool.take())
            event.lazyStack = stack.lazyStack
            pool.give(stack)
            s.advance()
        }
        requeueCurrent()
    }
}

extension TraceDatFile {
    func countCorruptPage() { recordedAnomalies.count("corrupt ring-buffer page skipped", .dataLoss) }
    func countCorruptRecord() { recordedAnomalies.count("corrupt record skipped", .dataLoss) }
    func countInstance(_ name: String) {
        recordedAnomalies.count("instance buffer not read (only the top buffer is)", .info, at: name)
    }
}
