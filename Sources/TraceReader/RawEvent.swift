#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Where an event came from, so every finding can point back into the trace.
public struct TraceLocator: Sendable, Hashable, CustomStringConvertible {
    /// The file, as a number in `TraceFiles`: every event carries a locator, and a String here
    /// would be a reference count that the reading and the analysing thread both bump.
    private var fileID: Int32
    /// Byte offset of the record (trace.dat) or of the line (text), when known.
    public var offset: UInt64?
    /// 1-based line number for text traces.
    public var line: Int?

    /// Readers make one locator per file and copy it per event (registering a path takes a lock).
    public init(file: String, offset: UInt64? = nil, line: Int? = nil) {
        fileID = TraceFiles.id(of: file)
        self.offset = offset
        self.line = line
    }

    public var file: String {
        get { TraceFiles.path(fileID) }
        set { fileID = TraceFiles.id(of: newValue) }
    }

    public var description: String {
        if let line { return "\(file):\(line)" }
        if let offset { return "\(file)@\(offset)" }
        return file
    }
}

/// The paths locators name, numbered in the order first seen (a process reads a handful).
enum TraceFiles {
    private static let table = Mutex<(paths: [String], ids: [String: Int32])>(([], [:]))

    static func id(of path: String) -> Int32 {
        table.withLock { t in
            if let id = t.ids[path] { return id }
            let id = Int32(t.paths.count)
            t.paths.append(path)
            t.ids[path] = id
            return id
        }
    }

    static func path(_ id: Int32) -> String {
        table.withLock { $0.paths[Int(id)] }
    }
}

/// A typed field value as the trace carries it.
public enum FieldValue: Sendable, Hashable, CustomStringConvertible {
    case signed(Int64)
    case unsigned(UInt64)
    case string(String)
    case array([UInt64])

    public var description: String {
        switch self {
        case .signed(let v): return String(v)
        case .unsigned(let v): return String(v)
        case .string(let s): return s
        case .array(let a): return "[" + a.map { String($0) }.joined(separator: ",") + "]"
        }
    }

    /// The value as an unsigned integer: numbers as they are, strings parsed as decimal or 0x-hex.
    public var unsignedValue: UInt64? {
        switch self {
        case .unsigned(let v): return v
        case .signed(let v): return UInt64(bitPattern: v)
        case .string(let s): return parseKernelInteger(s)
        case .array: return nil
        }
    }

    public var signedValue: Int64? {
        switch self {
        case .signed(let v): return v
        case .unsigned(let v): return Int64(bitPattern: v)
        case .string(let s):
            if s.hasPrefix("-"), let v = parseKernelInteger(String(s.dropFirst())) { return -Int64(bitPattern: v) }
            return parseKernelInteger(s).map { Int64(bitPattern: $0) }
        case .array: return nil
        }
    }
}

/// Parses `123`, `0x7b` or `7b` (when `hex`), as the kernel prints integers.
public func parseKernelInteger(_ text: Substring, hex: Bool = false) -> UInt64? {
    // Text traces parse a few numbers per line: plain digits are read from the bytes, and only
    // anything else (a sign, an overflow, a stray character) goes through the generic parser.
    if let fast = text.utf8.withContiguousStorageIfAvailable({ plainKernelInteger($0, hex: hex) }), let value = fast {
        return value
    }
    if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
    return UInt64(text, radix: hex ? 16 : 10)
}

/// `parseKernelInteger` of the text in `bytes`.
public func parseKernelInteger(_ bytes: UnsafeBufferPointer<UInt8>, hex: Bool = false) -> UInt64? {
    if let value = plainKernelInteger(bytes, hex: hex) { return value }
    return parseKernelInteger(Substring(decoding: bytes, as: UTF8.self), hex: hex)
}

@inline(__always)
private func plainKernelInteger(_ bytes: UnsafeBufferPointer<UInt8>, hex: Bool) -> UInt64? {
    if bytes.count > 2, bytes[0] == 0x30, bytes[1] | 0x20 == 0x78 {
        return plainDigits(UnsafeBufferPointer(rebasing: bytes[2...]), radix: 16)
    }
    return plainDigits(bytes, radix: hex ? 16 : 10)
}

