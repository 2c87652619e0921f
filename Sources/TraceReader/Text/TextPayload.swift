/// What the body of an event line (after `ts: `) says: the event's name, its system when the text
/// shows it, and its fields. Field values are kept as the strings printed; names and comms are
/// interned. A tracepoint's or kprobe's fields are left in the line for the event to read from its
/// copy of the payload when asked (`PayloadWords`, `RawEvent.text`).
///
/// Shapes understood:
/// - tracepoints `name: payload`, with every `key=value` of the payload as a field (other words,
///   such as `bdi 254:0:`, are skipped);
/// - kprobes `name: (sym+0x0/0x40) a=1` -> `__probe_sym`, and kretprobes
///   `name: (caller+0x4c/0x1e0 <- func) ret=0x0` -> `__probe_caller`, `__probe_func`. trace-cmd
///   report prints them as bare addresses in the other order, `(func <- ret_ip)`: those also give
///   `__probe_ip` / `__probe_ret_ip` as `-R` names them;
/// - the function tracer `func <-parent` -> `ftrace:function` with `ip`, `parent_ip`;
/// - syscalls `sys_x(a: 1, b: 2)` -> `syscalls:sys_enter_x` and `sys_x -> 0x0` ->
///   `syscalls:sys_exit_x` with `ret`.
struct TextPayload {
    enum Body {
        /// A `<stack trace>` record (kernel text) or `kernel_stack: <stack trace >` (trace-cmd).
        case kernelStack
        /// A `<user stack trace>` record.
        case userStack
        /// An event; `fields` holds its fields, unless `lazyFields`: then they are the
        /// `key=value` words from `payloadStart` (`PayloadWords`), for the event to read when asked.
        case event(system: String, name: String, payloadStart: Int, lazyFields: Bool = false)
        /// A tracepoint or kprobe whose name the interner keeps in `slot` (`name(at:)`): its
        /// fields are the `key=value` words from `payloadStart`, as for `event(lazyFields:)`. The
        /// name is not made here: a recycled event of the same type has it already.
        case tracepoint(slot: Int, payloadStart: Int)
        /// An event `onlyEvents` does not ask for: its fields were not parsed.
        case skipped
        case unparsable
    }

    private var interner = StringInterner()
    /// Tracepoint and kprobe names to parse; nil parses all.
    var onlyEvents: Set<String>? {
        didSet {
            filtering = onlyEvents != nil
            wantedBySlot = []
        }
    }
    /// `onlyEvents != nil`, read per line without a reference count on the set.
    private(set) var filtering = false
    /// Per interner slot: 0 unknown, 1 wanted, 2 not wanted.
    private var wantedBySlot: [UInt8] = []
    /// Events whose payload held only `key=value` words (as `trace-cmd report -R` prints them).
    private(set) var rawLooking = 0
    /// Events whose payload held other words.
    private(set) var formattedLooking = 0

    typealias S = TextLineScanner

    mutating func intern(_ l: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        interner.intern(l, range)
    }

