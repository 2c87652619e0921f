import TraceReader

/// A user mapping file: in-house tracepoints and kprobes mapped to PinScope's canonical events.
///
/// One line per event, `#` starts a comment:
///
///     # event            kind     key=field ...
///     mydrv_pin_page     pin      pfn=pfn flags=gup_flags
///     mydrv_unpin_page   unpin    page=page
///     mydrv_dirty        markDirty pfn=pfn
///
/// `kind` is one of the canonical kinds (`pin`, `unpin`, `get`, `put`, `markDirty`, `mkclean`,
/// `writebackStart`, `writebackEnd`, ...). Keys: `pfn`, `page` (a `struct page *`), `ino` and
/// `index` (a page-cache page), `flags` (FOLL_* gup flags), `refs`. Each names the event's field.
public struct UserMapping: Sendable {
    public struct Entry: Sendable {
        public var kind: PageEventKind
        public var keys: [String: String]
    }
    public private(set) var entries: [String: Entry] = [:]

    public init(text: String, file: String) throws {
        let allowed: Set<String> = ["pfn", "page", "ino", "index", "flags", "refs"]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard !words.isEmpty else { continue }
            guard words.count >= 3 else {
                throw TraceError(file: file, line: n + 1, "expected `EVENT KIND key=field ...`, got \"\(line)\"")
            }
            guard let kind = PageEventKind(rawValue: String(words[1])) else {
                throw TraceError(file: file, line: n + 1, "unknown kind \"\(words[1])\"; expected one of "
                    + PageEventKind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            var keys: [String: String] = [:]
            for w in words.dropFirst(2) {
                let kv = w.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, allowed.contains(String(kv[0])) else {
                    throw TraceError(file: file, line: n + 1, "expected key=field with key one of \(allowed.sorted().joined(separator: ", ")), got \"\(w)\"")
                }
                keys[String(kv[0])] = String(kv[1])
            }
            guard keys["pfn"] != nil || keys["page"] != nil || (keys["ino"] != nil && keys["index"] != nil) else {
                throw TraceError(file: file, line: n + 1, "needs pfn=, page= or ino= with index= to name the page")
            }
            entries[String(words[0])] = Entry(kind: kind, keys: keys)
        }
    }

    func map(_ e: RawEvent) -> PageEvent? {
        guard let entry = entries[e.name] else { return nil }
        func value(_ key: String) -> UInt64? { entry.keys[key].flatMap { e.u($0) } }
        let page: PageRef
        if let pfn = value("pfn") { page = .pfn(pfn) }
        else if let p = value("page") { page = .pointer(p) }
        else if let ino = value("ino"), let index = value("index") { page = .file(ino: ino, index: index) }
        else { return nil }
        let pe = PageEvent(kind: entry.kind, from: e, page: page, refs: Int(value("refs") ?? 1), gupFlags: value("flags"))
        pe.driver = Attribution.attribute(stack: e.stack, caller: pe.caller, comm: e.comm)
        return pe
    }
}