/// `UInt64(text, radix:)` for a substring of plain digits, read from its bytes.
public func parseUnsigned(_ text: Substring, radix: Int) -> UInt64? {
    if let fast = text.utf8.withContiguousStorageIfAvailable({ plainDigits($0, radix: radix) }), let value = fast { return value }
    return UInt64(text, radix: radix)
}

/// `parseUnsigned` of the text in `bytes`.
public func parseUnsigned(_ bytes: UnsafeBufferPointer<UInt8>, radix: Int) -> UInt64? {
    if let value = plainDigits(bytes, radix: radix) { return value }
    return UInt64(Substring(decoding: bytes, as: UTF8.self), radix: radix)
}

/// The value of 1 to 16 (hex) or 19 (decimal) digits, nil when there is anything else (the
/// caller then asks the generic parser, for the same answer). The text scanner's digit readers;
/// its hex reader also takes a `0x` prefix, which the generic parser with a radix does not.
@inline(__always)
private func plainDigits(_ bytes: UnsafeBufferPointer<UInt8>, radix: Int) -> UInt64? {
    guard radix == 16 else { return TextLineScanner.decimal(bytes, 0, bytes.count) }
    if bytes.count > 2, bytes[0] == 0x30, bytes[1] | 0x20 == 0x78 { return nil }
    return TextLineScanner.hex(bytes, 0, bytes.count)
}

public func parseKernelInteger(_ text: String, hex: Bool = false) -> UInt64? {
    parseKernelInteger(Substring(text), hex: hex)
}

public struct Field: Sendable, Hashable {
    public var name: String
    public var value: FieldValue
    public init(_ name: String, _ value: FieldValue) {
        self.name = name
        self.value = value
    }
}

/// One frame of a kernel stack trace attached to an event.
public struct StackFrame: Sendable, Hashable, CustomStringConvertible {
    /// Function name, without `+off/len`.
    public var symbol: String
    public var offset: UInt64?
    public var module: String?
    public var address: UInt64?

    public init(symbol: String, offset: UInt64? = nil, module: String? = nil, address: UInt64? = nil) {
        self.symbol = symbol
        self.offset = offset
        self.module = module
        self.address = address
    }

    public var description: String {
        var s = symbol
        if let offset { s += "+0x" + String(offset, radix: 16) }
        if let module { s += " [\(module)]" }
        return s
    }
}

