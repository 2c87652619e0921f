/// Reads ftrace text — the kernel's `trace` / `trace_pipe` output, `trace-cmd report` (default and
/// `-R`), Android atrace/systrace text, and traces pasted into mail or prose — line by line.
///
/// Lines that are not trace lines are counted in `anomalies` (with the first `file:line`), never
/// thrown. Kernel stacks (`<stack trace>` + ` => sym` lines, or trace-cmd's `kernel_stack:
/// <stack trace >` + `=> sym (addr)`) are attached to the event before them on the same CPU;
/// `CPU:N [LOST M EVENTS]` / `CPU:N [M EVENTS DROPPED]` lines set `lostBefore` on the next event of
/// that CPU. Events keep the order of the text.
///
/// The text does not name tracepoint systems: `system` is "" for tracepoints and kprobes, "ftrace"
/// for the function tracer (`function`) and stack records (`kernel_stack`), "syscalls" for
/// `sys_enter_*`/`sys_exit_*`.
/// - Complexity: O(line length) per line; memory is bounded by the longest line and stack, not by
///   the length of the trace.
public final class TextTraceReader: RawEventSource, EventFiltering {
    typealias S = TextLineScanner

    public let path: String
    private let fileLocator: TraceLocator
    private let lines: LineReader
    private let attachStacks: Bool
    private var attacher = StackAttacher()
    private var payloads = TextPayload()
    private var finished = false

    public private(set) var anomalies = Anomalies()
    public private(set) var warnings: [TraceWarning] = []
    /// Event lines parsed (stack-record lines included).
    public private(set) var parsedLines = 0
    /// Lines that were neither events, headers, stack frames nor known decoration.
    public private(set) var unparsableLines = 0
    /// The tracer named by a `# tracer:` header, if any.
    public private(set) var tracer: String?

    private var cpus: Int?
    private var sawCpusLine = false
    private var sawHashHeader = false
    private var firstEventHadFlags: Bool?
    private var functionGraph = false
    private var html = false

    private enum StackMode { case none, kernel, user, skipped }
    private var stackMode = StackMode.none
    private var pendingStack: RawEvent?
    /// The interrupt context of `pendingStack`'s line.
    private var pendingStackContext: UInt8?
    /// False when lost events came between the stack record and the events before it on its CPU.
    private var pendingStackAttachable = true
    private let maxFrames = 512

    /// Event names to decode (tracepoints and kprobes); the others are counted in `skippedRecords`
    /// and not parsed, nor are the stacks after them. Events after lost events are always decoded.
    public var onlyEvents: Set<String>? {
        get { payloads.onlyEvents }
        set { payloads.onlyEvents = newValue }
    }
    /// Event and stack records skipped because of `onlyEvents`.
    public private(set) var skippedRecords = 0
    public var skippedSpan: ClosedRange<UInt64>? {
        skippedNs.first <= skippedNs.last ? skippedNs.first...skippedNs.last : nil
    }
    /// The least and greatest timestamps skipped (empty: first > last).
    private var skippedNs: (first: UInt64, last: UInt64) = (.max, 0)
    /// CPUs whose last event was skipped: a stack record next on that CPU is skipped too.
    private var skippedLast: [Bool] = []

    /// Lost-event counts waiting for the next event of their CPU (`UInt64.max` = unknown).
    private var pendingLost: [Int: UInt64] = [:]
    /// A `[LOST n EVENTS]` line that named no CPU: applies to the next event of any CPU.
    private var pendingLostAnyCPU: UInt64?

    /// Opens `path` ("-" for standard input) as uncompressed text.
    /// - Parameter attachStacks: attach each stack record to the event before it on its CPU (as
    ///   `RawEvent.stack`) instead of yielding it as a `kernel_stack` event of its own.
    public convenience init(path: String, attachStacks: Bool = true) throws {
        self.init(stream: try DescriptorStream(path: path), path: path, attachStacks: attachStacks)
    }

