import Foundation
import TestSupport
import XCTest

/// `pinscope analyze`, `explain` and `profiles` as a user runs them.
final class AnalyzeCommandTests: XCTestCase {
    private func pinscope(_ args: [String]) throws -> ProcessResult {
        try runProcess(TestPaths.pinscope, args)
    }

    private func json(_ r: ProcessResult) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stderr)
    }

    func testJSONSchemaAndExitStatus() throws {
        let r = try pinscope(["analyze", "--format", "json", TestPaths.sample("guest-process_vm/trace-v7zstd.dat")])
        XCTAssertEqual(r.status, 1, "errors found: exit 1 with the default --fail-on error")
        let doc = try json(r)
        XCTAssertEqual(doc["schema"] as? String, "pinscope.analysis/1")
        let trace = try XCTUnwrap(doc["trace"] as? [String: Any])
        XCTAssertEqual(trace["kernel"] as? String, "6.1.0-56-amd64")
        let summary = try XCTUnwrap(doc["summary"] as? [String: Any])
        XCTAssertEqual(summary["pins"] as? Int, 640)
        XCTAssertEqual(summary["lostEvents"] as? Int, 0)
        XCTAssertNotNil(summary["unresolvedIdentities"] as? Int)
        let findings = try XCTUnwrap(doc["findings"] as? [[String: Any]])
        XCTAssertEqual(findings.count, 3)
        for f in findings {
            XCTAssertEqual(Set(f.keys), ["rule", "severity", "uncertain", "message", "page", "owner", "evidence"])
            let page = try XCTUnwrap(f["page"] as? [String: Any])
            XCTAssertNotNil(page["pfn"] as? Int, "pfn is an integer when resolved")
            XCTAssertEqual(page["ino"] as? Int, 12, "the log's file F ino=12")
            XCTAssertNotNil(page["folio"] as? String)
            let owner = try XCTUnwrap(f["owner"] as? [String: Any])
            XCTAssertEqual(Set(owner.keys), ["pid", "comm", "driver", "attributedBy"])
            let evidence = try XCTUnwrap(f["evidence"] as? [[String: Any]])
            XCTAssertTrue(evidence.allSatisfy { $0["ts_ns"] is Int && $0["cpu"] is Int && $0["event"] is String })
        }
        let pins = try XCTUnwrap(doc["pins"] as? [String: Any])
        XCTAssertEqual(pins["lifetimes"] as? Int, 640)
        XCTAssertNotNil(pins["byDriver"] as? [String: Any])

        let never = try pinscope(["analyze", "--fail-on", "never", TestPaths.sample("guest-process_vm/trace-v7zstd.dat")])
        XCTAssertEqual(never.status, 0)
        let clean = try pinscope(["analyze", TestPaths.sample("guest-vmsplice/trace-v7zstd.dat")])
        XCTAssertEqual(clean.status, 0, clean.stdout)
        XCTAssertTrue(clean.stdout.contains("findings: 0 errors, 0 warnings, 0 uncertain"))
        let warn = try pinscope(["analyze", "--fail-on", "warning", TestPaths.sample("guest-iouring_fixed/trace-v7zstd.dat")])
        XCTAssertEqual(warn.status, 1, "longterm-file-pin warnings fail --fail-on warning")
        let errorsOnly = try pinscope(["analyze", TestPaths.sample("guest-iouring_fixed/trace-v7zstd.dat")])
        XCTAssertEqual(errorsOnly.status, 0)
    }

    func testBadInputAndOptions() throws {
        let missing = try pinscope(["analyze", "/nonexistent/trace.dat"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("/nonexistent/trace.dat"), missing.stderr)
        let badDuration = try pinscope(["analyze", "--longterm", "soon", TestPaths.sample("guest-vmsplice/trace-v7zstd.dat")])
        XCTAssertNotEqual(badDuration.status, 0)
        XCTAssertTrue(badDuration.stderr.contains("--longterm"), badDuration.stderr)
        // A compressed text trace cut short: the findings up to the damage, a warning, exit 2.
        let data = try Data(contentsOf: URL(fileURLWithPath: TestPaths.sample("host-odirect-mmap/trace.txt.gz")))
        let cut = NSTemporaryDirectory() + "pinscope-truncated.txt.gz"
        try data.prefix(data.count * 3 / 4).write(to: URL(fileURLWithPath: cut))
        let truncated = try pinscope(["analyze", cut])
        XCTAssertEqual(truncated.status, 2)
        XCTAssertTrue(truncated.stderr.contains("warning") && truncated.stderr.contains("truncated"), truncated.stderr)
        XCTAssertTrue(truncated.stdout.contains("dirty-after-mkclean"), "findings before the cut are reported")
    }

    func testExplainEveryRule() throws {
        let list = try pinscope(["explain"])
        XCTAssertEqual(list.status, 0)
        let ids = ["pin-crosses-writeback", "dirty-after-mkclean", "release-mismatch", "unbalanced-release",
                   "longterm-file-pin", "pin-overflow-risk", "double-dirty", "pin-blocks-migration", "pin-leak"]
        for id in ids {
            XCTAssertTrue(list.stdout.contains(id))
            let r = try pinscope(["explain", id])
            XCTAssertEqual(r.status, 0)
            XCTAssertTrue(r.stdout.hasPrefix(id), r.stdout)
            XCTAssertTrue(r.stdout.contains("Remedy:"), "\(id) says what to do")
        }
        XCTAssertEqual(try pinscope(["explain", "no-such-rule"]).status, 2)
    }

    /// The kprobe set printed for the lab's 6.1 guest names the functions its kallsyms has, in
    /// the form the lab's kprobe_events.used shows the kernel accepted.
    func testProfilesAndKprobeLines() throws {
        let list = try pinscope(["profiles"])
        XCTAssertEqual(list.status, 0)
        for p in ["tracepoints", "page_ref", "kprobes", "user"] { XCTAssertTrue(list.stdout.contains(p)) }
        let kallsyms = NSTemporaryDirectory() + "pinscope-kallsyms"
        let used = try String(contentsOfFile: TestPaths.sample("guest-process_vm/kprobe_events.used"), encoding: .utf8)
        // The functions the guest's kernel had: every function the lab's probes were accepted on.
        let functions = Set(used.split(separator: "\n").compactMap { $0.split(separator: " ").dropFirst().first })
        try functions.map { "ffffffff81000000 T \($0)" }.joined(separator: "\n").write(toFile: kallsyms, atomically: true, encoding: .utf8)
        let r = try pinscope(["profiles", "--kprobes", "--kernel", "6.1.0-56-amd64", "--kallsyms", kallsyms])
        XCTAssertEqual(r.status, 0)
        let probes = r.stdout.split(separator: "\n").filter { $0.hasPrefix("p:") || $0.hasPrefix("r:") }
        XCTAssertGreaterThan(probes.count, 30)
        for p in probes {
            let function = p.split(separator: " ")[1]
            XCTAssertTrue(functions.contains(function), "\(function) is in the guest kernel")
        }
        XCTAssertTrue(probes.contains { $0.hasPrefix("p:kprobes/try_grab_page try_grab_page page=$arg1:x64") })
        XCTAssertTrue(probes.contains { $0.hasPrefix("p:kprobes/gup_put_folio gup_put_folio folio=$arg1:x64") && $0.contains("pincount=+88($arg1)") })
    }
}