/// One trace event, from any reader: the common currency of the pipeline.
///
/// A class: an event passes through several hands (decoder, stack attacher, read-ahead batch,
/// vocabulary) and moving one reference is much cheaper than copying a dozen fields and their
/// retains at each. Readers fill an event in before they hand it on; nobody changes it after.
public final class RawEvent: @unchecked Sendable {
    public var timestampNs: UInt64
    public var cpu: Int
    public var pid: Int32
    public var tgid: Int32?
    public var comm: String {
        didSet { commSlot = -1 }
    }
    public var system: String
    public var name: String {
        didSet { nameSlot = -1 }
    }
    /// Fields in format order. For text traces: the `key=value` pairs of the payload. For a
    /// binary record, decoded from the record at each read: ask for one with `self[field:]`.
    public var fields: [Field] {
        get {
            if textFields, let record { return PayloadWords.fields(textBytes(record), from: 0) }
            guard let layout, let record else { return storedFields }
            return layout.fields(record, size: recordSize)
        }
        set {
            storedFields = newValue
            layout = nil
            textFields = false
        }
    }
    private var storedFields: [Field]
    /// A binary event's record (a copy the event owns) and its type's field layout.
    private var layout: RecordLayout? {
        didSet { layoutRef = layout.map { Unmanaged.passUnretained($0) } }
    }
    /// `layout`, unretained, for reading fields: loading `layout` cost a retain and a release
    /// of an object every event of the type shares, per field read.
    private var layoutRef: Unmanaged<RecordLayout>?
    private var record: UnsafeMutableRawPointer?
    private var recordCapacity = 0
    private var recordSize = 0
    /// A text event's payload is in `record` (`recordSize` bytes from the first word after the
    /// event's name to the end of the line; `payloadLength` of them before trailing blanks): its
    /// fields are parsed from those bytes when asked (`textFields`), and its payload made from them
    /// (`textPayload`). Most fields of most events are never read.
    private var textFields = false
    private var textPayload = false
    private var payloadLength = 0
    private var storedPayload: String?
    /// A text event's `key=value` pairs, found as the event was made (the reader walks the words
    /// anyway): per pair, the offsets in `record` of its key's start and end and its value's;
    /// `pairCount` of them. `pairCount` is -1 when the payload starts with a kprobe's parentheses,
    /// whose fields come first: a lookup then reads `fields`.
    private var pairs: UnsafeMutablePointer<UInt32>?
    private var pairCapacity = 0
    private var pairCount = 0
    /// The payload as text (text readers; trace.dat events when printed).
    public var payload: String? {
        get {
            guard textPayload, let record else { return storedPayload }
            return String(decoding: UnsafeRawBufferPointer(start: record, count: payloadLength), as: UTF8.self)
        }
        set {
            storedPayload = newValue
            textPayload = false
        }
    }
    /// The kernel stack recorded right after this event, innermost first. A binary trace's
    /// stack is symbolized when first read (which may wait for kallsyms): to ask whether there
    /// is one, read `lazyStack.isEmpty`.
    public var stack: [StackFrame] {
        get { lazyStack.frames }
        set { lazyStack = LazyStack(newValue) }
        _modify { yield &lazyStack.editable }
    }
    /// The stack as the reader gave it, before it is symbolized.
    public internal(set) var lazyStack: LazyStack
    /// Events the kernel lost on this CPU just before this one; `UInt64.max` when the count is unknown.
    public var lostBefore: UInt64?
    public var locator: TraceLocator
    /// The reader's number for this event's type (the trace.dat type id; a text reader's slot for
    /// the name), or -1. Stable within one reader, so consumers can cache per-type decisions by
    /// it; they should still check `name`, as a number means nothing across readers.
    public var typeID: Int32
    /// A text reader's interner slots for `comm` and `name`, or -1 (set again whenever they are):
    /// a recycled event whose comm or name is the new line's keeps it (storing it again cost
    /// reference counts on strings the analysis thread reads too).
    var commSlot: Int32 = -1
    var nameSlot: Int32 = -1

    public init(timestampNs: UInt64, cpu: Int, pid: Int32, tgid: Int32? = nil, comm: String,
                system: String, name: String, fields: [Field] = [], payload: String? = nil,
                stack: [StackFrame] = [], lostBefore: UInt64? = nil, locator: TraceLocator, typeID: Int32 = -1) {
        self.timestampNs = timestampNs
        self.cpu = cpu
        self.pid = pid
        self.tgid = tgid
        self.comm = comm
        self.system = system
        self.name = name
        storedFields = fields
        storedPayload = payload
        lazyStack = LazyStack(stack)
        self.lostBefore = lostBefore
        self.locator = locator
        self.typeID = typeID
    }

    deinit {
        record?.deallocate()
        pairs?.deallocate()
    }

    /// Makes a spent event a new one, as `init` would, with a binary record of `size` bytes at
    /// `data` of the type `layout` describes (its system and name too), except that the record
    /// buffer keeps its storage. Only for an event nobody else holds: readers recycle those
    /// instead of allocating.
    func refill(timestampNs: UInt64, cpu: Int, pid: Int32, comm: String, lostBefore: UInt64?, locator: TraceLocator,
                typeID: Int32, record data: UnsafeRawPointer, size: Int, layout: RecordLayout) {
        renew(timestampNs: timestampNs, cpu: cpu, pid: pid, tgid: nil, comm: comm, lostBefore: lostBefore,
              locator: locator, typeID: typeID)
        // The same layout object is the same type of the same reader: its names are already
        // these (most recycled events are of the type they were).
        if layout !== self.layout {
            system = layout.system
            name = layout.name
            self.layout = layout
        }
        copyRecord(UnsafeRawBufferPointer(start: data, count: size))
    }