    /// Reads text from `stream` (already decompressed); `path` names it in locators and messages.
    init(stream: ByteStream, path: String, attachStacks: Bool = true, bufferSize: Int = 1 << 18) {
        self.path = path
        fileLocator = TraceLocator(file: path)
        self.lines = LineReader(stream: stream, bufferSize: bufferSize)
        self.attachStacks = attachStacks
    }

    public var info: TraceInfo {
        var i = TraceInfo(file: path, format: format)
        i.cpus = cpus
        return i
    }

    /// The kind of text, as far as the lines read so far tell.
    private var format: TraceInfo.Format {
        let report = sawCpusLine || (!sawHashHeader && firstEventHadFlags == false)
        guard report else { return .kernelText }
        if payloads.rawLooking > 0 && payloads.formattedLooking * 20 < payloads.rawLooking {
            return .traceCmdReportRaw
        }
        return .traceCmdReport
    }

    /// Spent events to refill (`recycle`).
    private var pool = EventPool()

    public func recycle(_ events: inout [RawEvent]) { pool.recycle(&events) }

    public func next() throws -> RawEvent? {
        while true {
            if let e = attacher.next() { return e }
            if finished { return nil }
            // Lines until one lets an event go (or the input ends).
            if try !lines.scan({ process($0); return attacher.hasReady }) {
                endStack()
                attacher.flush()
                finished = true
                if parsedLines == 0 && unparsableLines > 0 {
                    warnings.append(TraceWarning(file: path, offset: 0, message:
                        "no trace events in \(unparsableLines) lines: expected ftrace text (\"comm-pid [cpu] flags sec.usec: event: payload\"), trace-cmd report text, or a trace.dat"))
                }
            }
        }
    }

    // MARK: - Lines

    private var place: String { "\(path):\(lines.lineNumber)" }

    private func process(_ l: UnsafeBufferPointer<UInt8>) {
        let n = l.count
        var s = S.contentStart(l)
        if s < n, l[s] == 0x54, S.hasPrefix(l, at: s, "TRACE:") {
            // atrace prints `TRACE:` on a line of its own; pasted output may run on after it.
            s += 6
            while s < n && S.isBlank(l[s]) { s += 1 }
            if s == n { return }
        }
        guard s < n else {
            if stackMode != .none { endStack() }
            return
        }
        let c = l[s]
        if c == S.equals, s + 1 < n, l[s + 1] == S.quoteMarker {
            frame(l, from: s + 2)
            return
        }
        if stackMode != .none { endStack() }
        if c == S.hash {
            header(l, from: s)
            return
        }
        if let ev = S.eventLine(l, from: s) {
            event(l, ev)
            return
        }
        other(l, from: s)
    }

    private func unparsable() {
        unparsableLines += 1
        anomalies.count("unparsable line", .error, at: place)
    }

    /// The fields of the line being parsed.
    private var lineFields: [Field] = []

