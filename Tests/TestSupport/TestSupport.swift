import Foundation

/// Paths to the package, its bundled sample traces, the shared real captures, and the built CLI.
public enum TestPaths {
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    public static var samples: URL { packageRoot.appendingPathComponent("SampleTraces") }

    /// `../shared/traces` beside the checkout, when present.
    public static var sharedTraces: URL? {
        let url = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/traces")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    public static func sample(_ relative: String) -> String {
        samples.appendingPathComponent(relative).path
    }

    /// Every trace.dat in SampleTraces and ../shared/traces.
    public static var allTraceDats: [String] {
        var roots = [samples]
        if let shared = sharedTraces { roots.append(shared) }
        var found: [String] = []
        for root in roots {
            guard let e = FileManager.default.enumerator(atPath: root.path) else { continue }
            for case let rel as String in e where rel.hasSuffix(".dat") {
                found.append(root.appendingPathComponent(rel).path)
            }
        }
        return found.sorted()
    }

    /// The built `pinscope` binary next to the test bundle.
    public static var pinscope: String {
        let candidates = [
            Bundle.main.bundleURL.appendingPathComponent("pinscope").path,
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("pinscope").path,
            packageRoot.appendingPathComponent(".build/debug/pinscope").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }

    public static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}

public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a program to completion, capturing its output (read concurrently so pipes never fill).
public func runProcess(_ path: String, _ arguments: [String], stdin: Data? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = Pipe()
    p.standardInput = stdin == nil ? FileHandle.nullDevice : inPipe
    try p.run()
    if let stdin {
        DispatchQueue.global().async {
            inPipe.fileHandleForWriting.write(stdin)
            try? inPipe.fileHandleForWriting.close()
        }
    }
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    let errData = errBox.data
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// A copy of `path` in a temporary file, changed by `edit`.
public func damagedCopy(of path: String, name: String, _ edit: (inout Data) -> Void) throws -> String {
    var data = try Data(contentsOf: URL(fileURLWithPath: path))
    edit(&data)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pinscope-tests-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try data.write(to: url)
    return url.path
}
