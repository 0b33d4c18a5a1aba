import Foundation
import QuantServe

/// A `quantserve` sub-command.
protocol Command {
    static var name: String { get }
    static var summary: String { get }
    static var options: [OptionSpec] { get }
    static func run(_ arguments: ParsedArguments) throws
}

let commands: [any Command.Type] = [ServeCommand.self, GenerateCommand.self, TokenizeCommand.self, PerplexityCommand.self,
                                     BenchCommand.self, BenchServeCommand.self, QuantizeCommand.self, InspectCommand.self,
                                     ReportCommand.self, PlanCommand.self]

func printError(_ message: String) {
    FileHandle.standardError.write(Data("quantserve: \(message)\n".utf8))
}

@MainActor func topLevelUsage() -> String {
    var lines = ["usage: quantserve COMMAND [options]", "", "commands:"]
    for c in commands { lines.append("  " + c.name.padding(toLength: 13, withPad: " ", startingAt: 0) + c.summary) }
    lines.append("")
    lines.append("Run 'quantserve COMMAND --help' for a command's options.")
    return lines.joined(separator: "\n")
}

let argv = Array(CommandLine.arguments.dropFirst())
guard let first = argv.first, first != "--help", first != "-h", first != "help" else {
    print(topLevelUsage())
    exit(argv.isEmpty ? 1 : 0)
}
// Two-word commands ("bench serve") before one-word ones.
let twoWords = argv.count > 1 ? "\(first) \(argv[1])" : ""
let matched = commands.first { $0.name == twoWords } ?? commands.first { $0.name == first }
guard let command = matched else {
    printError("unknown command '\(first)'\n\n\(topLevelUsage())")
    exit(1)
}
do {
    let parsed = try ParsedArguments(Array(argv.dropFirst(command.name.split(separator: " ").count)), specs: command.options)
    if parsed.helpRequested {
        print(usage(command: command.name, summary: command.summary, specs: command.options))
        exit(0)
    }
    try command.run(parsed)
} catch let error as UsageError {
    printError("\(error)\n\n\(usage(command: command.name, summary: command.summary, specs: command.options))")
    exit(1)
} catch {
    printError("\(error)")
    exit(1)
}
