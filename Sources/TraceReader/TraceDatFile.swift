import CTraceEvent
import Dispatch
import Synchronization

/// kallsyms parsed by libtraceevent into a handle of its own, on a background thread, when stacks
/// are first going to be read (`prefetch`) or read (`function(at:)`). A distribution kernel's
/// ~100,000 lines take ~45 ms of a core: a trace whose stacks nobody reads (no finding, no
/// dirtying told by its stack) never pays for it.
final class KernelSymbols: @unchecked Sendable {
    /// The handle and the parse's result: all the parsing thread holds. It must not hold the
    /// `KernelSymbols`, whose deinit waits for the parse: when the last reference went with the
    /// parsing block, that deinit would run on the parsing thread and wait for itself.
    private final class Parse: @unchecked Sendable {
        let tep = tep_alloc()
        /// Written by the parsing thread before it leaves `done`.
        var rc: Int32 = -1
    }
    private let parse = Parse()
    private let done = DispatchGroup()
    /// kallsyms, NUL-terminated, until the parse starts (then nil).
    private let text: Mutex<[UInt8]?>

    /// - Parameter text: kallsyms, NUL-terminated.
    init(_ text: [UInt8]) {
        self.text = Mutex(text)
    }

    deinit {
        done.wait()
        if let tep = parse.tep { tep_free(tep) }
    }

    /// Starts the parse in the background unless it started already.
    func prefetch() {
        // Entered under the lock: whoever finds the text taken also finds the parse in `done`.
        let done = self.done
        let taken = text.withLock { t -> [UInt8]? in
            guard let taken = t else { return nil }
            t = nil
            done.enter()
            return taken
        }
        guard let taken else { return }
        let parse = self.parse
        DispatchQueue.global().async {
            if let tep = parse.tep {
                parse.rc = taken.withUnsafeBufferPointer { buf in
                    buf.withMemoryRebound(to: CChar.self) { tep_parse_kallsyms(tep, $0.baseAddress!) }
                }
                // The first lookup sorts the table: do that here too.
                _ = tep_find_function(tep, 0)
            }
            done.leave()
        }
    }

    /// Whether libtraceevent parsed it (waits for the parse); nil when nothing needed it.
    var parsed: Bool? {
        if text.withLock({ $0 != nil }) { return nil }
        done.wait()
        return parse.rc == 0
    }

    /// The function an address is in, and its start (starts the parse if needed and waits for it).
    func function(at address: UInt64) -> (name: UnsafePointer<CChar>, start: UInt64)? {
        prefetch()
        done.wait()
        guard let tep = parse.tep, let name = tep_find_function(tep, address) else { return nil }
        return (name, tep_find_function_address(tep, address))
    }
}

/// The metadata of a trace-cmd `trace.dat` (file versions 6 and 7): everything before the
/// ring-buffer data, loaded into a libtraceevent handle. Event formats, the header page and
/// kallsyms/printk/cmdlines are parsed by libtraceevent; this type only walks the container.
public final class TraceDatFile {
    public static let magic: [UInt8] = [0x17, 0x08, 0x44] + Array("tracing".utf8)

    /// Where one CPU's ring-buffer pages are in the file.
    struct CPUData {
        var cpu: Int
        var offset: UInt64
        var size: UInt64
    }

    /// A trace buffer: the top one (name "") or an instance.
    struct Buffer {
        var name: String
        var clock: String?
        var subBufferSize: Int
        var cpus: [CPUData]
        /// v7: data is a sequence of compressed chunks.
        var compressed: Bool
    }

    /// Option and section ids (trace-cmd-private.h: one enum serves both).
    enum Option: UInt16 {
        case done = 0, date = 1, cpuStat = 2, buffer = 3, traceClock = 4, uname = 5, hook = 6
        case offset = 7, cpuCount = 8, version = 9, procMaps = 10, traceID = 11, timeShift = 12
        case guest = 13, tsc2nsec = 14, strings = 15, headerInfo = 16, ftraceEvents = 17
        case eventFormats = 18, kallsyms = 19, printk = 20, cmdlines = 21, bufferText = 22
    }

