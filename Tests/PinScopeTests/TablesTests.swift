import TestSupport
import XCTest
@testable import PinScope
import TraceReader

/// The analysis's own tables, against Swift's `Dictionary` and `Set`, keyed by the pages of a real
/// capture (host-buffered-io: the pfns of its page-cache adds, the (ino, index) of its dirtyings).
final class TablesTests: XCTestCase {
    private func capturedKeys() throws -> (pfns: [UInt64], files: [(ino: UInt64, index: UInt64)]) {
        let reader = try TraceDatReader(path: TestPaths.sample("host-buffered-io/trace-v7zstd.dat"))
        var pfns: [UInt64] = []
        var files: [(UInt64, UInt64)] = []
        while let e = try reader.next() {
            if e.name == "mm_filemap_add_to_page_cache", let pfn = e[field: "pfn"]?.unsignedValue { pfns.append(pfn) }
            if e.name == "writeback_dirty_folio", let ino = e[field: "ino"]?.unsignedValue, let index = e[field: "index"]?.unsignedValue {
                files.append((ino, index))
            }
        }
        return (pfns, files)
    }

    private func assertSame(_ table: HashTable<UInt64, Int>, _ oracle: [UInt64: Int], _ keys: [UInt64],
                            _ step: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(table.count, oracle.count, step, file: file, line: line)
        XCTAssertEqual(Set(table.keyList), Set(oracle.keys), step, file: file, line: line)
        for k in keys where table[k] != oracle[k] {
            XCTFail("\(step): pfn \(k): table \(String(describing: table[k])), expected \(String(describing: oracle[k]))",
                    file: file, line: line)
            return
        }
    }

    /// Inserts, updates and removals (the removals shift later members of a probe run back into
    /// the hole) leave the table holding what a Dictionary holds. It starts small, so it grows
    /// and its probe runs wrap around the end.
    func testHashTableAgreesWithDictionary() throws {
        let pfns = try capturedKeys().pfns
        XCTAssertGreaterThan(pfns.count, 200, "the capture's page-cache adds")
        var table = HashTable<UInt64, Int>(minimumCapacity: 4)
        var oracle: [UInt64: Int] = [:]
        for (i, pfn) in pfns.enumerated() {
            table[pfn] = i
            oracle[pfn] = i
        }
        assertSame(table, oracle, pfns, "after adding every pfn")
        for (i, pfn) in pfns.enumerated() where i % 2 == 0 {
            XCTAssertEqual(table.removeValue(forKey: pfn), oracle.removeValue(forKey: pfn))
        }
        assertSame(table, oracle, pfns, "after removing every other one")
        for (i, pfn) in pfns.enumerated() where i % 3 == 0 {
            XCTAssertEqual(table.insert(pfn, -i), oracle[pfn] == nil)
            if oracle[pfn] == nil { oracle[pfn] = -i }
        }
        assertSame(table, oracle, pfns, "after inserting every third one again")
        for pfn in pfns.reversed() {
            table[pfn] = nil
            oracle[pfn] = nil
        }
        assertSame(table, oracle, pfns, "after removing all")
        XCTAssertTrue(table.isEmpty)
    }

    /// Pages tracked count each key once: pfns (bits in chunks, and past the chunk limit one
    /// entry each) and (ino, index) keys alike.
    func testSeenPagesCountsEachKeyOnce() throws {
        let (pfns, files) = try capturedKeys()
        var seen = SeenPages(limit: 1 << 22)
        var oracle = Set<PageRef>()
        let keys = pfns.map { PageRef.pfn($0) } + files.map { PageRef.file(ino: $0.ino, index: $0.index) }
        for key in keys + keys {
            seen.insert(key)
            oracle.insert(key)
        }
        XCTAssertEqual(seen.count, oracle.count)
        // Pfns 128 MiB apart each need a chunk of their own: more than the 4,096 allowed.
        for i in 0..<5_000 {
            let key = PageRef.pfn(UInt64(i) << 15 | 7)
            seen.insert(key)
            seen.insert(key)
            oracle.insert(key)
        }
        XCTAssertEqual(seen.count, oracle.count)
        var limited = SeenPages(limit: 100)
        for key in keys { limited.insert(key) }
        XCTAssertEqual(limited.count, 100)
    }
}
