#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte-level framing of ftrace text lines: where the comm, pid, tgid, CPU, flags, timestamp and
/// event body are, as offsets into the line. Knows nothing of what events mean (that is
/// `TextPayload`), and creates no `String`s.
///
/// Accepted shapes (after leading blanks and `>` quote markers):
/// ```
/// comm-pid [cpu] flags ts: body          kernel `trace` / `trace_pipe`
/// comm-pid (tgid) [cpu] flags ts: body   with `options/record-tgid`, `(-------)` when unknown
/// comm-pid [cpu] ts: body                trace-cmd report (no flags column)
/// ```
/// The comm may hold spaces and dashes: the pid is the digits after the last dash before the
/// `[cpu]` (or `(tgid)`) column. Timestamps are `sec.usec`, `sec.nsec`, or a bare counter.
enum TextLineScanner {
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let dash: UInt8 = 0x2D
    static let colon: UInt8 = 0x3A
    static let dot: UInt8 = 0x2E
    static let openBracket: UInt8 = 0x5B
    static let closeBracket: UInt8 = 0x5D
    static let openParen: UInt8 = 0x28
    static let closeParen: UInt8 = 0x29
    static let quoteMarker: UInt8 = 0x3E  // '>'
    static let equals: UInt8 = 0x3D
    static let less: UInt8 = 0x3C
    static let hash: UInt8 = 0x23