    let file: RandomAccessFile
    public let path: String
    public private(set) var info: TraceInfo
    let tep: OpaquePointer
    public private(set) var version = 0
    public private(set) var bigEndian = false
    public private(set) var longSize = 8
    public private(set) var pageSize = 4096
    var decompressor = BlockDecompressor.none
    var buffers: [Buffer] = []
    public internal(set) var warnings: [TraceWarning] = []
    /// What went wrong reading the file. Waits for the background kallsyms parse, whose
    /// failure is counted here (when something read a stack and so had it parsed).
    public var anomalies: Anomalies {
        guard let symbols, symbols.parsed == false else { return recordedAnomalies }
        // In the place it would have had, had the parse not run in the background.
        var a = Anomalies()
        for (i, e) in recordedAnomalies.entries.enumerated() {
            if i == kallsymsAnomalyIndex { a.count("kallsyms not parsed by libtraceevent", .error, at: path) }
            a.count(e.name, e.severity, by: e.count, at: e.firstSeen)
        }
        if kallsymsAnomalyIndex >= recordedAnomalies.entries.count {
            a.count("kallsyms not parsed by libtraceevent", .error, at: path)
        }
        return a
    }
    var recordedAnomalies = Anomalies()
    private var kallsymsAnomalyIndex = 0
    /// Nanoseconds added to every timestamp (the OFFSET option).
    var timestampOffset: Int64 = 0
    /// TSC2NSEC conversion: (mult, shift, offset).
    var tsc2nsec: (mult: UInt32, shift: UInt32, offset: UInt64)?
    public private(set) var cpuCount = 0
    /// Size of the file, or of the part of it the data claims to need.
    public var fileSize: UInt64 { file.size }

    public init(path: String) throws {
        self.path = path
        file = try RandomAccessFile(path: path)
        info = TraceInfo(file: path, format: .traceDat)
        guard let tep = tep_alloc() else { throw TraceError(file: path, "libtraceevent: out of memory") }
        self.tep = tep
        do {
            try readHeaders()
        } catch {
            tep_free(tep)
            throw error
        }
        info.fileVersion = version
        info.cpus = cpuCount
        info.longSize = longSize
        info.pageSize = pageSize
        if info.clock == nil { info.clock = buffers.first(where: { $0.name == "" })?.clock }
    }

    deinit { tep_free(tep) }

    func warn(_ offset: UInt64?, _ message: String) {
        warnings.append(TraceWarning(file: path, offset: offset, message: message))
    }

    // MARK: - Container

    private func readHeaders() throws {
        guard file.size > 0 else { throw TraceError(file: path, offset: 0, "empty file: expected a trace.dat header") }
        var c = ByteCursor(file: file, at: 0)
        let magic = try c.readBytes(min(Self.magic.count, Int(file.size)), "trace.dat magic")
        guard magic == Self.magic else {
            throw TraceError(file: path, offset: 0,
                             "not a trace.dat file: expected magic 17 08 44 \"tracing\"")
        }
        let versionString = try c.readCString("file version", limit: 16)
        guard let v = Int(versionString) else {
            throw TraceError(file: path, offset: 10, "expected a decimal file version, found \"\(versionString)\"")
        }
        guard v == 6 || v == 7 else {
            throw TraceError(file: path, offset: 10,
                             "unsupported trace.dat file version \(v): expected 6 or 7")
        }
        version = v
        let endianOffset = c.fileOffset
        let endian = try c.readInteger(UInt8.self, "endianness")
        guard endian <= 1 else { throw TraceError(file: path, offset: endianOffset, "expected endianness 0 or 1, found \(endian)") }
        bigEndian = endian == 1
        c = ByteCursor(file: file, at: c.fileOffset, bigEndian: bigEndian)
        let lsOffset = c.fileOffset
        longSize = Int(try c.readInteger(UInt8.self, "long size"))
        guard longSize == 4 || longSize == 8 else {
            throw TraceError(file: path, offset: lsOffset, "expected long size 4 or 8, found \(longSize)")
        }
        let psOffset = c.fileOffset
        pageSize = Int(try c.readInteger(UInt32.self, "page size"))
        guard pageSize >= 256, pageSize <= 1 << 24, pageSize & (pageSize - 1) == 0 else {
            throw TraceError(file: path, offset: psOffset, "expected a power-of-two page size, found \(pageSize)")
        }
        tep_set_file_bigendian(tep, bigEndian ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN)
        tep_set_local_bigendian(tep, TEP_LITTLE_ENDIAN)
        tep_set_long_size(tep, Int32(longSize))
        tep_set_page_size(tep, Int32(pageSize))
        if version == 6 {
            try readV6(&c)
        } else {
            try readV7(&c)
        }
    }