    private func event(_ l: UnsafeBufferPointer<UInt8>, _ ev: TextLineScanner.EventLine) {
        if firstEventHadFlags == nil { firstEventHadFlags = ev.flags != nil }
        let context = ev.flags.flatMap { $0.count >= 3 ? IRQContext.of(column: l[$0.lowerBound + 2]) : nil }
        // An event keeps the array it is given: the next line's fields then go to a new one. A
        // skipped line parses none, and allocates nothing.
        if !lineFields.isEmpty { lineFields.removeAll(keepingCapacity: true) }
        let filter = payloads.filtering && pendingLost.isEmpty && pendingLostAnyCPU == nil
        let body = payloads.parse(l, body: ev.body, fields: &lineFields, filter: filter)
        if filter {
            let cpu = ev.cpu
            switch body {
            case .skipped:
                parsedLines += 1
                skippedRecords += 1
                skippedNs = (min(skippedNs.first, ev.timestampNs), max(skippedNs.last, ev.timestampNs))
                if cpu >= 0 {
                    if cpu >= skippedLast.count { skippedLast += [Bool](repeating: false, count: cpu + 1 - skippedLast.count) }
                    skippedLast[cpu] = true
                }
                if attachStacks { attacher.skipped(cpu: cpu) }
                return
            case .kernelStack where cpu >= 0 && cpu < skippedLast.count && skippedLast[cpu]:
                parsedLines += 1
                skippedRecords += 1
                stackMode = .skipped
                return
            default:
                break
            }
        }
        switch body {
        case .event, .tracepoint:
            if ev.cpu >= 0, ev.cpu < skippedLast.count { skippedLast[ev.cpu] = false }
        default:
            break
        }
        var locator = fileLocator
        locator.offset = lines.lineOffset
        locator.line = lines.lineNumber
        switch body {
        case .unparsable:
            unparsable()
        case .skipped:
            break  // only returned when filtering, handled above
        case .userStack:
            parsedLines += 1
            stackMode = .user
            anomalies.count("user stack trace skipped", .info, at: place)
        case .kernelStack:
            parsedLines += 1
            stackMode = .kernel
            let e = RawEvent(timestampNs: ev.timestampNs, cpu: ev.cpu, pid: ev.pid, tgid: ev.tgid,
                             comm: payloads.intern(l, ev.comm), system: "ftrace", name: "kernel_stack",
                             payload: S.string(l, ev.body..<trimmedEnd(l)), locator: locator)
            e.lostBefore = takeLost(cpu: ev.cpu)
            e.stack.reserveCapacity(16)
            pendingStackAttachable = e.lostBefore == nil
            if !pendingStackAttachable {
                anomalies.count("stack trace after lost events (not attached)", .info, at: place)
            }
            pendingStack = e
            pendingStackContext = context
        case .tracepoint(let slot, let payloadStart):
            parsedLines += 1
            enqueue(lazyEvent(l, ev, name: .slot(slot), payloadStart: payloadStart, locator: locator), context: context)
        case .event(let system, let name, let payloadStart, let lazyFields):
            parsedLines += 1
            if lazyFields {
                enqueue(lazyEvent(l, ev, name: .string(name), payloadStart: payloadStart, locator: locator), context: context)
            } else {
                enqueue(RawEvent(timestampNs: ev.timestampNs, cpu: ev.cpu, pid: ev.pid, tgid: ev.tgid,
                                 comm: payloads.intern(l, ev.comm), system: system, name: name, fields: lineFields,
                                 payload: S.string(l, payloadStart..<max(payloadStart, trimmedEnd(l))),
                                 locator: locator), context: context)
            }
        }
    }

    /// Hands an event line's event to the stack attacher, with the events lost before it on its CPU.
    private func enqueue(_ e: RawEvent, context: UInt8?) {
        if !pendingLost.isEmpty || pendingLostAnyCPU != nil { e.lostBefore = takeLost(cpu: e.cpu) }
        attacher.add(e, isStack: false, context: context)
    }

    /// A tracepoint's or kprobe's event, its fields left in its copy of the payload; a spent
    /// event is refilled. `name` is the interner's slot for it, or the name itself when the
    /// interner does not keep it. The comm and name are made only when the spent event's differ.
    private func lazyEvent(_ l: UnsafeBufferPointer<UInt8>, _ ev: TextLineScanner.EventLine, name: TextName,
                           payloadStart: Int, locator: TraceLocator) -> RawEvent {
        let spent = pool.take()
        let commSlot = payloads.slot(l, ev.comm)
        var nameSlot: Int32 = -1
        let newName: String?
        switch name {
        case .slot(let slot):
            nameSlot = Int32(slot)
            newName = spent?.nameSlot == nameSlot ? nil : payloads.name(at: slot)
        case .string(let s):
            newName = s
        }
        let newComm = commSlot >= 0 && spent?.commSlot == Int32(commSlot) ? nil
            : commSlot >= 0 ? payloads.name(at: commSlot) : S.string(l, ev.comm)
        let (e, shape) = RawEvent.text(reusing: spent, timestampNs: ev.timestampNs, cpu: ev.cpu, pid: ev.pid, tgid: ev.tgid,
                                       comm: newComm, name: newName,
                                       payload: UnsafeBufferPointer(rebasing: l[min(payloadStart, l.count)...]),
                                       trimmedLength: max(0, trimmedEnd(l) - payloadStart), locator: locator, typeID: nameSlot)
        e.commSlot = Int32(commSlot)
        e.nameSlot = nameSlot
        payloads.count(shape)
        return e
    }