    /// The framing of one event line; ranges index the scanned line.
    struct EventLine {
        var comm: Range<Int>
        var pid: Int32
        var tgid: Int32?
        var cpu: Int
        /// The irq-flags column (`d..1.`), absent in trace-cmd report's default output.
        var flags: Range<Int>?
        var timestampNs: UInt64
        /// Start of what follows `ts: ` (the event name, or the function for the function tracer).
        var body: Int
    }

    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }

    @inline(__always) static func isBlank(_ c: UInt8) -> Bool { c == space || c == tab }

    @inline(__always) static func hexValue(_ c: UInt8) -> UInt64? {
        switch c {
        case 0x30...0x39: return UInt64(c - 0x30)
        case 0x61...0x66: return UInt64(c - 0x61 + 10)
        case 0x41...0x46: return UInt64(c - 0x41 + 10)
        default: return nil
        }
    }

    /// First byte after leading blanks and e-mail quote markers (`> `, `>> `, `> > `).
    @inline(__always)
    static func contentStart(_ l: UnsafeBufferPointer<UInt8>) -> Int {
        var i = 0
        let n = l.count
        // The kernel pads comms to the right of a 16-column field: skip the spaces 8 at a time.
        if n >= 8, let base = l.baseAddress {
            let raw = UnsafeRawPointer(base)
            while i + 8 <= n && raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) == 0x2020_2020_2020_2020 { i += 8 }
        }
        while i < n, isBlank(l[i]) || l[i] == quoteMarker { i += 1 }
        return i
    }

    @inline(__always)
    static func hasPrefix(_ l: UnsafeBufferPointer<UInt8>, at i: Int, _ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard l.count - i >= count else { return false }
        let p = literal.utf8Start
        for k in 0..<count where l[i + k] != p[k] { return false }
        return true
    }

    /// Index of `literal` in `l[from..<to]`, or nil.
    static func find(_ l: UnsafeBufferPointer<UInt8>, _ literal: StaticString, from: Int, to: Int) -> Int? {
        let count = literal.utf8CodeUnitCount
        guard count > 0, to - from >= count else { return nil }
        let first = literal.utf8Start[0]
        var i = from
        while i <= to - count {
            if l[i] == first && hasPrefix(l, at: i, literal) { return i }
            i += 1
        }
        return nil
    }

    /// Parses an unsigned decimal in `l[from..<to]`; nil when empty, not all digits, or too long.
    static func decimal(_ l: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> UInt64? {
        guard from < to, to - from <= 19 else { return nil }
        var v: UInt64 = 0
        for i in from..<to {
            let c = l[i]
            guard isDigit(c) else { return nil }
            v = v &* 10 &+ UInt64(c &- 0x30)
        }
        return v
    }

    /// Parses hex (with or without `0x`) in `l[from..<to]`.
    static func hex(_ l: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> UInt64? {
        var i = from
        if to - i > 2, l[i] == 0x30, l[i + 1] | 0x20 == 0x78 { i += 2 }
        guard i < to, to - i <= 16 else { return nil }
        var v: UInt64 = 0
        while i < to {
            guard let d = hexValue(l[i]) else { return nil }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    /// Only the first bytes of a line are searched for the `[cpu]` column.
    static let columnSearchLimit = 256

    /// Frames an event line starting at `start` (see `contentStart`); nil when it is not one.
    /// - Complexity: O(line length).
    static func eventLine(_ l: UnsafeBufferPointer<UInt8>, from start: Int) -> EventLine? {
        let n = l.count
        let limit = min(n, start + columnSearchLimit)
        var search = start + 2
        while search < limit {
            // The next " [" ...
            guard let found = memchr(l.baseAddress! + search, Int32(openBracket), limit - search) else { return nil }
            let lb = l.baseAddress!.distance(to: found.assumingMemoryBound(to: UInt8.self))
            search = lb + 1
            guard l[lb - 1] == space else { continue }
            // ... holding a CPU number ...
            var i = lb + 1
            var cpu = 0
            while i < n && i - lb <= 6 && isDigit(l[i]) {
                cpu = cpu &* 10 &+ Int(l[i] &- 0x30)
                i += 1
            }
            guard i > lb + 1, i < n, l[i] == closeBracket else { continue }
            let afterCpu = i + 1
            // ... after `comm-pid` and an optional `(tgid)` column ...
            var e = lb - 1
            while e > start && l[e - 1] == space { e -= 1 }
            var tgid: Int32?
            if e > start && l[e - 1] == closeParen {
                var o = e - 2
                let stop = max(start, e - 14)
                while o >= stop && l[o] != openParen { o -= 1 }
                guard o >= stop, l[o] == openParen else { continue }
                var a = o + 1
                while a < e - 1 && l[a] == space { a += 1 }
                if let v = decimal(l, a, e - 1), v <= UInt64(Int32.max) {
                    tgid = Int32(v)
                } else {
                    var allDashes = a < e - 1
                    for k in a..<(e - 1) where l[k] != dash { allDashes = false; break }
                    guard allDashes else { continue }
                }
                e = o
                while e > start && l[e - 1] == space { e -= 1 }
            }
            var d = e
            var pidValue: UInt64 = 0
            var scale: UInt64 = 1
            while d > start && isDigit(l[d - 1]) && e - d < 10 {
                d -= 1
                pidValue &+= UInt64(l[d] &- 0x30) &* scale
                scale &*= 10
            }
            guard d < e, d > start, l[d - 1] == dash, pidValue <= UInt64(Int32.max) else { continue }
            // ... then flags and the timestamp.
            var p = afterCpu
            while p < n && l[p] == space { p += 1 }
            var flags: Range<Int>?
            var ts = timestamp(l, at: p)
            if ts == nil {
                var f = p
                while f < n && l[f] != space { f += 1 }
                guard f > p, f - p <= 8 else { continue }
                flags = p..<f
                while f < n && l[f] == space { f += 1 }
                ts = timestamp(l, at: f)
            }
            guard let (ns, tsEnd) = ts else { continue }
            var body = tsEnd
            while body < n && l[body] == space { body += 1 }
            return EventLine(comm: start..<(d - 1), pid: Int32(pidValue), tgid: tgid, cpu: cpu,
                             flags: flags, timestampNs: ns, body: body)
        }
        return nil
    }

    /// Parses `sec.frac:` at `p` (fraction scaled to nanoseconds; a bare `count:` is taken as is).
    /// Returns the value and the index after the colon, which must end the line or precede a blank.
    @inline(__always)
    static func timestamp(_ l: UnsafeBufferPointer<UInt8>, at p: Int) -> (UInt64, Int)? {
        let n = l.count
        var i = p
        var sec: UInt64 = 0
        while i < n && isDigit(l[i]) {
            guard i - p < 19 else { return nil }
            sec = sec &* 10 &+ UInt64(l[i] &- 0x30)
            i += 1
        }
        guard i > p, i < n else { return nil }
        var ns: UInt64
        if l[i] == dot {
            i += 1
            let f = i
            var frac: UInt64 = 0
            while i < n && isDigit(l[i]) {
                if i - f < 9 { frac = frac &* 10 &+ UInt64(l[i] &- 0x30) }
                i += 1
            }
            guard i > f else { return nil }
            var digits = min(i - f, 9)
            while digits < 9 { frac &*= 10; digits += 1 }
            let (s, o1) = sec.multipliedReportingOverflow(by: 1_000_000_000)
            guard !o1 else { return nil }
            ns = s &+ frac
        } else {
            ns = sec
        }
        guard i < n, l[i] == colon, i + 1 == n || isBlank(l[i + 1]) else { return nil }
        return (ns, i + 1)
    }
}
