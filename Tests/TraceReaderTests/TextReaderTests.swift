import Foundation
import XCTest
@testable import TraceReader

/// Serves bytes in chunks chosen by `chunk` (1 byte, random sizes, or all at once), to check that
/// line framing does not depend on where reads end (as swift-nio's ByteToMessageDecoderVerifier).
final class TextChunkStream: ByteStream {
    private let bytes: [UInt8]
    private var position = 0
    private var chunk: () -> Int

    init(_ bytes: [UInt8], chunk: @escaping () -> Int) {
        self.bytes = bytes
        self.chunk = chunk
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, max(1, chunk()), bytes.count - position)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
        }
        position += n
        return n
    }
}

/// A reproducible generator (SplitMix64) for random chunk sizes.
struct TextSplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum TextFeed {
    case whole, oneByte, random(seed: UInt64)
}

/// Reads all events of `bytes` through `TextTraceReader`, fed as `feed` says.
func readText(_ bytes: [UInt8], feed: TextFeed = .whole, attachStacks: Bool = true,
              bufferSize: Int = 1 << 18, path: String = "fixture") throws -> ([RawEvent], TextTraceReader) {
    let stream: TextChunkStream
    switch feed {
    case .whole: stream = TextChunkStream(bytes) { Int.max }
    case .oneByte: stream = TextChunkStream(bytes) { 1 }
    case .random(let seed):
        var rng = TextSplitMix(state: seed)
        stream = TextChunkStream(bytes) { Int.random(in: 1...700, using: &rng) }
    }
    let reader = TextTraceReader(stream: stream, path: path, attachStacks: attachStacks, bufferSize: bufferSize)
    var events: [RawEvent] = []
    while let e = try reader.next() { events.append(e) }
    return (events, reader)
}

func readText(_ text: String, feed: TextFeed = .whole, attachStacks: Bool = true) throws -> ([RawEvent], TextTraceReader) {
    try readText(Array(text.utf8), feed: feed, attachStacks: attachStacks)
}

/// Everything an event carries, as one comparable line.
func describeTextEvent(_ e: RawEvent, offsets: Bool = true) -> String {
    var s = "\(e.timestampNs) cpu=\(e.cpu) pid=\(e.pid) tgid=\(e.tgid.map(String.init) ?? "-") comm=[\(e.comm)] "
    s += "\(e.system):\(e.name) "
    s += e.fields.map { "\($0.name)=\($0.value)" }.joined(separator: "|")
    s += " payload=[\(e.payload ?? "nil")] lost=\(e.lostBefore.map(String.init) ?? "-") "
    s += "stack=\(e.stack.map { "\($0.symbol)+\($0.offset.map(String.init) ?? "")[\($0.module ?? "")]@\($0.address.map { String($0, radix: 16) } ?? "")" }) "
    s += "at=\(e.locator.line ?? -1)"
    if offsets { s += "@\(e.locator.offset.map(String.init) ?? "-")" }
    return s
}

