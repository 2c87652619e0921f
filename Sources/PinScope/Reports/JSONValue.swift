import TraceReader

/// A JSON document built in memory and written with stable key order.
public indirect enum JSONValue: Sendable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case int(Int64)
    case uint(UInt64)
    case bool(Bool)
    case null

    public static func optional(_ v: UInt64?) -> JSONValue { v.map { .uint($0) } ?? .null }
    public static func optional(_ v: String?) -> JSONValue { v.map { .string($0) } ?? .null }

    public func rendered(indent: Int = 0, pretty: Bool = true) -> String {
        var out = ""
        render(into: &out, indent: indent, pretty: pretty)
        return out
    }

    func render(into out: inout String, indent: Int, pretty: Bool) {
        let nl = pretty ? "\n" : ""
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let closePad = pretty ? String(repeating: "  ", count: indent) : ""
        switch self {
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{" + nl
            for (i, (k, v)) in members.enumerated() {
                out += pad
                EventFormatter.appendJSONString(k, to: &out)
                out += pretty ? ": " : ":"
                v.render(into: &out, indent: indent + 1, pretty: pretty)
                out += (i + 1 < members.count ? "," : "") + nl
            }
            out += closePad + "}"
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "[" + nl
            for (i, v) in items.enumerated() {
                out += pad
                v.render(into: &out, indent: indent + 1, pretty: pretty)
                out += (i + 1 < items.count ? "," : "") + nl
            }
            out += closePad + "]"
        case .string(let s): EventFormatter.appendJSONString(s, to: &out)
        case .int(let v): out += String(v)
        case .uint(let v): out += String(v)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }
}