    /// The interner's slot for `l[range]` (-1: not kept), for `name(at:)`.
    mutating func slot(_ l: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int {
        interner.slot(UnsafeBufferPointer(rebasing: l[range]))
    }

    /// The string interned in `slot`.
    func name(at slot: Int) -> String { interner.string(at: slot) }

    /// Classifies the body starting at `b` and appends its fields to `fields` (a tracepoint's or
    /// kprobe's are left in the line: `.event(lazyFields: true)`).
    /// With `filter`, a tracepoint or kprobe not in `onlyEvents` is `.skipped` unparsed.
    mutating func parse(_ l: UnsafeBufferPointer<UInt8>, body b: Int, fields: inout [Field], filter: Bool = false) -> Body {
        let n = l.count
        guard b < n else { return .unparsable }
        if l[b] == S.less {
            if S.hasPrefix(l, at: b, "<stack trace") { return .kernelStack }
            if S.hasPrefix(l, at: b, "<user stack trace") { return .userStack }
            return .unparsable
        }
        var i = b
        // The name runs to a blank, `:` or `(`: one test of a mask for the bytes below 64, none
        // for the letters and `_` that make up most of a name.
        let stops: UInt64 = 1 << S.space | 1 << S.colon | 1 << S.openParen | 1 << S.tab
        while i < n {
            let c = l[i]
            if c < 64 && stops >> c & 1 != 0 { break }
            i += 1
        }
        if i < n, l[i] == S.colon, i > b, i + 1 == n || S.isBlank(l[i + 1]) {
            var p = i + 1
            while p < n && S.isBlank(l[p]) { p += 1 }
            if i - b == 12, S.hasPrefix(l, at: b, "kernel_stack"), S.hasPrefix(l, at: p, "<stack trace") {
                return .kernelStack
            }
            if i - b == 10, S.hasPrefix(l, at: b, "user_stack"), S.hasPrefix(l, at: p, "<user stack trace") {
                return .userStack
            }
            let bytes = UnsafeBufferPointer(rebasing: l[b..<i])
            let slot = interner.slot(bytes)
            // Most lines of a large trace are skipped: their names are never made into strings.
            if filter, filtering, slot >= 0, !wanted(slot: slot) { return .skipped }
            if slot >= 0 { return .tracepoint(slot: slot, payloadStart: p) }
            let name = String(decoding: bytes, as: UTF8.self)
            if filter, filtering, !onlyEvents!.contains(name) { return .skipped }
            return .event(system: "", name: name, payloadStart: p, lazyFields: true)
        }
        if i < n, l[i] == S.openParen, i - b > 4, S.hasPrefix(l, at: b, "sys_") {
            let name = interner.intern(syscallName("sys_enter_", l, (b + 4)..<i))
            syscallArguments(l, from: i + 1, into: &fields)
            return .event(system: "syscalls", name: name, payloadStart: b)
        }
        // A word without `name:`: a syscall exit or the function tracer.
        while i < n && !S.isBlank(l[i]) { i += 1 }
        guard i > b else { return .unparsable }
        let word = b..<i
        var p = i
        while p < n && S.isBlank(l[p]) { p += 1 }
        if S.hasPrefix(l, at: p, "->"), i - b > 4, S.hasPrefix(l, at: b, "sys_") {
            let name = interner.intern(syscallName("sys_exit_", l, (b + 4)..<i))
            var r = p + 2
            while r < n && S.isBlank(l[r]) { r += 1 }
            var e = r
            while e < n && !S.isBlank(l[e]) { e += 1 }
            if e > r { fields.append(Field("ret", .string(S.string(l, r..<e)))) }
            return .event(system: "syscalls", name: name, payloadStart: b)
        }
        fields.append(Field("ip", .string(S.string(l, word))))
        if S.hasPrefix(l, at: p, "<-") {
            let a = p + 2
            var e = a
            while e < n && !S.isBlank(l[e]) { e += 1 }
            if e > a { fields.append(Field("parent_ip", .string(S.string(l, a..<e)))) }
        }
        return .event(system: "ftrace", name: "function", payloadStart: b)
    }

    /// Whether the name interned in `slot` is in `onlyEvents` (decided once per slot).
    private mutating func wanted(slot: Int) -> Bool {
        if wantedBySlot.isEmpty { wantedBySlot = [UInt8](repeating: 0, count: interner.slotCount) }
        if wantedBySlot[slot] == 0 { wantedBySlot[slot] = onlyEvents!.contains(interner.string(at: slot)) ? 1 : 2 }
        return wantedBySlot[slot] == 1
    }

    private func syscallName(_ prefix: StaticString, _ l: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> [UInt8] {
        var bytes = [UInt8](UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount))
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: l[r]))
        return bytes
    }

    /// `a: 1, b: 0x2)` -> fields `a`, `b`.
    private mutating func syscallArguments(_ l: UnsafeBufferPointer<UInt8>, from start: Int, into fields: inout [Field]) {
        let n = l.count
        var p = start
        while p < n {
            while p < n && S.isBlank(l[p]) { p += 1 }
            var k = p
            while k < n && l[k] != S.colon && l[k] != S.closeParen && l[k] != 0x2C { k += 1 }
            guard k < n, l[k] == S.colon, k > p else { return }
            var v = k + 1
            while v < n && S.isBlank(l[v]) { v += 1 }
            var e = v
            while e < n && l[e] != 0x2C && l[e] != S.closeParen { e += 1 }
            fields.append(Field(interner.intern(l, p..<k), .string(S.string(l, v..<e))))
            guard e < n, l[e] == 0x2C else { return }
            p = e + 1
        }
    }

    /// Counts a lazily read payload's shape (`rawLooking` or `formattedLooking`).
    mutating func count(_ words: PayloadWords.Shape) {
        if words.other || words.pairs == 0 { formattedLooking += 1 } else { rawLooking += 1 }
    }
}

/// The words of a tracepoint or kprobe payload: `key=value` pairs (values quoted, or running to
/// a blank outside brackets), a kprobe's leading `(sym+0x0/0x40)` or `(caller <- func)`, and
/// other words, which are skipped. One walk serves the text reader (every field) and a text
/// event's lazy lookups (one field, no strings made).
enum PayloadWords {
    typealias S = TextLineScanner

