/// PinScope's pin model builds on the raw events the `TraceReader` module produces:
/// Vocabulary (raw events -> PageEvents), Identity (page keys), then ledger and rules.
public enum PinScopeVersion {
    public static let string = "0.1.0"
}
