/// One value per CPU, in an array: per-event state keyed by CPU number without hashing.
struct PerCPU<Value>: Sendable where Value: Sendable {
    private var values: [Value?] = []

    subscript(cpu: Int) -> Value? {
        get { cpu >= 0 && cpu < values.count ? values[cpu] : nil }
        set {
            guard cpu >= 0 else { return }
            if cpu >= values.count { values += [Value?](repeating: nil, count: cpu + 1 - values.count) }
            values[cpu] = newValue
        }
    }
}