    struct Shape {
        /// A word that was not `key=value` (a kprobe's parentheses included).
        var other = false
        var pairs = 0
    }

    /// What a walk tells, word by word.
    protocol Visitor {
        /// The inside of a leading `( ... )`.
        mutating func probe(_ inner: Range<Int>)
        /// A `key=value` word (the value without its quotes).
        mutating func pair(key: Range<Int>, value: Range<Int>)
    }

    /// Tells `visitor` of the inside of a leading `( ... )`, then of each `key=value` in order.
    /// Generic, not closures: the reader walks every wanted line, and the calls inline.
    @inline(__always)
    static func walk<V: Visitor>(_ l: UnsafeBufferPointer<UInt8>, from start: Int, into visitor: inout V) -> Shape {
        let n = l.count
        var p = start
        var shape = Shape()
        if p < n, l[p] == S.openParen {
            var close = p + 1
            while close < n && l[close] != S.closeParen { close += 1 }
            if close < n {
                visitor.probe((p + 1)..<close)
                p = close + 1
                shape.other = true
            }
        }
        while p < n {
            while p < n && S.isBlank(l[p]) { p += 1 }
            guard p < n else { break }
            let k = p
            while p < n && isKeyByte(l[p]) { p += 1 }
            guard p < n, p > k, l[p] == S.equals else {
                // Not `key=value`: skip the word.
                shape.other = true
                while p < n && !S.isBlank(l[p]) { p += 1 }
                continue
            }
            let key = k..<p
            p += 1
            let v: Range<Int>
            if p < n, l[p] == 0x22 {
                // "quoted value"
                let a = p + 1
                p = a
                while p < n && l[p] != 0x22 { p += 1 }
                v = a..<p
                if p < n { p += 1 }
            } else {
                let a = p
                var depth = 0
                while p < n {
                    let c = l[p]
                    if c == S.openBracket { depth += 1 } else if c == S.closeBracket { depth -= 1 } else if depth <= 0 && S.isBlank(c) { break }
                    p += 1
                }
                v = a..<p
            }
            shape.pairs += 1
            visitor.pair(key: key, value: v)
        }
        return shape
    }

    /// Every field of the payload, as `TextPayload` gives them (keys not interned).
    static func fields(_ l: UnsafeBufferPointer<UInt8>, from start: Int) -> [Field] {
        struct Collect: Visitor {
            let l: UnsafeBufferPointer<UInt8>
            var fields: [Field] = []
            mutating func probe(_ inner: Range<Int>) { PayloadWords.probeFields(l, inner, into: &fields) }
            mutating func pair(key: Range<Int>, value: Range<Int>) {
                fields.append(Field(TextLineScanner.string(l, key), .string(TextLineScanner.string(l, value))))
            }
        }
        var collect = Collect(l: l)
        _ = walk(l, from: start, into: &collect)
        return collect.fields
    }

    /// The fields of a kprobe's `(sym+0x0/0x40)` or kretprobe's `(caller+0x4c/0x1e0 <- func)`.
    static func probeFields(_ l: UnsafeBufferPointer<UInt8>, _ inner: Range<Int>, into fields: inout [Field]) {
        if let arrow = S.find(l, " <- ", from: inner.lowerBound, to: inner.upperBound) {
            let left = inner.lowerBound..<arrow, right = (arrow + 4)..<inner.upperBound
            if isBareHex(l, left) && isBareHex(l, right) {
                // trace-cmd report: print fmt "(%lx <- %lx)", __probe_func, __probe_ret_ip
                let ret = S.string(l, right)
                fields.append(Field("__probe_func", .string(S.string(l, left))))
                fields.append(Field("__probe_caller", .string(ret)))
                fields.append(Field("__probe_ret_ip", .string(ret)))
            } else {
                fields.append(Field("__probe_caller", .string(S.string(l, left))))
                fields.append(Field("__probe_func", .string(S.string(l, right))))
            }
        } else {
            let sym = S.string(l, inner)
            fields.append(Field("__probe_sym", .string(sym)))
            if isBareHex(l, inner) { fields.append(Field("__probe_ip", .string(sym))) }
        }
    }

    @inline(__always)
    private static func isBareHex(_ l: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Bool {
        guard r.count >= 8 else { return false }
        for i in r where S.hexValue(l[i]) == nil { return false }
        return true
    }

    /// Key characters: letters, digits, `_`, `.`, `-`, `[`, `]` (array elements, e.g. `args[0]`).
    @inline(__always)
    private static func isKeyByte(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F, 0x2E, 0x2D, 0x5B, 0x5D: return true
        default: return false
        }
    }
}