    private func readV6(_ c: inout ByteCursor) throws {
        try readHeaderInfo(&c)
        try readFtraceEvents(&c)
        try readEventFormats(&c)
        try readKallsyms(&c)
        try readPrintk(&c)
        try readCmdlines(&c)
        cpuCount = Int(try c.readInteger(UInt32.self, "CPU count"))
        guard cpuCount <= 4096 else { throw c.error("implausible CPU count \(cpuCount)") }
        var label = try c.readCString("section label", limit: 16)
        if label == "options  " {
            try readOptionsV6(&c)
            label = try c.readCString("section label", limit: 16)
        }
        switch label {
        case "flyrecord":
            var cpus: [CPUData] = []
            for cpu in 0..<cpuCount {
                let offset = try c.readInteger(UInt64.self, "CPU \(cpu) data offset")
                let size = try c.readInteger(UInt64.self, "CPU \(cpu) data size")
                cpus.append(CPUData(cpu: cpu, offset: offset, size: size))
            }
            // v6 follows the table with the clock as "[name]" (u64 length, text).
            if let len = try? c.readInteger(UInt64.self, "trace clock size"), len > 0, len < 4096,
               let text = try? c.readBytes(Int(len), "trace clock") {
                let clock = String(decoding: text, as: UTF8.self)
                if let open = clock.firstIndex(of: "["), let close = clock.firstIndex(of: "]"), open < close {
                    info.clock = String(clock[clock.index(after: open)..<close])
                }
            }
            buffers.insert(Buffer(name: "", clock: info.clock, subBufferSize: pageSize, cpus: cpus, compressed: false), at: 0)
        case "latency  ":
            throw c.error("latency-format trace.dat files are not supported: expected \"flyrecord\"")
        default:
            throw c.error("expected \"flyrecord\" or \"options  \", found \"\(label)\"")
        }
        // v6 instance buffers carry their own flyrecord tables at the offsets their options give.
        for i in buffers.indices where buffers[i].name != "" && buffers[i].cpus.isEmpty {
            var bc = ByteCursor(file: file, at: pendingV6BufferOffsets[buffers[i].name] ?? 0, bigEndian: bigEndian)
            do {
                try bc.expect("flyrecord", "instance \(buffers[i].name) data label")
                for cpu in 0..<cpuCount {
                    let offset = try bc.readInteger(UInt64.self, "CPU \(cpu) data offset")
                    let size = try bc.readInteger(UInt64.self, "CPU \(cpu) data size")
                    buffers[i].cpus.append(CPUData(cpu: cpu, offset: offset, size: size))
                }
            } catch let e as TraceError {
                warn(e.offset, "instance \"\(buffers[i].name)\" skipped: \(e.message)")
            }
        }
    }

    private var pendingV6BufferOffsets: [String: UInt64] = [:]

    private func readOptionsV6(_ c: inout ByteCursor) throws {
        while true {
            let id = try c.readInteger(UInt16.self, "option id")
            if id == 0 { return }
            let data = try c.readSized(UInt32.self, "option \(id)")
            try applyOption(id: id, data: data, at: c.fileOffset - UInt64(data.count))
        }
    }