/// Small excerpts of real traces (minimally changed for each variant), read from fixture strings.
final class TextReaderTests: XCTestCase {
    /// The byte-level fast path of `parseKernelInteger` must answer as Swift's generic parser
    /// does, including where it hands over to it (signs, overflow, stray characters).
    func testIntegerParsingAgreesWithTheGenericParser() {
        let inputs = ["0", "7", "42", "007", "1234567890123456789", "18446744073709551615", "18446744073709551616",
                      "99999999999999999999", "ff", "FF", "7fffffffffffffff", "ffffffffffffffff", "10000000000000000",
                      "0x", "0x0", "0x7b", "0X7B", "0xffffffffffffffff", "0x10000000000000000", "0x1g", "0x0x5", "+5", "-0", "-5",
                      "", " 5", "5 ", "12a", "0b1", "0xdeadbeef"]
        for text in inputs {
            for hex in [false, true] {
                let generic: UInt64? = text.hasPrefix("0x") || text.hasPrefix("0X")
                    ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text, radix: hex ? 16 : 10)
                XCTAssertEqual(parseKernelInteger(text, hex: hex), generic, "\(text) hex \(hex)")
            }
            XCTAssertEqual(parseUnsigned(Substring(text), radix: 16), UInt64(text, radix: 16), text)
            XCTAssertEqual(parseUnsigned(Substring(text), radix: 10), UInt64(text, radix: 10), text)
        }
    }

    /// Kernel `trace` text: lines from the 6.1 guest and 6.18 host captures, changed to show a comm
    /// with a space, a comm with dashes, the tgid column (number and dashes), 4- and 5-char flags,
    /// a 9-digit timestamp, a module frame, a lost-events line, the function tracer, syscalls, a
    /// user stack and a marker.
    static let kernelText = """
        # tracer: nop
        #
        # entries-in-buffer/entries-written: 10/13   #P:4
        #
                    init-135     [001] ...2.    11.019980: release_pages: (release_pages+0x0/0x470) pages=0xffff88805df2dc48 nr=3
             Web Content-4321    [002] d..1.   543.246122123: writeback_dirty_folio: bdi 254:0: ino=266338304 index=21234228
             Web Content-4321    [002] d..1.   543.246160456: <stack trace>
         => trace_event_raw_event_writeback_folio_template+0x6e/0xa0
         => __folio_mark_dirty+0x1e/0x50
         => nvme_setup_cmd+0x10/0x200 [nvme_core]
         => 0xffffffffc02060c8
          kworker/u8:2-dm-1234  (   77) [000] d.h1   543.300000: folio_mark_dirty_ret: (shmem_write_end+0x4c/0x1e0 <- folio_mark_dirty) newly_dirty=0
                   <...>-1234  (-------) [003] ....   543.400001: mm_filemap_add_to_page_cache: dev 254:0 ino 5108df pfn=0x114500 ofs=0 order=6
        CPU:3 [LOST 42 EVENTS]
                   <...>-1234  (-------) [003] ....   543.500002: writeback_dirty_folio: bdi 254:0: ino=5310687 index=0
                    bash-1977    [000] .....   543.600000: do_sys_open <-__x64_sys_openat
                    bash-1977    [000] .....   543.600100: sys_openat(dfd: ffffff9c, filename: 7ffd3b5c, flags: 88000, mode: 0)
                    bash-1977    [000] .....   543.600200: sys_openat -> 0x3
                    bash-1977    [000] .....   543.600300: <user stack trace>
         =>  <00007f1234567890>
         =>  <00007f12345678a0>
                    bash-1977    [000] .....   543.600400: tracing_mark_write: GT: process_vm start rounds=40

        """

    func testKernelTextVariants() throws {
        let (events, reader) = try readText(Self.kernelText)
        XCTAssertEqual(events.map(\.name), ["release_pages", "writeback_dirty_folio", "folio_mark_dirty_ret",
                                            "mm_filemap_add_to_page_cache", "writeback_dirty_folio", "function",
                                            "sys_enter_openat", "sys_exit_openat", "tracing_mark_write"])
        XCTAssertEqual(reader.info.format, .kernelText)
        XCTAssertEqual(reader.info.cpus, 4)
        XCTAssertEqual(reader.unparsableLines, 0)
        XCTAssertEqual(reader.parsedLines, 11)  // 9 events, 1 stack, 1 user stack
        XCTAssertEqual(reader.anomalies["events overwritten in the ring buffer before reading"], 3)
        XCTAssertEqual(reader.anomalies["user stack trace skipped"], 1)
        XCTAssertEqual(reader.anomalies["lost events"], 42)

        let kprobe = events[0]
        XCTAssertEqual(kprobe.comm, "init")
        XCTAssertEqual(kprobe.pid, 135)
        XCTAssertNil(kprobe.tgid)
        XCTAssertEqual(kprobe.cpu, 1)
        XCTAssertEqual(kprobe.timestampNs, 11_019_980_000)
        XCTAssertEqual(kprobe.system, "")
        XCTAssertEqual(kprobe[field: "__probe_sym"], .string("release_pages+0x0/0x470"))
        XCTAssertEqual(kprobe[field: "pages"], .string("0xffff88805df2dc48"))
        XCTAssertEqual(kprobe[field: "nr"]?.unsignedValue, 3)
        XCTAssertEqual(kprobe.payload, "(release_pages+0x0/0x470) pages=0xffff88805df2dc48 nr=3")
        let offset = Self.kernelText.split(separator: "\n", omittingEmptySubsequences: false).prefix(4)
            .map { $0.utf8.count + 1 }.reduce(0, +)
        XCTAssertEqual(kprobe.locator, TraceLocator(file: "fixture", offset: UInt64(offset), line: 5))

        let dirty = events[1]
        XCTAssertEqual(dirty.comm, "Web Content")
        XCTAssertEqual(dirty.pid, 4321)
        XCTAssertEqual(dirty.timestampNs, 543_246_122_123)
        XCTAssertEqual(dirty.fields.map(\.name), ["ino", "index"])
        XCTAssertEqual(dirty.stack, [
            StackFrame(symbol: "trace_event_raw_event_writeback_folio_template", offset: 0x6e),
            StackFrame(symbol: "__folio_mark_dirty", offset: 0x1e),
            StackFrame(symbol: "nvme_setup_cmd", offset: 0x10, module: "nvme_core"),
            StackFrame(symbol: "0xffffffffc02060c8", address: 0xffff_ffff_c020_60c8),
        ])

        let ret = events[2]
        XCTAssertEqual(ret.comm, "kworker/u8:2-dm")
        XCTAssertEqual(ret.pid, 1234)
        XCTAssertEqual(ret.tgid, 77)
        XCTAssertEqual(ret.cpu, 0)
        XCTAssertEqual(ret.timestampNs, 543_300_000_000)
        XCTAssertEqual(ret[field: "__probe_caller"], .string("shmem_write_end+0x4c/0x1e0"))
        XCTAssertEqual(ret[field: "__probe_func"], .string("folio_mark_dirty"))
        XCTAssertEqual(ret[field: "newly_dirty"], .string("0"))

        XCTAssertEqual(events[3].comm, "<...>")
        XCTAssertNil(events[3].tgid)
        XCTAssertEqual(events[3].fields.map(\.name), ["pfn", "ofs", "order"])
        XCTAssertNil(events[3].lostBefore)
        XCTAssertEqual(events[4].lostBefore, 42)
        XCTAssertEqual(events[4].cpu, 3)

        XCTAssertEqual(events[5].system, "ftrace")
        XCTAssertEqual(events[5][field: "ip"], .string("do_sys_open"))
        XCTAssertEqual(events[5][field: "parent_ip"], .string("__x64_sys_openat"))
        XCTAssertEqual(events[6].system, "syscalls")
        XCTAssertEqual(events[6].fields.map(\.name), ["dfd", "filename", "flags", "mode"])
        XCTAssertEqual(events[6][field: "flags"], .string("88000"))
        XCTAssertEqual(events[7][field: "ret"], .string("0x3"))
        XCTAssertEqual(events[8].payload, "GT: process_vm start rounds=40")
        XCTAssertEqual(events[8].fields.map(\.name), ["rounds"])
        XCTAssertTrue(events.allSatisfy { $0.stack.isEmpty || $0.locator.line == 6 })
    }

    func testStackRecordsAreEventsWhenNotAttached() throws {
        let (events, _) = try readText(Self.kernelText, attachStacks: false)
        XCTAssertEqual(events.count, 10)
        XCTAssertEqual(events[2].name, "kernel_stack")
        XCTAssertEqual(events[2].system, "ftrace")
        XCTAssertEqual(events[2].stack.count, 4)
        XCTAssertEqual(events[2].timestampNs, 543_246_160_456)
        XCTAssertTrue(events[1].stack.isEmpty)
    }

    /// Whole, one byte at a time, random chunks, a tiny line buffer: the same events.
    func testFeedingWholeByteByByteAndInChunksGivesTheSameEvents() throws {
        let texts = [Self.kernelText, Self.prose, Self.systrace, Self.report, Self.reportRaw, Self.functionGraph]
        for text in texts {
            let bytes = Array(text.utf8)
            let whole = try readText(bytes).0.map { describeTextEvent($0) }
            XCTAssertFalse(whole.isEmpty && text != Self.functionGraph)
            XCTAssertEqual(try readText(bytes, feed: .oneByte).0.map { describeTextEvent($0) }, whole)
            for seed in 1...5 as ClosedRange<UInt64> {
                XCTAssertEqual(try readText(bytes, feed: .random(seed: seed)).0.map { describeTextEvent($0) }, whole)
            }
            XCTAssertEqual(try readText(bytes, feed: .random(seed: 9), bufferSize: 16).0.map { describeTextEvent($0) }, whole)
        }
    }

    /// `\r\n` line ends change offsets only; the last line may lack its newline.
    func testCRLFAndMissingFinalNewline() throws {
        let lf = try readText(Self.kernelText).0.map { describeTextEvent($0, offsets: false) }
        let crlf = Self.kernelText.replacingOccurrences(of: "\n", with: "\r\n")
        XCTAssertEqual(try readText(crlf).0.map { describeTextEvent($0, offsets: false) }, lf)
        XCTAssertEqual(try readText(crlf, feed: .oneByte).0.map { describeTextEvent($0, offsets: false) }, lf)
        let (cut, reader) = try readText(String(Self.kernelText.dropLast()))
        XCTAssertEqual(cut.map { describeTextEvent($0, offsets: false) }, lf)
        XCTAssertEqual(reader.unparsableLines, 0)
    }

    static let prose = """
        Hi all,

        we see this on 6.1 when the pin is held:

        >             init-135     [001] ...2.    11.019980: release_pages: (release_pages+0x0/0x470) pages=0xffff88805df2dc48 nr=3
        >        trace-cmd-397     [000] .....    11.031137: get_user_pages_remote: (get_user_pages_remote+0x0/0x30) mm=0xffff888004863a80 start=0x7fffffffefe9 nr_pages=1 gup_flags=0x1 pages=0xffffc900003fbd60
        >        trace-cmd-397     [000] .....    11.031162: <stack trace>
        >  => kprobe_trace_func
        >  => get_user_pages_remote
        >
        > > trace-cmd-397     [000] .....    11.031548: __get_user_pages_ret: (__get_user_pages_remote+0xc6/0x340 <- __get_user_pages) ret=1
            trace-cmd-397     [000] .....    11.031563: get_user_pages_remote_ret: (get_arg_page+0x76/0x1b0 <- get_user_pages_remote) ret=1

        Any idea?
        Thanks

        """

    func testTracePastedIntoProse() throws {
        let (events, reader) = try readText(Self.prose)
        XCTAssertEqual(events.map(\.name), ["release_pages", "get_user_pages_remote", "__get_user_pages_ret",
                                            "get_user_pages_remote_ret"])
        XCTAssertEqual(events[1].stack.map(\.symbol), ["kprobe_trace_func", "get_user_pages_remote"])
        XCTAssertEqual(events[1].comm, "trace-cmd")
        XCTAssertEqual(events[1].pid, 397)
        XCTAssertEqual(events[2][field: "__probe_func"], .string("__get_user_pages"))
        XCTAssertEqual(reader.unparsableLines, 4)
        XCTAssertEqual(reader.anomalies["unparsable line"], 4)
        XCTAssertEqual(reader.anomalies.entries.first { $0.name == "unparsable line" }?.severity, .error)
        XCTAssertEqual(reader.anomalies.entries.first { $0.name == "unparsable line" }?.firstSeen, "fixture:1")
        XCTAssertEqual(reader.parsedLines, 5)
    }

    /// Android systrace HTML around atrace text (`(-----)` tgid, 4-char flags).
    static let systrace = """
        <!DOCTYPE html>
        <html>
        <head i18n-values="dir:textdirection;">
        <script class="trace-data" type="application/text">
        TRACE:
        # tracer: nop
        TRACE:       atrace-99    ( 99) [000] ...1 123.456700: tracing_mark_write: B|99|atrace start
        #
                  <...>-1234  (-----) [001] d..2 123.456789: sched_switch: prev_comm=surfaceflinger prev_pid=1234 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
          Binder:1200_2-1250  ( 1200) [000] ...1 123.456800: tracing_mark_write: B|1200|binder transaction
        </script>
        </html>

        """

    func testSystraceHTML() throws {
        var (events, reader) = try readText(Self.systrace)
        XCTAssertEqual(events.first?.comm, "atrace")
        XCTAssertEqual(events.first?.tgid, 99)
        events.removeFirst()
        XCTAssertEqual(events.count, 2)
        XCTAssertEqual(events[0].comm, "<...>")
        XCTAssertEqual(events[0].pid, 1234)
        XCTAssertNil(events[0].tgid)
        XCTAssertEqual(events[0].timestampNs, 123_456_789_000)
        XCTAssertEqual(events[0].fields.map(\.name), ["prev_comm", "prev_pid", "prev_prio", "prev_state",
                                                      "next_comm", "next_pid", "next_prio"])
        XCTAssertEqual(events[0][field: "next_comm"], .string("swapper/1"))
        XCTAssertEqual(events[1].comm, "Binder:1200_2")
        XCTAssertEqual(events[1].pid, 1250)
        XCTAssertEqual(events[1].tgid, 1200)
        XCTAssertEqual(events[1].payload, "B|1200|binder transaction")
        XCTAssertEqual(reader.unparsableLines, 0)
        XCTAssertEqual(reader.anomalies["HTML lines skipped"], 6)
    }

    static let functionGraph = """
        # tracer: function_graph
        #
        # CPU  DURATION                  FUNCTION CALLS
        # |     |   |                     |   |   |   |
         1)   0.123 us    |  folio_mark_dirty();
         1)               |  folio_mkclean() {
         1)   1.024 us    |  }
         ------------------------------------------
         1)    bash-1234    =>   sshd-5678
         ------------------------------------------

        """

    func testFunctionGraphIsSkippedAndCounted() throws {
        let (events, reader) = try readText(Self.functionGraph)
        XCTAssertTrue(events.isEmpty)
        XCTAssertEqual(reader.tracer, "function_graph")
        XCTAssertEqual(reader.unparsableLines, 0)
        XCTAssertEqual(reader.parsedLines, 0)
        XCTAssertEqual(reader.anomalies["function_graph lines skipped"], 6)
    }

    /// `trace-cmd report` of the guest-process_vm capture, with drop lines added.
    static let report = """
        cpus=2
              process_vm-400   [000]    13.823987: get_user_pages_remote: (ffffffff812c6310) mm=0xffff888004863180 start=0x7fffffffeff0 nr_pages=1 gup_flags=0x1 pages=0xffffc9000041bc50
              process_vm-400   [000]    13.824588: kernel_stack:         <stack trace >
        => kprobe_trace_func (ffffffff811f55d5)
        => kprobe_dispatcher (ffffffff811f5bcc)
        CPU:1 [EVENTS DROPPED]
              process_vm-401   [001]    13.824927: __get_user_pages_ret: (ffffffff812c4ec0 <- ffffffff812c6096) ret=1
        CPU:0 [5 EVENTS DROPPED]
              process_vm-400   [000]    13.824941: get_user_pages_remote_ret: (ffffffff812c6310 <- ffffffff81370e26) ret=1

        """

    func testTraceCmdReport() throws {
        let (events, reader) = try readText(Self.report)
        XCTAssertEqual(reader.info.format, .traceCmdReport)
        XCTAssertEqual(reader.info.cpus, 2)
        XCTAssertEqual(events.map(\.name), ["get_user_pages_remote", "__get_user_pages_ret", "get_user_pages_remote_ret"])
        XCTAssertEqual(events[0].stack, [
            StackFrame(symbol: "kprobe_trace_func", address: 0xffff_ffff_811f_55d5),
            StackFrame(symbol: "kprobe_dispatcher", address: 0xffff_ffff_811f_5bcc),
        ])
        XCTAssertEqual(events[0][field: "__probe_ip"], .string("ffffffff812c6310"))
        XCTAssertEqual(events[1].lostBefore, .max)
        XCTAssertEqual(events[1][field: "__probe_func"], .string("ffffffff812c4ec0"))
        XCTAssertEqual(events[1][field: "__probe_ret_ip"], .string("ffffffff812c6096"))
        XCTAssertEqual(events[2].lostBefore, 5)
        XCTAssertEqual(reader.anomalies["lost events"], 5)
        XCTAssertEqual(reader.anomalies["lost-event marks without a count"], 1)
        XCTAssertEqual(reader.unparsableLines, 0)
    }

    /// `trace-cmd report -R` of the same capture.
    static let reportRaw = """
        cpus=2
              process_vm-400   [000]    13.823987: get_user_pages_remote:  __probe_ip=ffffffff812c6310 mm=0xffff888004863180 start=0x7fffffffeff0 nr_pages=1 gup_flags=0x1 pages=0xffffc9000041bc50
              process_vm-400   [000]    13.824588: kernel_stack:          size=12 caller=ARRAY[d5, 55, 1f, 81, ff, ff, ff, ff, cc, 5b, 1f, 81, ff, ff, ff, ff]
              process_vm-400   [000]    13.824927: __get_user_pages_ret:  __probe_func=ffffffff812c4ec0 __probe_ret_ip=ffffffff812c6096 ret=1
              process_vm-400   [000]    13.825196: writeback_mark_inode_dirty:  name=(unknown) ino=210 state=0x7 flags=0x1

        """

    func testTraceCmdReportRaw() throws {
        let (events, reader) = try readText(Self.reportRaw)
        XCTAssertEqual(reader.info.format, .traceCmdReportRaw)
        XCTAssertEqual(events.map(\.name), ["get_user_pages_remote", "kernel_stack", "__get_user_pages_ret",
                                            "writeback_mark_inode_dirty"])
        XCTAssertEqual(events[0].fields.first, Field("__probe_ip", .string("ffffffff812c6310")))
        XCTAssertEqual(events[1].fields.map(\.name), ["size", "caller"])
        XCTAssertEqual(events[1][field: "caller"],
                       .string("ARRAY[d5, 55, 1f, 81, ff, ff, ff, ff, cc, 5b, 1f, 81, ff, ff, ff, ff]"))
        XCTAssertEqual(events[3][field: "name"], .string("(unknown)"))
        XCTAssertEqual(events[3][field: "state"]?.unsignedValue, 7)
    }

    func testLostEventsWithoutACPUAndBeforeAStack() throws {
        let text = """
            [LOST 7 EVENTS]
                        init-135     [001] ...2.    11.019980: release_pages: (release_pages+0x0/0x470) pages=0xffff88805df2dc48 nr=3
            CPU:1 [LOST 3 EVENTS]
                        init-135     [001] ...2.    11.020000: <stack trace>
             => release_pages
                        init-135     [001] ...2.    11.030000: release_pages: (release_pages+0x0/0x470) pages=0xffff88805df2dc48 nr=2

            """
        let (events, reader) = try readText(text)
        // The stack after a gap cannot be joined to the event before the gap: it stays a record.
        XCTAssertEqual(events.map(\.name), ["release_pages", "kernel_stack", "release_pages"])
        XCTAssertEqual(events.map(\.lostBefore), [7, 3, nil])
        XCTAssertTrue(events[0].stack.isEmpty)
        XCTAssertEqual(reader.anomalies["lost events"], 10)
    }

    func testBadLinesAreCountedNeverThrown() throws {
        let text = """
                        init-135     [001] ...2.    11.019980: release_pages: nr=3
                        init-135     [001] ...2.    11.0x9980: release_pages: nr=3
                        init-135     [xx1] ...2.    11.019980: release_pages: nr=3
                        init-135     [001] ...2.    11.019980:
             => orphan_frame
            \u{0}\u{1}\u{ff}garbage
                        init-135     [001] ...2.    11.019990: release_pages: nr=4
            """
        let (events, reader) = try readText(text)
        XCTAssertEqual(events.count, 2)
        XCTAssertEqual(reader.unparsableLines, 5)
        XCTAssertEqual(reader.anomalies.entries.first { $0.name == "unparsable line" }?.firstSeen, "fixture:2")
    }

    func testEmptyInput() throws {
        let (events, reader) = try readText("")
        XCTAssertTrue(events.isEmpty)
        XCTAssertEqual(reader.parsedLines, 0)
        XCTAssertEqual(reader.unparsableLines, 0)
        XCTAssertTrue(reader.anomalies.isEmpty)
    }

    func testOpensAFileByPath() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pinscope-text-\(getpid()).txt")
        try Self.kernelText.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let reader = try TextTraceReader(path: url.path)
        var n = 0
        while let e = try reader.next() {
            XCTAssertEqual(e.locator.file, url.path)
            n += 1
        }
        XCTAssertEqual(n, 9)
        XCTAssertThrowsError(try TextTraceReader(path: url.path + ".missing"))
    }
}

