import Foundation
import XCTest

/// `quantserve serve` as a user runs it: idle, it uses no CPU; each request gets an access-log line; SIGTERM with a
/// stream in flight ends the stream with `abort` and `[DONE]`, and the process exits 0 within 5 s.
final class ShutdownTests: XCTestCase {
    /// The executable built beside the tests.
    static func binary() throws -> URL {
        let candidates = [Bundle.main.bundleURL.appendingPathComponent("quantserve"),
                          Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("quantserve"),
                          TestServer.repositoryRoot.appendingPathComponent(".build/release/quantserve")]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            XCTFail("quantserve binary not found in \(candidates.map(\.path))")
            throw XCTSkip("no binary")
        }
        return found
    }

    /// Starts `quantserve ARGUMENTS` (a `serve` on port 0) and reads its stderr until `engines` "ready:" lines;
    /// returns the process, its stderr so far and the port it listens on.
    static func startServe(_ arguments: [String], engines: Int = 1) throws -> (Process, Pipe, String, UInt16) {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // "listening on http://127.0.0.1:PORT ...", then a "ready: ..." per engine.
        var log = ""
        var port: UInt16?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, log.components(separatedBy: "ready:").count <= engines {
            let data = errors.fileHandleForReading.availableData
            if data.isEmpty { break }
            log += String(decoding: data, as: UTF8.self)
            if port == nil, let r = log.range(of: "http://127.0.0.1:") {
                port = UInt16(log[r.upperBound...].prefix(while: \.isNumber))
            }
        }
        guard let port else {
            process.terminate()
            XCTFail("no port in: \(log)")
            throw XCTSkip("the server did not start")
        }
        return (process, errors, log, port)
    }

    func testSIGTERMEndsStreamsAndExitsZero() throws {
        let model = try TestServer.defaultModel()
        var (process, errors, log, p) = try Self.startServe(["serve", "--model", model, "--port", "0", "--ctx-size", "1024"])
        defer { if process.isRunning { process.terminate() } }
        XCTAssertTrue(log.contains("ready:"), log)

        // An idle server uses no CPU: the engine loop and the pool's threads sleep.
        let plain = try RawHTTPClient.request(p, "POST", "/v1/completions", json: #"{"prompt": "def f(x):", "max_tokens": 8, "ignore_eos": true}"#,
                                              headers: ["X-Request-Id": "idle-check-1"])
        XCTAssertEqual(plain.status, 200)
        usleep(300_000)
        let before = try Self.cpuSeconds(process.processIdentifier)
        sleep(2)
        let idle = try Self.cpuSeconds(process.processIdentifier) - before
        XCTAssertLessThan(idle, 0.05, "an idle server used \(idle) s of CPU in 2 s")

        let c = try RawHTTPClient(port: p)
        c.sendRequest("POST", "/v1/chat/completions", body: Array(#"{"messages": [{"role": "user", "content": "Tell a long story"}], "max_tokens": 500, "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}}"#.utf8))
        XCTAssertEqual(c.readHead()?.0, 200)
        var body = ""
        for _ in 0..<4 { body += String(decoding: try XCTUnwrap(c.readChunk()), as: UTF8.self) }
        let signalled = Date()
        kill(process.processIdentifier, SIGTERM)
        while let chunk = c.readChunk(), !chunk.isEmpty { body += String(decoding: chunk, as: UTF8.self) }
        process.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(signalled), 5)
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(process.terminationReason, .exit)
        let events = sseEvents(body)
        XCTAssertEqual(events.last, "[DONE]")
        let finishes = events.dropLast().compactMap { e -> String? in
            ((object(e)["choices"] as? [[String: Any]])?.first?["finish_reason"]) as? String
        }
        XCTAssertEqual(finishes, ["abort"])
        XCTAssertLessThan(events.count, 500)

        // The access log: one line per request with its id, route, status and token counts.
        log += String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let line = try XCTUnwrap(log.split(separator: "\n").first { $0.contains(" idle-check-1 ") }, log)
        XCTAssertTrue(line.contains(" POST /v1/completions 200 prompt="), String(line))
        XCTAssertTrue(line.contains(" completion=8 "), String(line))
        XCTAssertTrue(line.contains(" ttft=0."), String(line))
        XCTAssertTrue(log.contains(" POST /v1/chat/completions 200 "), log)
    }

    /// User plus system CPU time of a process, from /proc/PID/stat.
    static func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based over the whole line).
        let ticks = Double(fields[11])! + Double(fields[12])!
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