    private func readV7(_ c: inout ByteCursor) throws {
        let name = try c.readCString("compression algorithm", limit: 64)
        let compressionVersion = try c.readCString("compression version", limit: 64)
        guard let d = BlockDecompressor(name: name) else {
            throw TraceError(file: path, offset: c.fileOffset,
                             "unsupported compression \"\(name)\": expected none, zlib or zstd")
        }
        decompressor = d
        info.compression = name == "none" ? nil : "\(name) \(compressionVersion)"
        var next = try c.readInteger(UInt64.self, "offset of the first options section")
        var visited = Set<UInt64>()
        while next != 0 {
            guard visited.insert(next).inserted else { throw c.error("options sections form a loop at \(next)") }
            var oc = try section(at: next, expecting: Option.done.rawValue, "options")
            next = 0
            while true {
                let id = try oc.readInteger(UInt16.self, "option id")
                let data = try oc.readSized(UInt32.self, "option \(id)")
                if id == Option.done.rawValue {
                    var dc = ByteCursor(data, base: 0, file: path, bigEndian: bigEndian)
                    next = data.count >= 8 ? try dc.readInteger(UInt64.self, "next options offset") : 0
                    break
                }
                try applyOption(id: id, data: data, at: oc.fileOffset - UInt64(data.count))
            }
        }
        if tep_get_events_count(tep) == 0 && tep_get_header_page_size(tep) == 0 {
            throw TraceError(file: path, offset: c.fileOffset, "no header page section: expected a HEADER_INFO option")
        }
        if buffers.isEmpty { warn(nil, "no trace buffers in file") }
    }

    /// Reads a v7 section header at `offset` and returns a cursor over its (decompressed) content.
    private func section(at offset: UInt64, expecting id: UInt16, _ what: String) throws -> ByteCursor {
        var c = ByteCursor(file: file, at: offset, bigEndian: bigEndian)
        let found = try c.readInteger(UInt16.self, "\(what) section id")
        guard found == id else {
            throw TraceError(file: path, offset: offset, "expected \(what) section (id \(id)), found id \(found)")
        }
        let flags = try c.readInteger(UInt16.self, "\(what) section flags")
        _ = try c.readInteger(UInt32.self, "\(what) section description")
        let size = try c.readInteger(UInt64.self, "\(what) section size")
        let start = c.fileOffset
        guard size <= file.size, start + size <= file.size else {
            throw TraceError(file: path, offset: start,
                             "truncated \(what) section: expected \(size) bytes, file ends at \(file.size)")
        }
        if flags & 1 == 0 { return ByteCursor(try c.readBytes(Int(size), what), base: start, file: path, bigEndian: bigEndian) }
        let csize = try c.readInteger(UInt32.self, "\(what) compressed size")
        let usize = try c.readInteger(UInt32.self, "\(what) uncompressed size")
        let payload = try c.readBytes(Int(csize), "\(what) compressed data")
        guard usize < 1 << 30, let plain = payload.withUnsafeBytes({ decompressor.decompress($0, expected: Int(usize)) }) else {
            throw TraceError(file: path, offset: start, "corrupt \(what) section: \(decompressorName) data does not decompress to \(usize) bytes")
        }
        return ByteCursor(plain, base: start, file: path, bigEndian: bigEndian)
    }

    var decompressorName: String {
        switch decompressor { case .none: "uncompressed"; case .zlib: "zlib"; case .zstd: "zstd" }
    }

