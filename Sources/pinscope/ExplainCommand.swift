import ArgumentParser
import PinScope

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
                out.write(r.id.padding(toLength: 24) + r.severity.rawValue.padding(toLength: 9) + r.title)
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

extension String {
    func padding(toLength n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
}
