import Foundation
import XCTest
import QuantServe
import QuantServeHTTP
import QuantServeJSON
import QuantServeLoad
#if canImport(Glibc)
import Glibc
#endif

/// `bench serve`'s load generator against our server (its counts checked against the server's own metrics), against
/// fake servers that fail in each way a real one can, and its parsing and statistics on their own.
final class BenchServeTests: XCTestCase {
    static let shared = Result { try TestServer() }
    var server: TestServer { try! Self.shared.get() }

    func client(_ port: UInt16, timeout: Double = 60) throws -> ServeClient {
        ServeClient(endpoint: try HTTPEndpoint(url: "http://127.0.0.1:\(port)"), timeout: timeout)
    }

    func testCountsMatchTheServersMetrics() throws {
        let c = try client(server.port)
        XCTAssertEqual(try c.firstModel(), "tiny-qwen2")
        let prompts = try ServeWorkload.randomPrompts(count: 9, inputTokens: 24, outputTokens: 6, chat: false, seed: 7, client: c)
        XCTAssertTrue(prompts.allSatisfy { if case .tokens(let ids) = $0.content { return ids.count == 24 }; return false })
        let generatedBefore = try XCTUnwrap(server.metric("quantserve:generation_tokens_total"))
        let promptBefore = try XCTUnwrap(server.metric("quantserve:prompt_tokens_total"))
        let r = ServeBenchmark.run(ServeBenchConfig(client: c, model: "tiny-qwen2", chat: false, arrivals: .concurrency(3)),
                                   prompts: prompts)
        XCTAssertEqual(r.completed, 9, "\(r.errors)")
        XCTAssertEqual(r.failed, 0)
        XCTAssertEqual(r.total_output_tokens, 54, "ignore_eos makes every request generate exactly max_tokens")
        XCTAssertEqual(r.total_input_tokens, 9 * 24)
        XCTAssertEqual(try server.metric("quantserve:generation_tokens_total")! - generatedBefore, 54)
        XCTAssertEqual(try server.metric("quantserve:prompt_tokens_total")! - promptBefore, Double(9 * 24))
        XCTAssertGreaterThan(r.mean_ttft_ms, 0)
        XCTAssertLessThanOrEqual(r.median_ttft_ms, r.p99_ttft_ms)
        XCTAssertGreaterThan(r.mean_tpot_ms, 0)
        XCTAssertEqual(r.output_throughput, Double(r.total_output_tokens) / r.duration, accuracy: 1e-9)
        XCTAssertEqual(r.request_throughput, 9 / r.duration, accuracy: 1e-9)
        XCTAssertLessThanOrEqual(r.mean_e2el_ms, r.duration * 1000)
    }

    func testChatDatasetAndGoodput() throws {
        let c = try client(server.port)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qs-\(UUID()).jsonl")
        try Data("""
            {"prompt": "Write a haiku about caches.", "max_tokens": 5}

            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}
            """.utf8).write(to: file)
        let prompts = try ServeWorkload.dataset(path: file.path, count: 4, outputTokens: 3)
        XCTAssertEqual(prompts.map(\.outputTokens), [5, 3, 5, 3])
        let config = ServeBenchConfig(client: c, model: "tiny-qwen2", chat: true, arrivals: .rate(50, maxInFlight: 2),
                                      goodput: ["ttft": 60_000, "e2el": 0.001])
        let r = ServeBenchmark.run(config, prompts: prompts)
        XCTAssertEqual(r.completed, 4, "\(r.errors)")
        XCTAssertEqual(r.total_output_tokens, 16)
        XCTAssertGreaterThan(r.total_input_tokens, 4 * 5, "chat templates add tokens, counted by the server's usage")
        XCTAssertEqual(r.request_goodput, 0, "no request ends within 1 us")
        XCTAssertEqual(r.request_rate, 50)
    }

    func testServerErrorsCountAsFailures() throws {
        let c = try client(server.port)
        let prompts = [ServePrompt(content: .text("hi"), outputTokens: 2)]
        let r = ServeBenchmark.run(ServeBenchConfig(client: c, model: "no-such-model", chat: false, arrivals: .concurrency(1)),
                                   prompts: prompts + prompts)
        XCTAssertEqual(r.completed, 0)
        XCTAssertEqual(r.failed, 2)
        XCTAssertEqual(r.total_output_tokens, 0)
        XCTAssertTrue(r.errors.first?.hasPrefix("HTTP 404") ?? false, "\(r.errors)")
        XCTAssertEqual(r.errors.count, 1, "the same reason listed once")
        XCTAssertEqual(r.mean_ttft_ms, 0, "failures are never timed")
    }

