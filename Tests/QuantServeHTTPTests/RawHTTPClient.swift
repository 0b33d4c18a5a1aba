import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A deliberately plain HTTP/1.1 client over a socket, so that tests see the exact bytes on the wire and can hang
/// up at any moment (mid-stream, mid-prefill) the way a real client does.
final class RawHTTPClient {
    struct Response {
        var status: Int
        var headers: [String: String]
        /// The body after chunked decoding.
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body)) }
        var error: [String: Any]? { (json as? [String: Any])?["error"] as? [String: Any] }
    }

    let fd: Int32
    private var buffer: [UInt8] = []

    /// `receiveBuffer`: the socket's receive buffer in bytes (small: a client that reads slowly fills it soon).
    init(port: UInt16, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw NSError(domain: "connect", code: Int(errno)) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func hangUp() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// Reads and drops whatever comes until the server closes the connection; false if it is still open after
    /// `seconds`.
    func drainUntilClosed(seconds: Int) -> Bool {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    func send(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    func sendRequest(_ method: String, _ path: String, body: [UInt8]? = nil, headers: [String: String] = [:]) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\nContent-Type: application/json\r\n" }
        head += "\r\n"
        send(Array(head.utf8) + (body ?? []))
    }

    /// More bytes from the socket; false at the end or on a timeout.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        buffer.append(contentsOf: chunk[..<n])
        return true
    }

    private func line() -> String? {
        while true {
            if let i = buffer.firstIndex(of: 0x0A) {
                let l = String(decoding: buffer[..<i], as: UTF8.self).trimmingCharacters(in: .init(charactersIn: "\r"))
                buffer.removeFirst(i + 1)
                return l
            }
            guard fill() else { return nil }
        }
    }

    private func take(_ n: Int) -> [UInt8]? {
        while buffer.count < n { guard fill() else { return nil } }
        defer { buffer.removeFirst(n) }
        return Array(buffer[..<n])
    }

    /// The status line and headers.
    func readHead() -> (Int, [String: String])? {
        guard let status = line(), status.hasPrefix("HTTP/1."), let code = Int(status.split(separator: " ")[1]) else { return nil }
        var headers: [String: String] = [:]
        while let l = line(), !l.isEmpty {
            if let c = l.firstIndex(of: ":") {
                headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return (code, headers)
    }

    /// The next chunk of a chunked body (empty at its end), nil if the connection ended first.
    func readChunk() -> [UInt8]? {
        guard let sizeLine = line(), let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { return nil }
        if size == 0 { _ = line(); return [] }
        guard let data = take(size), line() != nil else { return nil }
        return data
    }

    /// A whole response; nil if the connection ended before it did.
    func readResponse() -> Response? {
        guard let (status, headers) = readHead() else { return nil }
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while let chunk = readChunk() {
                if chunk.isEmpty { return Response(status: status, headers: headers, body: body) }
                body += chunk
            }
            return nil
        }
        guard let length = Int(headers["content-length"] ?? "0"), let data = take(length) else { return nil }
        body = data
        return Response(status: status, headers: headers, body: body)
    }

    /// One request on a new connection.
    static func request(_ port: UInt16, _ method: String, _ path: String, json: String? = nil,
                        headers: [String: String] = [:]) throws -> Response {
        let c = try RawHTTPClient(port: port)
        c.sendRequest(method, path, body: json.map { Array($0.utf8) }, headers: headers)
        guard let r = c.readResponse() else { throw NSError(domain: "no response", code: 0) }
        return r
    }
}