    /// What `refill` and `text(reusing:)` both set: everything but the names, the layout and
    /// the record, with no fields, payload or stack.
    /// A nil `comm` keeps the event's (the caller knows it is the same).
    private func renew(timestampNs: UInt64, cpu: Int, pid: Int32, tgid: Int32?, comm: String?, lostBefore: UInt64?,
                       locator: TraceLocator, typeID: Int32) {
        self.timestampNs = timestampNs
        self.cpu = cpu
        self.pid = pid
        self.tgid = tgid
        // A recycled event mostly had the same comm (and name, below): storing it again cost a
        // retain and a release of a string the other thread reads too.
        if let comm, self.comm != comm { self.comm = comm }
        if !storedFields.isEmpty { storedFields = [] }
        textFields = false
        storedPayload = nil
        textPayload = false
        lazyStack = LazyStack()
        self.lostBefore = lostBefore
        self.locator = locator
        self.typeID = typeID
    }

    /// Copies `data` into the event's own buffer, grown when too small, else reused.
    private func copyRecord(_ data: UnsafeRawBufferPointer) {
        if record == nil || data.count > recordCapacity {
            record?.deallocate()
            recordCapacity = max(data.count, 128)
            record = UnsafeMutableRawPointer.allocate(byteCount: recordCapacity, alignment: 8)
        }
        if let base = data.baseAddress { record!.copyMemory(from: base, byteCount: data.count) }
        recordSize = data.count
    }

    /// Makes a spent event (or a new one: `nil`) a text event, as `init` would with `fields` and
    /// `payload` read from `payload`: the `key=value` words of a tracepoint or kprobe line, from
    /// its first word after the name to the end of the line; the payload is its first
    /// `trimmedLength` bytes. Only for an event nobody else holds. Also gives the payload's shape.
    /// A nil `comm` or `name` keeps the spent event's: the caller knows it is the same.
    static func text(reusing spent: RawEvent?, timestampNs: UInt64, cpu: Int, pid: Int32, tgid: Int32?, comm: String?,
                     name: String?, payload: UnsafeBufferPointer<UInt8>, trimmedLength: Int, locator: TraceLocator,
                     typeID: Int32) -> (RawEvent, PayloadWords.Shape) {
        let e: RawEvent
        if let spent {
            e = spent
            e.renew(timestampNs: timestampNs, cpu: cpu, pid: pid, tgid: tgid, comm: comm, lostBefore: nil,
                    locator: locator, typeID: typeID)
            if !e.system.isEmpty { e.system = "" }
            if let name, e.name != name { e.name = name }
            if e.layout != nil { e.layout = nil }
        } else {
            e = RawEvent(timestampNs: timestampNs, cpu: cpu, pid: pid, tgid: tgid, comm: comm!, system: "", name: name!,
                         locator: locator, typeID: typeID)
        }
        e.copyRecord(UnsafeRawBufferPointer(payload))
        e.textFields = true
        e.textPayload = true
        e.payloadLength = trimmedLength
        return (e, e.indexPairs())
    }

