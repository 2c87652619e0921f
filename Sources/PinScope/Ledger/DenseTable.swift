/// Values by a small non-negative number (a CPU, a reader's event type id), in an array that
/// grows to the largest number set: per-event state looked up without hashing.
struct DenseTable<Value> {
    private var values: [Value?] = []

    subscript(i: Int) -> Value? {
        get { i >= 0 && i < values.count ? values[i] : nil }
        set {
            guard i >= 0 else { return }
            if i >= values.count { values += [Value?](repeating: nil, count: i + 1 - values.count) }
            values[i] = newValue
        }
    }
}

extension DenseTable: Sendable where Value: Sendable {}
