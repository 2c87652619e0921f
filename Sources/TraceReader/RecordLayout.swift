/// One event type of a binary trace: its system and name, and where each field sits in its
/// records, as libtraceevent parsed the event's format (`tep_format_field`): offset, size, and
/// whether it is a string, an array, a dynamic (`__data_loc`) field, signed.
///
/// A trace.dat event keeps its record bytes and this layout, and a field is read when asked for
/// (`RawEvent[field:]`): analysis reads two or three fields of an event with ten, and building
/// every value (strings included) for every event was a third of the reading thread's work.
final class RecordLayout: @unchecked Sendable {
    struct Spec {
        let name: String
        let offset: Int
        let size: Int
        let elementSize: Int
        let isString: Bool
        let isArray: Bool
        let isDynamic: Bool
        /// A `__rel_loc` field: the dynamic offset counts from the end of the field.
        let isRelative: Bool
        let isSigned: Bool
    }

    let system: String
    let name: String
    let specs: [Spec]
    /// The records' byte order differs from this machine's.
    private let swapBytes: Bool
    /// The record size every fixed field fits in.
    let minimumSize: Int

    /// Where each plain integer field sits (not a string, an array or a dynamic field, and 1, 2,
    /// 4 or 8 bytes), for `unsigned`; nil for the others.
    private let integers: [(offset: Int, size: Int, signed: Bool)?]

    init(system: String, name: String, _ specs: [Spec], bigEndian: Bool) {
        self.system = system
        self.name = name
        self.specs = specs
        swapBytes = bigEndian != (UInt16(1).bigEndian == 1)
        minimumSize = specs.map { $0.isDynamic ? $0.offset + 4 : $0.offset + $0.size }.max() ?? 0
        integers = specs.map { f in
            guard !f.isString, !f.isArray, !f.isDynamic, [1, 2, 4, 8].contains(f.size) else { return nil }
            return (f.offset, f.size, f.isSigned)
        }
    }

    /// Field `i` as `value(i, ...)?.unsignedValue` gives it, read straight from the record when
    /// it is a plain integer: analysis reads a few numbers from most records, and building each
    /// as a `FieldValue` first was most of that work.
    @inline(__always)
    func unsigned(_ i: Int, _ data: UnsafeRawPointer, size: Int) -> UInt64? {
        guard let f = integers[i] else { return value(i, data, size: size)?.unsignedValue }
        guard f.offset >= 0, f.offset + f.size <= size else { return nil }
        let raw = number(data + f.offset, f.size)
        return f.signed ? UInt64(bitPattern: signExtended(raw, f.size)) : raw
    }

    /// A signed number of `size` bytes read as `raw`, widened to 64 bits.
    @inline(__always)
    private func signExtended(_ raw: UInt64, _ size: Int) -> Int64 {
        let shift = UInt64(64 - size * 8)
        return Int64(bitPattern: raw << shift) >> Int64(shift)
    }

    /// Position of the field named `name`, if the type has one.
    func index(of name: String) -> Int? { position(named: name, in: specs, { $0.name }) }

    /// Every field present in a record, in format order.
    func fields(_ data: UnsafeRawPointer, size: Int) -> [Field] {
        var out: [Field] = []
        out.reserveCapacity(specs.count)
        for i in specs.indices {
            if let v = value(i, data, size: size) { out.append(Field(specs[i].name, v)) }
        }
        return out
    }

    /// A number of 1, 2, 4 or 8 bytes in the records' byte order (what `tep_read_number` does).
    @inline(__always)
    func number(_ p: UnsafeRawPointer, _ size: Int) -> UInt64 {
        switch size {
        case 1: return UInt64(p.load(as: UInt8.self))
        case 2: let v = p.loadUnaligned(as: UInt16.self); return UInt64(swapBytes ? v.byteSwapped : v)
        case 4: let v = p.loadUnaligned(as: UInt32.self); return UInt64(swapBytes ? v.byteSwapped : v)
        default: let v = p.loadUnaligned(as: UInt64.self); return swapBytes ? v.byteSwapped : v
        }
    }

    /// Field `i` of a record, nil when the record is too short to hold it.
    func value(_ i: Int, _ data: UnsafeRawPointer, size: Int) -> FieldValue? {
        let f = specs[i]
        var start = f.offset
        var length = f.size
        if f.isDynamic {
            guard f.offset + 4 <= size else { return nil }
            let loc = number(data + f.offset, 4)
            start = Int(loc & 0xffff)
            length = Int((loc >> 16) & 0xffff)
            if f.isRelative { start += f.offset + 4 }
        }
        guard start >= 0, start + length <= size else { return nil }
        if f.isString {
            let bytes = UnsafeRawBufferPointer(start: data + start, count: length)
            let end = bytes.firstIndex(of: 0) ?? length
            return .string(String(decoding: bytes[0..<end], as: UTF8.self))
        }
        if f.isArray || f.isDynamic {
            let es = f.elementSize > 0 ? f.elementSize : 1
            guard es == 1 || es == 2 || es == 4 || es == 8 else { return .array([]) }
            var out: [UInt64] = []
            out.reserveCapacity(length / es)
            var o = start
            while o + es <= start + length {
                out.append(number(data + o, es))
                o += es
            }
            return .array(out)
        }
        guard length == 1 || length == 2 || length == 4 || length == 8 else { return nil }
        let raw = number(data + start, length)
        return f.isSigned ? .signed(signExtended(raw, length)) : .unsigned(raw)
    }
}