    /// Fills `pairs` from the text payload in `record`.
    private func indexPairs() -> PayloadWords.Shape {
        /// Offsets of each pair's key and value, four per pair, into a buffer grown as needed.
        struct Index: PayloadWords.Visitor {
            var pairs: UnsafeMutablePointer<UInt32>
            var capacity: Int
            var count = 0
            var probe = false
            mutating func probe(_ inner: Range<Int>) { probe = true }
            @inline(__always)
            mutating func pair(key: Range<Int>, value: Range<Int>) {
                if count == capacity {
                    let grown = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * capacity)
                    grown.moveInitialize(from: pairs, count: 4 * count)
                    pairs.deallocate()
                    pairs = grown
                    capacity *= 2
                }
                let slot = pairs + 4 * count
                slot[0] = UInt32(truncatingIfNeeded: key.lowerBound)
                slot[1] = UInt32(truncatingIfNeeded: key.upperBound)
                slot[2] = UInt32(truncatingIfNeeded: value.lowerBound)
                slot[3] = UInt32(truncatingIfNeeded: value.upperBound)
                count += 1
            }
        }
        if pairs == nil {
            pairCapacity = 8
            pairs = UnsafeMutablePointer<UInt32>.allocate(capacity: 4 * pairCapacity)
        }
        var index = Index(pairs: pairs!, capacity: pairCapacity)
        let shape = PayloadWords.walk(textBytes(record!), from: 0, into: &index)
        pairs = index.pairs
        pairCapacity = index.capacity
        pairCount = index.count
        // Offsets past 4 GiB do not fit: such a line is looked up through `fields`.
        if index.probe || recordSize > Int(UInt32.max) { pairCount = -1 }
        return shape
    }

    /// A text event's payload bytes.
    @inline(__always)
    private func textBytes(_ record: UnsafeMutableRawPointer) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: record.assumingMemoryBound(to: UInt8.self), count: recordSize)
    }

    /// Where a text event's field named `name` is in its bytes: `.some(nil)` when it has none,
    /// `nil` when only its whole field list can tell (a kprobe's fields come first).
    private func textValue(named name: String, in bytes: UnsafeBufferPointer<UInt8>) -> Range<Int>?? {
        guard pairCount >= 0 else { return nil }
        guard let i = pairIndex(named: name, in: bytes) else { return .some(nil) }
        let slot = pairs! + 4 * i
        return Int(slot[2])..<Int(slot[3])
    }

    public subscript(field name: String) -> FieldValue? {
        if textFields, let record {
            let bytes = textBytes(record)
            if let found = textValue(named: name, in: bytes) {
                return found.map { .string(TextLineScanner.string(bytes, $0)) }
            }
            let all = fields
            return position(named: name, in: all, { $0.name }).map { all[$0].value }
        }
        if let layoutRef, let record {
            return layoutRef._withUnsafeGuaranteedRef { layout in
                layout.index(of: name).flatMap { layout.value($0, record, size: recordSize) }
            }
        }
        return position(named: name, in: storedFields, { $0.name }).map { storedFields[$0].value }
    }

    /// Where the field named `name` sits in a binary event's record: the same for every event of
    /// its type (`typeID`), so a caller reading many events can look it up once per type and read
    /// with `subscript(fieldAt:)`. Nil for a text event, or when the type has no such field.
    public func fieldIndex(named name: String) -> Int? {
        guard let layoutRef else { return nil }
        return layoutRef._withUnsafeGuaranteedRef { $0.index(of: name) }
    }

    /// A binary record's event (its fields are found by position: `fieldIndex(named:)`).
    public var isBinary: Bool { layoutRef != nil && record != nil }

    /// The field at a position `fieldIndex(named:)` gave for an event of this type.
    public subscript(fieldAt i: Int) -> FieldValue? {
        guard let layoutRef, let record else { return nil }
        return layoutRef._withUnsafeGuaranteedRef { $0.value(i, record, size: recordSize) }
    }

    /// The binary record's bytes (a copy the event owns), nil for a text event.
    func withRecord<R>(_ body: (UnsafeRawPointer, Int) -> R) -> R? {
        guard let record else { return nil }
        return body(record, recordSize)
    }

    /// `self[field: name]?.unsignedValue`; a text event's number is read from its bytes, without
    /// making a string first.
    public func unsignedField(named name: String) -> UInt64? {
        if textFields, let record {
            let bytes = textBytes(record)
            if let found = textValue(named: name, in: bytes) {
                guard let range = found else { return nil }
                return parseKernelInteger(UnsafeBufferPointer(rebasing: bytes[range]))
            }
        }
        return self[field: name]?.unsignedValue
    }

    /// Whether the event has a printed payload (`payload != nil`, without making it).
    public var hasPayload: Bool { textPayload || storedPayload != nil }

    /// The payload's bytes, for reading it without making a string (a text event's own copy).
    public func withPayloadBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        if textPayload, let record {
            return body(UnsafeBufferPointer(start: record.assumingMemoryBound(to: UInt8.self), count: payloadLength))
        }
        guard var payload = storedPayload else { return nil }
        return payload.withUTF8(body)
    }

    /// `self[fieldAt: i]?.unsignedValue`, without making the value first when it is a number.
    public func unsignedField(at i: Int) -> UInt64? {
        guard let layoutRef, let record else { return nil }
        return layoutRef._withUnsafeGuaranteedRef { $0.unsigned(i, record, size: recordSize) }
    }

    /// Where the field named `name` is among a text event's `key=value` pairs: nil when it has
    /// none there, or for a binary event (`fieldIndex(named:)`). Tracepoints print their pairs
    /// in the same order every time, so one event's answer is a good guess for the next of its
    /// type: `unsignedField(at:named:)` takes it and checks it.
    public func textPairIndex(named name: String) -> Int? {
        guard textFields, pairCount >= 0, let record else { return nil }
        return pairIndex(named: name, in: textBytes(record))
    }

    /// `unsignedField(named: name)`, where `i` is the field's position as `fieldIndex(named:)`
    /// (binary) or `textPairIndex(named:)` (text) gave it for an event of this type. A text
    /// event whose pair `i` is another key is searched by name.
    public func unsignedField(at i: Int, named name: String) -> UInt64? {
        if isBinary { return unsignedField(at: i) }
        guard textFields, let record else { return unsignedField(named: name) }
        let bytes = textBytes(record)
        var name = name
        let found = name.withUTF8 { i < pairCount && isPair(i, named: $0, in: bytes) }
        guard found else { return unsignedField(named: name) }
        let slot = pairs! + 4 * i
        return parseKernelInteger(UnsafeBufferPointer(rebasing: bytes[Int(slot[2])..<Int(slot[3])]))
    }

    /// The first of a text event's `pairCount` (>= 0) pairs whose key is `name`.
    private func pairIndex(named name: String, in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var name = name
        return name.withUTF8 { name in (0..<pairCount).first { isPair($0, named: name, in: bytes) } }
    }

    /// Whether pair `i` (< `pairCount`) of a text event has the key `name`.
    @inline(__always)
    private func isPair(_ i: Int, named name: UnsafeBufferPointer<UInt8>, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let slot = pairs! + 4 * i
        let key = Int(slot[0])..<Int(slot[1])
        return key.count == name.count && sameBytes(bytes.baseAddress! + key.lowerBound, name.baseAddress!, key.count)
    }
}

