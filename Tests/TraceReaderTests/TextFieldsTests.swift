import Foundation
import TestSupport
import XCTest
@testable import TraceReader

/// A text event keeps its payload's bytes and reads a field when asked: through the positions of
/// its `key=value` pairs (found as the line was read), or by walking the payload again (`fields`).
final class TextFieldsTests: XCTestCase {
    /// `key=value` words of a payload, by a regular expression rather than the reader's walk: only
    /// plain values (no quotes or brackets, which the walk treats specially).
    static let pairPattern = try! NSRegularExpression(pattern: #"(?:^|[ \t])([A-Za-z_][A-Za-z0-9_.-]*)=([^ \t"\[\]]+)(?=[ \t]|$)"#)

    /// Every trace text bundled in SampleTraces (`trace.txt`, `ftrace.txt`, `trace_raw.txt`, also
    /// compressed: they are read through `TraceInput`).
    static var textSamples: [String] {
        let root = TestPaths.samples
        let all = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String } ?? []
        let names = ["trace.txt", "ftrace.txt", "trace_raw.txt"]
        return all.filter { rel in
            let file = (rel as NSString).lastPathComponent
            return names.contains { file == $0 || file == $0 + ".gz" || file == $0 + ".zst" }
        }.sorted().map { root.appendingPathComponent($0).path }
    }

    /// For every event of every bundled text trace: each field read by name (the pair index) and
    /// as a number (from the bytes) equals the field in the event's list; names it lacks give
    /// nil; and every plain `key=value` a regular expression finds in the payload is the reader's
    /// field of that name, where the name is not repeated.
    func testLazyFieldsAgreeWithTheFieldListAndTheText() throws {
        let paths = Self.textSamples
        XCTAssertGreaterThanOrEqual(paths.count, 3, "\(paths)")
        var checked = 0, matchedByPattern = 0
        for path in paths {
            let r = try TraceInput.open(path)
            while let e = try r.next() {
                let fields = e.fields
                for (i, f) in fields.enumerated() where !fields[..<i].contains(where: { $0.name == f.name }) {
                    XCTAssertEqual(e[field: f.name], f.value, "\(e.locator) \(f.name)")
                    XCTAssertEqual(e.unsignedField(named: f.name), f.value.unsignedValue, "\(e.locator) \(f.name)")
                    checked += 1
                }
                XCTAssertNil(e[field: "no_such_field"])
                XCTAssertNil(e.unsignedField(named: "no_such_field"))
                guard let payload = e.payload, e.system == "" else { continue }
                let ns = payload as NSString
                let matches = Self.pairPattern.matches(in: payload, range: NSRange(location: 0, length: ns.length))
                let names = matches.map { ns.substring(with: $0.range(at: 1)) }
                for m in matches {
                    let name = ns.substring(with: m.range(at: 1))
                    guard names.filter({ $0 == name }).count == 1, !payload.hasPrefix("(") else { continue }
                    XCTAssertEqual(e[field: name], .string(ns.substring(with: m.range(at: 2))), "\(e.locator) \(name)")
                    matchedByPattern += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 10_000)
        XCTAssertGreaterThan(matchedByPattern, 10_000)
    }

    /// A field read at a position (`textPairIndex(named:)` of an earlier event of the type) is
    /// the field read by name, at every position: the right pair's value where the key is there,
    /// a search by name where another key is.
    func testFieldsAtAnyPositionAreTheFieldsByName() throws {
        var hits = 0, misses = 0
        for path in Self.textSamples {
            let r = try TraceInput.open(path)
            while let e = try r.next() {
                let names = Set(e.fields.map(\.name))
                let pairs = names.compactMap { e.textPairIndex(named: $0) }
                for name in names {
                    let at = e.textPairIndex(named: name)
                    for i in Set(pairs + [0, 7]) {
                        XCTAssertEqual(e.unsignedField(at: i, named: name), e.unsignedField(named: name), "\(e.locator) \(name) at \(i)")
                        if i == at { hits += 1 } else { misses += 1 }
                    }
                }
            }
        }
        XCTAssertGreaterThan(hits, 10_000)
        XCTAssertGreaterThan(misses, 10_000)
    }

    /// Events the consumer hands back are refilled for later lines: what they read then is what
    /// new events read (nothing of the line before stays behind).
    func testRecycledEventsReadLikeNewOnes() throws {
        var n = 0
        for path in Self.textSamples {
            let fresh = try TraceInput.open(path), recycling = try TraceInput.open(path)
            var spent: [RawEvent] = []
            while let a = try fresh.next() {
                let b = try XCTUnwrap(recycling.next(), path)
                XCTAssertEqual(a.name, b.name, "\(a.locator)")
                XCTAssertEqual(a.timestampNs, b.timestampNs, "\(a.locator)")
                XCTAssertEqual(a.comm, b.comm, "\(a.locator)")
                XCTAssertEqual(a.fields, b.fields, "\(a.locator)")
                XCTAssertEqual(a.payload, b.payload, "\(a.locator)")
                XCTAssertEqual(a.stack, b.stack, "\(a.locator)")
                XCTAssertEqual(a.lostBefore, b.lostBefore, "\(a.locator)")
                for f in a.fields { XCTAssertEqual(b.unsignedField(named: f.name), a.unsignedField(named: f.name), "\(a.locator)") }
                spent.append(b)
                // Hand back a few at a time, as the read-ahead does with its batches.
                if spent.count == 7 { recycling.recycle(&spent) }
                n += 1
            }
            XCTAssertNil(try recycling.next())
        }
        XCTAssertGreaterThan(n, 10_000)
    }
}
