import TraceReader

/// PinScope's pin model: vocabulary, page identity, ledger and rules build on the raw events
/// the `TraceReader` module produces.
public enum PinScopeVersion {
    public static let string = "0.1.0"
}