/// Position of the first element named `name` (fields by name, per event).
@inline(__always)
func position<C: RandomAccessCollection>(named name: String, in items: C, _ nameOf: (C.Element) -> String) -> C.Index? {
    // Lengths first: most names asked for differ in length from most fields, and a length is
    // one load where a string comparison is a call.
    let length = name.utf8.count
    return items.indices.first { nameOf(items[$0]).utf8.count == length && nameOf(items[$0]) == name }
}

/// Facts about a trace as a whole.
public struct TraceInfo: Sendable {
    public enum Format: String, Sendable {
        case traceDat = "trace.dat"
        case kernelText = "ftrace text"
        case traceCmdReport = "trace-cmd report"
        case traceCmdReportRaw = "trace-cmd report -R"
    }
    public var file: String
    public var format: Format
    public var fileVersion: Int?
    public var compression: String?
    public var cpus: Int?
    public var uname: String?
    public var clock: String?
    public var longSize: Int?
    public var pageSize: Int?

    public init(file: String, format: Format) {
        self.file = file
        self.format = format
    }

    /// Kernel release parsed from `uname` (e.g. "6.1.0-56-amd64"), when recorded.
    public var kernelRelease: String? {
        guard let uname else { return nil }
        let parts = uname.split(separator: " ")
        // "Linux host 6.1.0-56-amd64 #1 SMP ..."
        if parts.count >= 3, parts[0] == "Linux" { return String(parts[2]) }
        return parts.first(where: { $0.first?.isNumber == true }).map(String.init)
    }
}
