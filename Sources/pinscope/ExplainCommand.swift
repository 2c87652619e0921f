import ArgumentParser
import PinScope
import TraceReader

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain a rule: why it is dangerous, where the kernel discussed it, the remedy."
    )

    @Argument(help: "Rule id (omit to list the rules).")
    var rule: String?

    func run() throws {
        let out = OutputBuffer()
        defer { out.flush() }
        guard let id = rule else {
            for r in Rules.all {
                out.write(r.id.rightPadded(23) + " " + r.severity.rawValue.rightPadded(8) + " " + r.title)
            }
            return
        }
        guard let info = Rules.info(id) else {
            printError("pinscope: error: no rule \"\(id)\"; rules: \(Rules.all.map(\.id).joined(separator: ", "))")
            throw ExitCode(2)
        }
        out.write("\(info.id) (\(info.severity.rawValue)): \(info.title)")
        out.write("")
        out.write(info.explanation)
    }
}