    private func applyOption(id: UInt16, data: [UInt8], at offset: UInt64) throws {
        var d = ByteCursor(data, base: offset, file: path, bigEndian: bigEndian)
        func string() -> String {
            String(decoding: data.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        switch Option(rawValue: id) {
        case .uname: info.uname = string()
        case .traceClock:
            let clock = string().trimmingSuffix("\n")
            // trace_clock lists all clocks with the current one in brackets.
            if let open = clock.firstIndex(of: "["), let close = clock.firstIndex(of: "]"), open < close {
                info.clock = String(clock[clock.index(after: open)..<close])
            } else {
                info.clock = clock
            }
        case .cpuCount: cpuCount = Int(try d.readInteger(UInt32.self, "CPU count"))
        case .offset:
            timestampOffset &+= parseCInteger(string()) ?? 0
        case .date:
            // Microseconds (trace-cmd record --date).
            timestampOffset &+= (parseCInteger(string()) ?? 0) &* 1000
        case .tsc2nsec:
            let mult = try d.readInteger(UInt32.self, "tsc2nsec multiplier")
            let shift = try d.readInteger(UInt32.self, "tsc2nsec shift")
            let off = try d.readInteger(UInt64.self, "tsc2nsec offset")
            tsc2nsec = (mult, shift, off)
        case .buffer:
            if version == 6 {
                let off = try d.readInteger(UInt64.self, "buffer offset")
                let name = try d.readCString("buffer name")
                pendingV6BufferOffsets[name] = off
                buffers.append(Buffer(name: name, clock: nil, subBufferSize: pageSize, cpus: [], compressed: false))
            } else {
                try readBufferOptionV7(&d, size: data.count)
            }
        case .headerInfo: var s = try section(at: try d.readInteger(UInt64.self, "section offset"), expecting: id, "header info"); try readHeaderInfo(&s)
        case .ftraceEvents: var s = try section(at: try d.readInteger(UInt64.self, "section offset"), expecting: id, "ftrace events"); try readFtraceEvents(&s)
        case .eventFormats: var s = try section(at: try d.readInteger(UInt64.self, "section offset"), expecting: id, "event formats"); try readEventFormats(&s)
        case .kallsyms:
            let at = try d.readInteger(UInt64.self, "section offset")
            var s = try section(at: at, expecting: id, "kallsyms")
            try readKallsyms(&s, section: at)
        case .printk: var s = try section(at: try d.readInteger(UInt64.self, "section offset"), expecting: id, "printk formats"); try readPrintk(&s)
        case .cmdlines: var s = try section(at: try d.readInteger(UInt64.self, "section offset"), expecting: id, "cmdlines"); try readCmdlines(&s)
        case .bufferText:
            recordedAnomalies.count("latency-format buffer skipped", .info, at: "\(path)@\(offset)")
        default:
            break
        }
    }

    private func readBufferOptionV7(_ d: inout ByteCursor, size: Int) throws {
        _ = try d.readInteger(UInt64.self, "buffer section offset")
        let name = try d.readCString("buffer name")
        let clock = try d.readCString("buffer clock")
        // The sub-buffer size precedes the CPU count in every v7 writer (trace-cmd 3.1 to 3.4).
        let subBuffer = Int(try d.readInteger(UInt32.self, "sub-buffer size"))
        guard subBuffer >= 256, subBuffer <= 1 << 24, subBuffer & (subBuffer - 1) == 0 else {
            throw d.error("implausible sub-buffer size \(subBuffer)")
        }
        let count = Int(try d.readInteger(UInt32.self, "CPU count"))
        guard count <= 4096 else { throw d.error("implausible CPU count \(count)") }
        var list: [CPUData] = []
        for _ in 0..<count {
            let cpu = Int(try d.readInteger(UInt32.self, "CPU id"))
            let offset = try d.readInteger(UInt64.self, "CPU data offset")
            let size = try d.readInteger(UInt64.self, "CPU data size")
            list.append(CPUData(cpu: cpu, offset: offset, size: size))
        }
        let b = Buffer(name: name, clock: clock, subBufferSize: subBuffer, cpus: list, compressed: decompressor != .none)
        if name == "" { buffers.insert(b, at: 0) } else { buffers.append(b) }
        if name == "" { info.clock = clock }
    }

    // MARK: - Metadata blocks (the same in v6 and in v7 sections)

    private func readHeaderInfo(_ c: inout ByteCursor) throws {
        try c.expect("header_page", "header page label")
        let pageStart = c.fileOffset
        var page = try c.readSized(UInt64.self, "header page format")
        let rc = page.withUnsafeMutableBytes { raw in
            tep_parse_header_page(tep, raw.baseAddress!.assumingMemoryBound(to: CChar.self), UInt(raw.count), Int32(longSize))
        }
        if rc != 0 { throw TraceError(file: path, offset: pageStart, "libtraceevent could not parse the header page format") }
        try c.expect("header_event", "header event label")
        _ = try c.readSized(UInt64.self, "header event format")
    }

    /// Event formats read but not yet given to libtraceevent, by type id. A trace.dat carries
    /// the format of every event the kernel has (~1,500 on a distribution kernel) and parsing
    /// them all took longer than reading a 100 MB trace's records; a format is parsed when a
    /// record of its type is first decoded (`event(id:)`).
    private var unparsed: [Int32: (system: String, name: String, text: [UInt8], offset: UInt64)] = [:]

    private func parseFormat(_ text: [UInt8], system: String, at offset: UInt64) {
        // ftrace's own formats (kernel_stack, ...) and the first event go to libtraceevent at
        // once: it takes the common fields' layout from its first event.
        if system != "ftrace", tep_get_events_count(tep) > 0, let (name, id) = formatHead(text), unparsed[id] == nil {
            unparsed[id] = (system, name, text, offset)
            return
        }
        parseNow(text, system: system, at: offset)
    }

    private func parseNow(_ text: [UInt8], system: String, at offset: UInt64) {
        let rc = text.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { cbuf in
                system.withCString { sys in
                    tep_parse_event(tep, cbuf.baseAddress, UInt(cbuf.count), sys)
                }
            }
        }
        if rc != TEP_ERRNO__SUCCESS {
            let name = formatHead(text)?.name ?? "?"
            recordedAnomalies.count("event format not parsed by libtraceevent", .error, at: "\(system):\(name) (\(path)@\(offset))")
        }
    }

    /// libtraceevent's event for a type id, its format parsed on first use.
    func event(id: Int32) -> UnsafeMutablePointer<tep_event>? {
        if let e = tep_find_event(tep, id) { return e }
        guard let f = unparsed.removeValue(forKey: id) else { return nil }
        parseNow(f.text, system: f.system, at: f.offset)
        return tep_find_event(tep, id)
    }

    /// (system, name) of a type id, without parsing its format.
    func eventNames(id: Int32) -> (system: String, name: String)? {
        if let f = unparsed[id] { return (f.system, f.name) }
        guard let e = tep_find_event(tep, id) else { return nil }
        return (String(cString: e.pointee.system), String(cString: e.pointee.name))
    }

    /// The `name:` and `ID:` lines that open an event format; nil when they are not there (the
    /// format then goes to libtraceevent at once, to report what is wrong with it).
    private func formatHead(_ text: [UInt8]) -> (name: String, id: Int32)? {
        // Read from the bytes: a trace.dat carries ~1,500 formats, and this runs for each at open.
        text.withUnsafeBufferPointer { t -> (name: String, id: Int32)? in
            func line(from start: Int) -> Range<Int>? {
                guard start <= t.count else { return nil }
                var end = start
                while end < t.count && t[end] != 0x0A { end += 1 }
                return start..<end
            }
            func hasPrefix(_ r: Range<Int>, _ p: StaticString) -> Bool {
                r.count >= p.utf8CodeUnitCount && (0..<p.utf8CodeUnitCount).allSatisfy { t[r.lowerBound + $0] == p.utf8Start[$0] }
            }
            guard let first = line(from: 0), hasPrefix(first, "name: "),
                  let second = line(from: first.upperBound + 1), hasPrefix(second, "ID: ") else { return nil }
            let digits = t[(second.lowerBound + 4)..<second.upperBound].filter { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }
            guard let id = Int32(String(decoding: digits, as: UTF8.self)) else { return nil }
            return (String(decoding: t[(first.lowerBound + 6)..<first.upperBound], as: UTF8.self), id)
        }
    }

    private func readFtraceEvents(_ c: inout ByteCursor) throws {
        let count = try c.readInteger(UInt32.self, "ftrace event count")
        guard count < 100_000 else { throw c.error("implausible ftrace event count \(count)") }
        for _ in 0..<count {
            let at = c.fileOffset
            parseFormat(try c.readSized(UInt64.self, "ftrace event format"), system: "ftrace", at: at)
        }
    }

    private func readEventFormats(_ c: inout ByteCursor) throws {
        let systems = try c.readInteger(UInt32.self, "event system count")
        guard systems < 100_000 else { throw c.error("implausible event system count \(systems)") }
        for _ in 0..<systems {
            let system = try c.readCString("event system name")
            let count = try c.readInteger(UInt32.self, "event count of \(system)")
            guard count < 100_000 else { throw c.error("implausible event count \(count) in \(system)") }
            for _ in 0..<count {
                let at = c.fileOffset
                parseFormat(try c.readSized(UInt64.self, "\(system) event format"), system: system, at: at)
            }
        }
    }

    /// - Parameter section: the v7 section the cursor reads, nil when it reads the file itself.
    private func readKallsyms(_ c: inout ByteCursor, section: UInt64? = nil) throws {
        let at = c.fileOffset
        let text = try c.readSizedCString(UInt32.self, "kallsyms")
        if text.count == 1 { return }
        kallsymsAt = section.map { .section($0) } ?? .file(at)
        kallsymsAnomalyIndex = recordedAnomalies.entries.count
        symbols = KernelSymbols(text)
    }

    /// Where kallsyms is, until the main handle has it: it is megabytes, read again from the
    /// file when printing first needs it rather than held for a print that may never come.
    private enum KallsymsLocation { case file(UInt64), section(UInt64) }
    private var kallsymsAt: KallsymsLocation?
    /// kallsyms parsed in the background into a handle of its own: what stack frames are
    /// symbolized from.
    private(set) var symbols: KernelSymbols?

    /// Gives the main handle the kernel's functions, which printing (`tep_print_event`: stacks,
    /// `%pS`) looks up there. Parsed on first use: analysis symbolizes from `symbols` and never
    /// prints most events.
    func loadKallsymsForPrinting() {
        guard let location = kallsymsAt else { return }
        kallsymsAt = nil
        var c: ByteCursor
        switch location {
        case .file(let at): c = ByteCursor(file: file, at: at, bigEndian: bigEndian)
        case .section(let at):
            guard let s = try? section(at: at, expecting: Option.kallsyms.rawValue, "kallsyms") else { return }
            c = s
        }
        // Read once already: it was whole then, and the file has not changed since.
        guard let text = try? c.readSizedCString(UInt32.self, "kallsyms") else { return }
        text.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { _ = tep_parse_kallsyms(tep, $0.baseAddress!) }
        }
    }