    /// A lazy event's name: the interner's slot for it, or the name.
    private enum TextName {
        case slot(Int)
        case string(String)
    }

    @inline(__always)
    private func trimmedEnd(_ l: UnsafeBufferPointer<UInt8>) -> Int {
        var e = l.count
        while e > 0 && S.isBlank(l[e - 1]) { e -= 1 }
        return e
    }

    private func takeLost(cpu: Int) -> UInt64? {
        var lost = pendingLost.removeValue(forKey: cpu)
        if let any = pendingLostAnyCPU {
            pendingLostAnyCPU = nil
            lost = Self.addLost(lost, any)
        }
        return lost
    }

    private static func addLost(_ a: UInt64?, _ b: UInt64) -> UInt64 {
        guard let a else { return b }
        if a == .max || b == .max { return .max }
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    // MARK: Stacks

    private func frame(_ l: UnsafeBufferPointer<UInt8>, from start: Int) {
        switch stackMode {
        case .user, .skipped: return
        case .none:
            unparsable()
            return
        case .kernel: break
        }
        let n = l.count
        var p = start
        while p < n && S.isBlank(l[p]) { p += 1 }
        let a = p
        while p < n && !S.isBlank(l[p]) && l[p] != 0x2B { p += 1 }  // '+'
        guard p > a else { return }
        let symbol = payloads.intern(l, a..<p)
        var offset: UInt64?
        if p < n && l[p] == 0x2B {
            let o = p + 1
            p = o
            while p < n && l[p] != 0x2F && !S.isBlank(l[p]) { p += 1 }  // '/'
            offset = S.hex(l, o, p)
            while p < n && !S.isBlank(l[p]) { p += 1 }
        }
        var module: String?
        var address: UInt64?
        while p < n {
            while p < n && S.isBlank(l[p]) { p += 1 }
            guard p < n else { break }
            let open = l[p]
            let close: UInt8 = open == S.openBracket ? S.closeBracket : open == S.openParen ? S.closeParen : 0
            let b = p + 1
            var e = b
            while e < n && l[e] != close && (close != 0 || !S.isBlank(l[e])) { e += 1 }
            if open == S.openBracket { module = payloads.intern(l, b..<e) }
            if open == S.openParen { address = S.hex(l, b, e) }
            p = e + 1
        }
        if address == nil, p - a > 2, l[a] == 0x30, S.hasPrefix(l, at: a, "0x") {
            var e = a
            while e < n && !S.isBlank(l[e]) && l[e] != 0x2B { e += 1 }
            address = S.hex(l, a, e)
        }
        guard pendingStack != nil else { return }
        if pendingStack!.stack.count < maxFrames {
            pendingStack!.stack.append(StackFrame(symbol: symbol, offset: offset, module: module, address: address))
        } else {
            anomalies.count("stack frames beyond \(maxFrames) dropped", .info, at: place)
        }
    }

    private func endStack() {
        if stackMode == .kernel, let e = pendingStack {
            attacher.add(e, isStack: attachStacks && pendingStackAttachable, context: pendingStackContext)
        }
        pendingStack = nil
        stackMode = .none
    }

    // MARK: Headers and other lines

    private func header(_ l: UnsafeBufferPointer<UInt8>, from s: Int) {
        sawHashHeader = true
        let n = l.count
        var p = s + 1
        while p < n && S.isBlank(l[p]) { p += 1 }
        if S.hasPrefix(l, at: p, "tracer:") {
            var a = p + 7
            while a < n && S.isBlank(l[a]) { a += 1 }
            let name = S.string(l, a..<trimmedEnd(l))
            tracer = name
            functionGraph = name == "function_graph"
        } else if S.hasPrefix(l, at: p, "entries-in-buffer/entries-written:") {
            var a = p + 34
            while a < n && S.isBlank(l[a]) { a += 1 }
            var b = a
            while b < n && S.isDigit(l[b]) { b += 1 }
            var c = b + 1
            while c < n && S.isDigit(l[c]) { c += 1 }
            if b < n, l[b] == 0x2F, let inBuffer = S.decimal(l, a, b), let written = S.decimal(l, b + 1, c),
               written > inBuffer {
                anomalies.count("events overwritten in the ring buffer before reading", .dataLoss,
                                by: written - inBuffer, at: place)
            }
        }
        if let at = S.find(l, "#P:", from: s + 1, to: n) {
            var e = at + 3
            while e < n && S.isDigit(l[e]) { e += 1 }
            if let v = S.decimal(l, at + 3, e) { cpus = Int(v) }
        }
    }

    private func other(_ l: UnsafeBufferPointer<UInt8>, from s: Int) {
        let n = l.count
        if S.hasPrefix(l, at: s, "CPU:") || l[s] == S.openBracket {
            if lostLine(l, from: s) { return }
        }
        if S.hasPrefix(l, at: s, "cpus=") {
            var e = s + 5
            while e < n && S.isDigit(l[e]) { e += 1 }
            if let v = S.decimal(l, s + 5, e) {
                cpus = Int(v)
                sawCpusLine = true
                return
            }
        }
        if S.hasPrefix(l, at: s, "version =") { return }
        if S.hasPrefix(l, at: s, "CPU "), S.find(l, " is empty", from: s, to: n) != nil { return }
        if S.hasPrefix(l, at: s, "<!DOCTYPE") || S.hasPrefix(l, at: s, "<!doctype")
            || S.hasPrefix(l, at: s, "<html") || S.hasPrefix(l, at: s, "<HTML") {
            html = true
        }
        if functionGraph || isFunctionGraphLine(l, from: s) {
            anomalies.count("function_graph lines skipped", .info, at: place)
            return
        }
        if html {
            anomalies.count("HTML lines skipped", .info, at: place)
            return
        }
        unparsable()
    }

    /// ` 1)   0.123 us    |  foo();` or ` 1)               |  foo() {`.
    private func isFunctionGraphLine(_ l: UnsafeBufferPointer<UInt8>, from s: Int) -> Bool {
        var p = s
        while p < l.count && S.isDigit(l[p]) { p += 1 }
        guard p > s, p < l.count, l[p] == S.closeParen else { return false }
        return S.find(l, "|", from: p, to: l.count) != nil
    }

    /// `CPU:N [LOST M EVENTS]`, `CPU:N [M EVENTS DROPPED]`, `CPU:N [EVENTS DROPPED]`, `[LOST M EVENTS]`.
    private func lostLine(_ l: UnsafeBufferPointer<UInt8>, from s: Int) -> Bool {
        let n = l.count
        var p = s
        var cpu: Int?
        if S.hasPrefix(l, at: p, "CPU:") {
            p += 4
            let a = p
            while p < n && S.isDigit(l[p]) { p += 1 }
            guard let v = S.decimal(l, a, p), v < 1 << 20 else { return false }
            cpu = Int(v)
            while p < n && S.isBlank(l[p]) { p += 1 }
        }
        guard p < n, l[p] == S.openBracket else { return false }
        p += 1
        if S.hasPrefix(l, at: p, "LOST ") { p += 5 }
        let a = p
        while p < n && S.isDigit(l[p]) { p += 1 }
        let count = S.decimal(l, a, p)
        while p < n && S.isBlank(l[p]) { p += 1 }
        guard S.hasPrefix(l, at: p, "EVENTS") else { return false }
        let lost = count ?? .max
        if let count {
            anomalies.count("lost events", .dataLoss, by: count, at: place)
        } else {
            anomalies.count("lost-event marks without a count", .dataLoss, at: place)
        }
        if let cpu {
            pendingLost[cpu] = Self.addLost(pendingLost[cpu], lost)
        } else {
            pendingLostAnyCPU = Self.addLost(pendingLostAnyCPU, lost)
        }
        return true
    }
}
