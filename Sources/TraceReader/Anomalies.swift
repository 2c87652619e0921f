/// Named counters for everything odd in a trace — unparsable lines, unknown events, lost events —
/// counted rather than thrown, and shown in every summary (as Perfetto's stats table does).
public struct Anomalies: Sendable {
    public enum Severity: String, Sendable, Comparable {
        case info, error, dataLoss = "data-loss"
        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
        var rank: Int { switch self { case .info: 0; case .error: 1; case .dataLoss: 2 } }
    }

    public struct Entry: Sendable {
        public var name: String
        public var severity: Severity
        public var count: UInt64
        /// The first place it was seen.
        public var firstSeen: String?
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]

    public init() {}

    public mutating func count(_ name: String, _ severity: Severity, by n: UInt64 = 1, at place: String? = nil) {
        if let i = index[name] {
            entries[i].count &+= n
        } else {
            index[name] = entries.count
            entries.append(Entry(name: name, severity: severity, count: n, firstSeen: place))
        }
    }

    public subscript(name: String) -> UInt64 {
        index[name].map { entries[$0].count } ?? 0
    }

    public mutating func merge(_ other: Anomalies) {
        for e in other.entries { count(e.name, e.severity, by: e.count, at: e.firstSeen) }
    }

    public var isEmpty: Bool { entries.isEmpty }
}