    func testBrokenStreamsCountAsFailures() throws {
        let sse = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        let token = #"data: {"choices":[{"text":"a"}]}"# + "\n\n"
        let cases: [(String, String)] = [
            (sse + "\r\n" + token + token, "the stream ended without [DONE]"),
            (sse + "\r\n" + #"data: {"error":{"message":"boom"}}"# + "\n\n", "an error in the stream: boom"),
            (sse + "\r\n" + "data: {not json\n\n", "an event that is not JSON"),
            ("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 31\r\n\r\n" + #"{"error":{"message":"exploded"}}"#.dropLast(), "HTTP 500"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndata:", "closed the connection before the end of the body"),
            ("garbage\r\n\r\n", "malformed HTTP response"),
            ("", "closed the connection before answering"),
        ]
        for (answer, expected) in cases {
            let fake = try FakeServer(answer: answer)
            let r = ServeBenchmark.run(ServeBenchConfig(client: try client(fake.port, timeout: 5), model: "m", chat: false,
                                                        arrivals: .concurrency(1)),
                                       prompts: [ServePrompt(content: .text("x"), outputTokens: 2)])
            XCTAssertEqual(r.failed, 1, answer)
            XCTAssertTrue(r.errors.first?.contains(expected) ?? false, "\(r.errors) for \(answer.debugDescription)")
        }
    }

    func testAStreamSplitAnywhereIsReadWhole() throws {
        // Chunked encoding with chunk boundaries inside events and lines, CRLF line ends and a comment.
        let events = ": comment\r\n" + #"data: {"choices":[{"text":"he"}]}"# + "\r\n\r\n" + #"data: {"choices":[{"text":"llo"}]}"# + "\n\n"
            + #"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"# + "\n\ndata: [DONE]\n\n"
        var body = ""
        var rest = Substring(events)
        var size = 1
        while !rest.isEmpty {
            let piece = rest.prefix(size)
            body += String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n"
            rest = rest.dropFirst(piece.count)
            size = size % 7 + 3
        }
        let fake = try FakeServer(answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + "0\r\n\r\n")
        let r = ServeBenchmark.run(ServeBenchConfig(client: try client(fake.port), model: "m", chat: false, arrivals: .concurrency(1)),
                                   prompts: [ServePrompt(content: .text("x"), outputTokens: 2)])
        XCTAssertEqual(r.completed, 1, "\(r.errors)")
        XCTAssertEqual(r.total_output_tokens, 2)
        XCTAssertEqual(r.total_input_tokens, 3)
    }

    func testSSEParserAcrossPieces() {
        var parser = SSEParser()
        XCTAssertEqual(parser.feed(Array("data: a\r".utf8)), [])
        XCTAssertEqual(parser.feed(Array("\ndata:b\n\nevent: x\nid: 1\ndata: {\"k\":".utf8)), ["a\nb"])
        XCTAssertEqual(parser.feed(Array(" 1}\r\n\r\n".utf8)), [#"{"k": 1}"#])
        XCTAssertEqual(parser.feed(Array("\n\n\n".utf8)), [], "blank lines alone are no event")
    }

    func testPoissonArrivalsAndStatistics() {
        let arrivals = ServeWorkload.poissonArrivals(count: 4000, rate: 50, seed: 3)
        XCTAssertEqual(arrivals, ServeWorkload.poissonArrivals(count: 4000, rate: 50, seed: 3), "seeded")
        XCTAssertEqual(arrivals.first, 0)
        let gaps = zip(arrivals.dropFirst(), arrivals).map { $0 - $1 }
        XCTAssertEqual(ServeStatistics.mean(gaps), 0.02, accuracy: 0.001)
        XCTAssertEqual(ServeStatistics.std(gaps), 0.02, accuracy: 0.0015, "exponential: the deviation equals the mean")
        // numpy.percentile([1, 2, 3, 4], 99) = 3.97, median 2.5; numpy.std = 1.118...
        XCTAssertEqual(ServeStatistics.percentile([4, 1, 3, 2], 99), 3.97, accuracy: 1e-12)
        XCTAssertEqual(ServeStatistics.percentile([4, 1, 3, 2], 50), 2.5)
        XCTAssertEqual(ServeStatistics.std([1, 2, 3, 4]), 1.118033988749895, accuracy: 1e-12)
    }

    func testEndpointURLs() throws {
        let e = try HTTPEndpoint(url: "http://localhost:8080/v1/")
        XCTAssertEqual([e.host, String(e.port), e.basePath], ["localhost", "8080", ""])
        XCTAssertEqual(try HTTPEndpoint(url: "http://h/proxy").basePath, "/proxy")
        XCTAssertThrowsError(try HTTPEndpoint(url: "https://h:1")) { XCTAssertTrue("\($0)".contains("only http://")) }
        XCTAssertThrowsError(try HTTPEndpoint(url: "localhost:8080"))
        XCTAssertThrowsError(try HTTPEndpoint(url: "http://h:70000"))
        XCTAssertThrowsError(try HTTPEndpoint(url: "http://h:0"))
        XCTAssertThrowsError(try ServeWorkload.dataset(path: "/nonexistent.jsonl", count: 1, outputTokens: 1))
    }
}

/// A one-connection server on a loopback port that reads a request and answers `answer` verbatim, then closes.
final class FakeServer: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32

    init(answer: String) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { a in
                bind(fd, a, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, a, &length) == 0
            }
        }
        guard bound else { close(fd); throw NSError(domain: "bind", code: Int(errno)) }
        port = UInt16(bigEndian: address.sin_port)
        let listener = fd
        Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            // The request: up to its blank line and Content-Length bytes of body.
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                received += chunk[0..<n]
                let text = String(decoding: received, as: UTF8.self)
                if let end = text.range(of: "\r\n\r\n") {
                    let length = text.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                        .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                    if text.utf8.distance(from: text.utf8.startIndex, to: end.upperBound) + length <= received.count { break }
                }
            }
            let bytes = Array(answer.utf8)
            _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(connection)
        }.start()
    }

    deinit { close(fd) }
}