    private func readPrintk(_ c: inout ByteCursor) throws {
        try readText(&c, UInt32.self, "printk formats") { tep_parse_printk_formats($0, $1) }
    }

    private func readCmdlines(_ c: inout ByteCursor) throws {
        try readText(&c, UInt64.self, "saved cmdlines") { tep_parse_saved_cmdlines($0, $1) }
    }

    /// Reads a sized text block and hands it, NUL-terminated, to a libtraceevent parser.
    private func readText<T: FixedWidthInteger>(_ c: inout ByteCursor, _ sizeType: T.Type, _ what: String,
                                                _ parse: (OpaquePointer, UnsafePointer<CChar>) -> Int32) throws {
        let text = try c.readSizedCString(T.self, what)
        if text.count == 1 { return }
        let rc = text.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { parse(tep, $0.baseAddress!) }
        }
        if rc != 0 { recordedAnomalies.count("\(what) not parsed by libtraceevent", .error, at: path) }
    }

    /// Whether trace-cmd prints timestamps as seconds.microseconds (ns clocks) or raw counts.
    public var timestampsInNanoseconds: Bool {
        if tsc2nsec != nil { return true }
        guard let clock = info.clock else { return true }
        if ["tsc2nsec", "tai"].contains(clock) { return true }
        return ["local", "global", "uptime", "perf", "mono"].contains(where: { clock.hasPrefix($0) })
    }

    /// Converts a ring-buffer timestamp to the one trace-cmd prints, in ns for ns clocks.
    @inline(__always)
    func convertTimestamp(_ raw: UInt64) -> UInt64 {
        var ts = raw
        if let t = tsc2nsec {
            // trace-cmd 3.1.6 applies mult and shift only (the offset field is read but not used).
            ts = UInt64(truncatingIfNeeded: (UInt128(ts) * UInt128(t.mult)) >> UInt128(t.shift))
        }
        return UInt64(bitPattern: Int64(bitPattern: ts) &+ timestampOffset)
    }
}

/// strtoll(s, NULL, 0): decimal, 0x-hex or 0-octal, with an optional sign.
func parseCInteger(_ text: String) -> Int64? {
    var s = Substring(text.trimmingSuffix("\n"))
    var negative = false
    if s.hasPrefix("-") { negative = true; s = s.dropFirst() } else if s.hasPrefix("+") { s = s.dropFirst() }
    let v: Int64?
    if s.hasPrefix("0x") || s.hasPrefix("0X") { v = Int64(s.dropFirst(2), radix: 16) }
    else if s.count > 1 && s.hasPrefix("0") { v = Int64(s.dropFirst(), radix: 8) }
    else { v = Int64(s) }
    return negative ? v.map { -$0 } : v
}

extension String {
    func trimmingSuffix(_ s: String) -> String {
        var r = self
        while r.hasSuffix(s) { r.removeLast(s.count) }
        return r
    }
}
