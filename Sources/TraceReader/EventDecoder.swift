import CTraceEvent
import CTraceEventPrint
#if canImport(Glibc)
import Glibc
#endif

/// Turns libtraceevent records into `RawEvent`s, looking each event type's fields up once
/// (the `tep_format_field` pointers are kept per type id).
struct EventDecoder {
    private let tep: OpaquePointer
    /// This file's locator, copied per event.
    private let fileLocator: TraceLocator
    /// Parses event formats on first use.
    private unowned let dat: TraceDatFile
    private(set) var anomalies = Anomalies()
    /// Per type id (a u16 in the record header), looked up once.
    private var types = [EventType?](repeating: nil, count: 1 << 16)
    /// The same, unretained (`types` owns them): taking one from `types` per record cost a
    /// retain and a release.
    private var typeRefs = [Unmanaged<EventType>?](repeating: nil, count: 1 << 16)
    private let seq: UnsafeMutablePointer<trace_seq>
    /// Symbolizes the stacks of this file's events when they are read.
    private let symbolizer: StackSymbolizer

    final class EventType {
        let layout: RecordLayout
        var system: String { layout.system }
        var name: String { layout.name }
        /// `kernel_stack`'s `size` and `caller` fields.
        let stackFields: (size: Int, caller: Int)?
        /// Decode also the payload as the event's print format renders it.
        var printPayload = false
        init(layout: RecordLayout) {
            self.layout = layout
            if layout.system == "ftrace", layout.name == "kernel_stack", let size = layout.index(of: "size"), let caller = layout.index(of: "caller") {
                stackFields = (size, caller)
            } else {
                stackFields = nil
            }
        }
    }

    /// Events whose payload is also printed (by libtraceevent, from the print format) into
    /// `RawEvent.payload`: symbolic values such as a migrate reason. Set before decoding.
    var printedEvents: Set<String> = []

    init(dat: TraceDatFile) {
        self.dat = dat
        self.tep = dat.tep
        fileLocator = TraceLocator(file: dat.path)
        symbolizer = StackSymbolizer(symbols: dat.symbols)
        seq = UnsafeMutablePointer<trace_seq>.allocate(capacity: 1)
        trace_seq_init(seq)
    }

    func names(id: Int32) -> (system: String, name: String)? {
        dat.eventNames(id: id)
    }

    private mutating func type(_ id: Int32) -> Unmanaged<EventType>? {
        let slot = Int(UInt16(truncatingIfNeeded: id))
        if let t = typeRefs[slot] { return t }
        guard let e = dat.event(id: id) else { return nil }
        var specs: [RecordLayout.Spec] = []
        if let list = tep_event_fields(e) {
            var i = 0
            while let f = list[i] {
                let flags = UInt32(truncatingIfNeeded: f.pointee.flags)
                func has(_ flag: tep_format_flags) -> Bool { flags & UInt32(flag.rawValue) != 0 }
                specs.append(RecordLayout.Spec(name: String(cString: f.pointee.name), offset: Int(f.pointee.offset),
                                               size: Int(f.pointee.size), elementSize: Int(f.pointee.elementsize),
                                               isString: has(TEP_FIELD_IS_STRING), isArray: has(TEP_FIELD_IS_ARRAY),
                                               isDynamic: has(TEP_FIELD_IS_DYNAMIC), isRelative: has(TEP_FIELD_IS_RELATIVE),
                                               isSigned: has(TEP_FIELD_IS_SIGNED)))
                i += 1
            }
            free(list)
        }
        let t = EventType(layout: RecordLayout(system: String(cString: e.pointee.system), name: String(cString: e.pointee.name),
                                               specs, bigEndian: dat.bigEndian))
        t.printPayload = printedEvents.contains(t.name)
        types[slot] = t
        typeRefs[slot] = Unmanaged.passUnretained(t)
        return typeRefs[slot]
    }

