/// An input the readers cannot read: names the file, where, and what was expected.
public struct TraceError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var offset: UInt64?
    public var line: Int?
    public var message: String

    public init(file: String, offset: UInt64? = nil, line: Int? = nil, _ message: String) {
        self.file = file
        self.offset = offset
        self.line = line
        self.message = message
    }

    public var description: String {
        var place = file
        if let line { place += ":\(line)" } else if let offset { place += ": offset \(offset)" }
        return "\(place): \(message)"
    }
}

/// A problem that did not stop reading (damage after which events were still produced).
public struct TraceWarning: Sendable, CustomStringConvertible {
    public var file: String
    public var offset: UInt64?
    public var message: String
    public var description: String {
        "\(file)\(offset.map { ": offset \($0)" } ?? ""): \(message)"
    }
}
