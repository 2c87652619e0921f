/// Writes events as JSON lines (`pinscope events --format jsonl`) and as one-line text.
public enum EventFormatter {
    /// `{"ts_ns":…,"cpu":…,"pid":…,"comm":…,"system":…,"event":…,"fields":{…},"stack":[…],"lost":…}`
    public static func jsonLine(_ e: RawEvent) -> String {
        var s = "{\"ts_ns\":\(e.timestampNs),\"cpu\":\(e.cpu),\"pid\":\(e.pid)"
        if let tgid = e.tgid { s += ",\"tgid\":\(tgid)" }
        s += ",\"comm\":"
        appendJSONString(e.comm, to: &s)
        s += ",\"system\":"
        appendJSONString(e.system, to: &s)
        s += ",\"event\":"
        appendJSONString(e.name, to: &s)
        s += ",\"fields\":{"
        for (i, f) in e.fields.enumerated() {
            if i > 0 { s += "," }
            appendJSONString(f.name, to: &s)
            s += ":"
            switch f.value {
            case .signed(let v): s += String(v)
            case .unsigned(let v):
                // Kernel addresses exceed JSON's exact integer range (2^53): write those as hex text.
                s += v < 1 << 53 ? String(v) : "\"0x" + String(v, radix: 16) + "\""
            case .string(let v): appendJSONString(v, to: &s)
            case .array(let a): s += "[" + a.map { String($0) }.joined(separator: ",") + "]"
            }
        }
        s += "}"
        if !e.stack.isEmpty {
            s += ",\"stack\":["
            for (i, f) in e.stack.enumerated() {
                if i > 0 { s += "," }
                appendJSONString(f.description, to: &s)
            }
            s += "]"
        }
        if let lost = e.lostBefore {
            s += lost == UInt64.max ? ",\"lost\":-1" : ",\"lost\":\(lost)"
        }
        s += ",\"at\":"
        appendJSONString(e.locator.description, to: &s)
        s += "}"
        return s
    }

    public static func appendJSONString(_ value: String, to s: inout String) {
        s += "\""
        for u in value.unicodeScalars {
            switch u {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\n": s += "\\n"
            case "\r": s += "\\r"
            case "\t": s += "\\t"
            default:
                if u.value < 0x20 {
                    s += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16)
                } else {
                    s.unicodeScalars.append(u)
                }
            }
        }
        s += "\""
    }

    /// A report-like line for events from text traces: `comm-pid [cpu] sec.usec: name: fields`.
    public static func textLine(_ e: RawEvent) -> String {
        let sec = e.timestampNs / 1_000_000_000
        let usec = (e.timestampNs % 1_000_000_000 + 500) / 1000
        let (s, u) = usec >= 1_000_000 ? (sec + 1, usec - 1_000_000) : (sec, usec)
        let frac = String(u)
        var line = e.comm.leftPadded(16) + "-" + String(e.pid).rightPadded(5) + " [" + zeroPad(e.cpu, 3) + "] "
        line += String(s).leftPadded(5) + "." + String(repeating: "0", count: 6 - frac.count) + frac + ": "
        line += e.name + ": "
        if e.name.count < 20 { line += String(repeating: " ", count: 20 - e.name.count) }
        line += e.payload ?? e.fields.map { " \($0.name)=\($0.value)" }.joined()
        return line
    }

    private static func zeroPad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}

extension String {
    /// Right-aligned in `width` columns (printf's `%*s`).
    public func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }

    /// Left-aligned in `width` columns (printf's `%-*s`).
    public func rightPadded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