    /// Decodes a record into an event with typed fields; a kernel stack keeps its addresses, to be
    /// symbolized when read (`RawEvent.stack`).
    /// - Parameter reuse: a spent event to refill (its record buffer keeps its storage) instead of
    ///   allocating one; the caller guarantees nobody else holds it.
    /// - Parameter typeID: the record's type id, when the caller read it already.
    mutating func decode(_ rec: UnsafeMutablePointer<tep_record>, cpu: Int, typeID: Int32? = nil, into reuse: consuming RawEvent? = nil) -> RawEvent {
        let id = typeID ?? tep_data_type(tep, rec)
        let pid = tep_data_pid(tep, rec)
        let comm = commName(pid, cpu: cpu)
        var locator = fileLocator
        locator.offset = rec.pointee.offset
        let lost: UInt64? = rec.pointee.missed_events > 0 ? UInt64(rec.pointee.missed_events)
            : rec.pointee.missed_events < 0 ? UInt64.max : nil
        guard let typeRef = type(id) else {
            anomalies.count("unknown event type id", .error, at: "\(locator) (id \(id))")
            return RawEvent(timestampNs: rec.pointee.ts, cpu: cpu, pid: pid, comm: comm, system: "",
                            name: "unknown-\(id)", lostBefore: lost, locator: locator)
        }
        // Moved along, not copied: a copy cost a retain here and a release in the caller.
        var spent = reuse
        return typeRef._withUnsafeGuaranteedRef { t in
            decode(rec, t, cpu: cpu, pid: pid, comm: comm, lost: lost, locator: locator, typeID: id, into: spent.take())
        }
    }

    private mutating func decode(_ rec: UnsafeMutablePointer<tep_record>, _ t: EventType, cpu: Int, pid: Int32, comm: String,
                                 lost: UInt64?, locator: TraceLocator, typeID id: Int32, into reuse: consuming RawEvent?) -> RawEvent {
        let data = UnsafeRawPointer(rec.pointee.data!)
        let size = Int(rec.pointee.size)
        if size < t.layout.minimumSize {
            anomalies.count("record shorter than its format", .error, at: "\(locator) (\(t.name))")
        }
        let e = reuse ?? RawEvent(timestampNs: 0, cpu: 0, pid: 0, comm: "", system: "", name: "", locator: locator)
        e.refill(timestampNs: rec.pointee.ts, cpu: cpu, pid: pid, comm: comm, lostBefore: lost, locator: locator,
                 typeID: id, record: data, size: size, layout: t.layout)
        if let (sizeField, callerField) = t.stackFields {
            let count = t.layout.value(sizeField, data, size: size)?.unsignedValue ?? 0
            let callerOffset = t.layout.specs[callerField].offset
            let longSize = Int(tep_get_long_size(tep))
            let available = max(0, (size - callerOffset) / longSize)
            let n = min(Int(clamping: count), available)
            var addresses: [UInt64] = []
            addresses.reserveCapacity(n)
            for i in 0..<n {
                addresses.append(t.layout.number(data + callerOffset + i * longSize, longSize))
            }
            e.lazyStack = LazyStack(kernel: KernelStack(addresses: addresses, symbolizer: symbolizer))
        }
        if t.printPayload {
            dat.loadKallsymsForPrinting()
            trace_seq_reset(seq)
            pinscope_print_info(tep, seq, rec)
            e.payload = String(decoding: UnsafeRawBufferPointer(start: seq.pointee.buffer, count: Int(seq.pointee.len)), as: UTF8.self)
        }
        return e
    }

    /// Per CPU, the last pid looked up there and its comm: consecutive records of a CPU mostly
    /// come from one task (one entry for all CPUs missed at every switch between them, and
    /// each miss made a new string).
    private var lastComm: [(pid: Int32, comm: String)] = []

    private mutating func commName(_ pid: Int32, cpu: Int) -> String {
        if pid == 0 { return "<idle>" }
        if cpu >= lastComm.count { lastComm += Array(repeating: (-1, ""), count: cpu + 1 - lastComm.count) }
        if pid == lastComm[cpu].pid { return lastComm[cpu].comm }
        let comm = tep_data_comm_from_pid(tep, pid).map { String(cString: $0) } ?? "<...>"
        lastComm[cpu] = (pid, comm)
        return comm
    }

    /// The record printed exactly as `trace-cmd report` (`-R` when raw) prints it.
    func reportLine(_ rec: UnsafeMutablePointer<tep_record>, timeMode: Int32, raw: Bool) -> String {
        _ = dat.event(id: tep_data_type(tep, rec))
        dat.loadKallsymsForPrinting()
        trace_seq_reset(seq)
        pinscope_print_report_line(tep, seq, rec, timeMode, raw ? 1 : 0)
        return String(decoding: UnsafeRawBufferPointer(start: seq.pointee.buffer, count: Int(seq.pointee.len)), as: UTF8.self)
    }
}