/// A stack is recorded in its event's interrupt context. Lines from the bench capture
/// (`Benchmarks/capture-large.sh`, the kernel's own text; a stacktrace trigger on
/// folio_wait_writeback), abridged: the stack's frames name the event that recorded it.
final class StackContextTests: XCTestCase {
    private let excerpt = """
     io_workload-9690    [001] .N...   769.557685: folio_wait_writeback: bdi 254:0: ino=5334013 index=7646
     io_workload-9690    [001] .N...   769.557697: <stack trace>
 => trace_event_raw_event_writeback_folio_template
 => folio_wait_writeback
 => __filemap_fdatawait_range
 => file_write_and_wait_range
     io_workload-9690    [001] d..2.   769.557701: sched_switch: prev_comm=io_workload prev_pid=9690 prev_prio=120 prev_state=D ==> next_comm=kworker/u8:2 next_pid=35 next_prio=120
     io_workload-9691    [001] .....   776.752435: folio_wait_writeback: bdi 254:0: ino=5334014 index=0
     io_workload-9691    [001] d.h7.   776.752447: sched_waking: comm=kworker/1:1H pid=58 prio=100 target_cpu=001
     io_workload-9690    [000] d..2.   776.752447: mm_filemap_delete_from_page_cache: dev 254:0 ino 5163fd pfn=0x13e16d ofs=40706048 order=0
     io_workload-9691    [001] .....   776.752596: <stack trace>
 => trace_event_raw_event_writeback_folio_template
 => folio_wait_writeback
 => __filemap_fdatawait_range
     io_workload-9691    [001] d..2.   776.752599: sched_switch: prev_comm=io_workload prev_pid=9691 prev_prio=120 prev_state=R+ ==> next_comm=kworker/1:1H next_pid=58 next_prio=100

"""

    func testAStackJoinsOnlyAnEventOfItsOwnContext() throws {
        let (events, _) = try readText(Array(excerpt.utf8))
        // Right after its event, in the same (task) context: joined.
        XCTAssertEqual(events[0].name, "folio_wait_writeback")
        XCTAssertEqual(events[0].stack.map(\.symbol).dropFirst().first, "folio_wait_writeback")
        // After an interrupt's event (hardirq, `h`): not that event's; it goes out on its own.
        let waking = try XCTUnwrap(events.first { $0.name == "sched_waking" })
        XCTAssertTrue(waking.stack.isEmpty, "a task-context stack joined a hardirq event")
        let orphan = try XCTUnwrap(events.first { $0.name == "kernel_stack" })
        XCTAssertEqual(orphan.stack.map(\.symbol).dropFirst().first, "folio_wait_writeback")
        XCTAssertEqual(events.filter { !$0.stack.isEmpty }.count, 2)
    }
}
