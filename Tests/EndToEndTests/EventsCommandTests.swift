import Foundation
import TestSupport
import XCTest

/// `pinscope events` run as a user runs it: output, messages and exit status.
final class EventsCommandTests: XCTestCase {
    let zstdDat = TestPaths.sample("guest-process_vm/trace-v7zstd.dat")

    private func events(_ args: [String], stdin: Data? = nil) throws -> ProcessResult {
        try runProcess(TestPaths.pinscope, ["events"] + args, stdin: stdin)
    }

    /// The --stat totals equal trace-cmd's own event count for the same file.
    func testStatCountsMatchTraceCmd() throws {
        guard let traceCmd = TestPaths.which("trace-cmd") else { throw XCTSkip("trace-cmd not installed") }
        let r = try events(["--stat", zstdDat])
        XCTAssertEqual(r.status, 0, r.stderr)
        let peer = try runProcess(traceCmd, ["report", "-R", zstdDat])
        let peerLines = peer.stdout.split(separator: "\n").dropFirst() // "cpus=2"
        XCTAssertTrue(r.stdout.contains("events: \(peerLines.count)\n"), r.stdout)
        let perCPU0 = peerLines.filter { $0.contains("[000]") }.count
        XCTAssertTrue(r.stdout.contains("  cpu0  \(perCPU0)\n"), r.stdout)
        let stacks = peerLines.filter { $0.contains(" kernel_stack: ") }.count
        XCTAssertTrue(r.stdout.contains("\(stacks)  ftrace:kernel_stack\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("lost events: 0\n"))
    }

    func testJSONLinesCarryFieldsAndStacks() throws {
        let r = try events(["--format", "jsonl", zstdDat])
        XCTAssertEqual(r.status, 0, r.stderr)
        let first = try XCTUnwrap(r.stdout.split(separator: "\n").first)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        // trace-cmd report's first event: process_vm-400 [000] 13.823987: get_user_pages_remote
        XCTAssertEqual(obj["event"] as? String, "get_user_pages_remote")
        XCTAssertEqual(obj["system"] as? String, "kprobes")
        XCTAssertEqual(obj["pid"] as? Int, 400)
        XCTAssertEqual(obj["comm"] as? String, "process_vm")
        XCTAssertEqual((obj["ts_ns"] as? Int).map { $0 / 1000 }, 13_823_987)
        let fields = try XCTUnwrap(obj["fields"] as? [String: Any])
        XCTAssertEqual(fields["nr_pages"] as? Int, 1)
        let stack = try XCTUnwrap(obj["stack"] as? [String])
        XCTAssertEqual(stack.count, 12)
        XCTAssertTrue(stack[6].hasPrefix("get_arg_page"))
    }

    func testEmptyFileIsExit2NamingTheFile() throws {
        let empty = try damagedCopy(of: zstdDat, name: "empty.dat") { $0 = Data() }
        let r = try events([empty])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains(empty) && r.stderr.contains("offset 0"), r.stderr)
    }

    func testWrongMagicIsExit2() throws {
        let bad = try damagedCopy(of: zstdDat, name: "wrong-magic.dat") { $0[1] = 0x09 }
        let r = try events([bad])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains(bad) && r.stderr.contains("offset 0"), r.stderr)
    }

    func testUnsupportedVersionIsExit2() throws {
        let bad = try damagedCopy(of: zstdDat, name: "v9.dat") { $0[10] = UInt8(ascii: "9") }
        let r = try events([bad])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("unsupported trace.dat file version 9") && r.stderr.contains("offset 10"), r.stderr)
    }

    /// Cut inside the per-CPU data: the events before the cut come out, then a warning and exit 2.
    func testTruncatedTraceDatYieldsEventsBeforeTheDamage() throws {
        guard let shared = TestPaths.sharedTraces else { throw XCTSkip("../shared/traces missing") }
        let v6 = shared.appendingPathComponent("guest-process_vm/trace-v6.dat").path
        let full = try events(["--format", "raw", v6])
        let size = try FileManager.default.attributesOfItem(atPath: v6)[.size] as! Int
        let cut = try damagedCopy(of: v6, name: "truncated.dat") { $0 = $0.prefix(size - 40_000 - 123) }
        let r = try events(["--format", "raw", cut])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains(cut) && r.stderr.contains("truncated"), r.stderr)
        let fullLines = Set(full.stdout.split(separator: "\n"))
        let got = r.stdout.split(separator: "\n")
        XCTAssertGreaterThan(got.count, 1000, "events before the damage should still be printed")
        XCTAssertLessThan(got.count, fullLines.count)
        XCTAssertTrue(got.allSatisfy { fullLines.contains($0) }, "every event printed must be a real one")
    }

    func testTruncatedMetadataIsExit2WithOffset() throws {
        let cut = try damagedCopy(of: zstdDat, name: "truncated-head.dat") { $0 = $0.prefix(200) }
        let r = try events([cut])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains(cut) && r.stderr.contains("offset"), r.stderr)
    }

    /// A flipped byte in compressed CPU data is caught by decompression: warning, exit 2.
    func testBitFlipInCompressedDataIsReported() throws {
        var flippedAt = -1
        let bad = try damagedCopy(of: zstdDat, name: "flipped.dat") { data in
            // A ring-buffer chunk: u32 uncompressed size 40960 (10 pages), then a zstd frame.
            let chunk: [UInt8] = [0x00, 0xa0, 0x00, 0x00, 0x28, 0xb5, 0x2f, 0xfd]
            let bytes = [UInt8](data)
            flippedAt = (0..<(bytes.count - chunk.count)).first { bytes[$0..<$0 + chunk.count].elementsEqual(chunk) } ?? -1
            if flippedAt >= 0 { data[flippedAt + 5] ^= 0x10 }
        }
        XCTAssertGreaterThan(flippedAt, 0, "no compressed chunk found")
        let r = try events(["--stat", bad])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains(bad) && r.stderr.contains("corrupt zstd chunk"), r.stderr)
    }

    /// No input crashes the process: random byte flips anywhere give exit 0 or 2, never a signal.
    func testRandomBitFlipsNeverCrash() throws {
        guard let shared = TestPaths.sharedTraces else { throw XCTSkip("../shared/traces missing") }
        let inputs = [shared.appendingPathComponent("guest-vmsplice/trace-v6.dat").path, zstdDat]
        var rng = SystemRandomNumberGenerator()
        for input in inputs {
            for round in 0..<6 {
                let bad = try damagedCopy(of: input, name: "fuzz-\(round).dat") { data in
                    for _ in 0..<8 {
                        let i = Int.random(in: 0..<data.count, using: &rng)
                        data[i] ^= UInt8.random(in: 1...255, using: &rng)
                    }
                }
                let r = try events(["--format", "jsonl", bad])
                XCTAssertTrue(r.status == 0 || r.status == 2, "\(input) round \(round): exit \(r.status)\n\(r.stderr)")
            }
        }
    }

    func testMissingFileIsExit2() throws {
        let r = try events(["/nonexistent/trace.dat"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("/nonexistent/trace.dat"))
    }
}
