import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a server listens: `http://HOST[:PORT][/PREFIX]` (https is not spoken here).
public struct HTTPEndpoint: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    /// A path prefix put before every request's path ("" or "/something", no trailing slash).
    public var basePath: String

    public init(url: String) throws(HTTPClientError) {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased() else {
            throw .badURL(url, "expected http://HOST:PORT")
        }
        guard scheme == "http" else { throw .badURL(url, "only http:// is supported (put a TLS proxy in front for https)") }
        guard let host = parts.host, !host.isEmpty else { throw .badURL(url, "no host") }
        self.host = host
        guard let port = UInt16(exactly: parts.port ?? 80), port > 0 else { throw .badURL(url, "the port must be 1-65535") }
        self.port = port
        var path = parts.path
        while path.hasSuffix("/") { path.removeLast() }
        // A URL given with the API's own prefix (http://h:p/v1) means the same server.
        if path.hasSuffix("/v1") { path.removeLast(3) }
        basePath = path
    }
}

public enum HTTPClientError: Error, CustomStringConvertible, Equatable {
    case badURL(String, String)
    case connect(String)
    case timedOut
    case closed(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .badURL(let url, let why): "bad URL '\(url)': \(why)"
        case .connect(let why): "cannot connect: \(why)"
        case .timedOut: "timed out waiting for the server"
        case .closed(let when): "the server closed the connection \(when)"
        case .malformed(let what): "malformed HTTP response: \(what)"
        }
    }
}

/// One HTTP/1.1 exchange on its own connection (`Connection: close`), read as the bytes come: the status and
/// headers, then the body (chunked, Content-Length, or up to the close) handed over piece by piece, so that a
/// stream's events are timed when they arrive.
public final class HTTPExchange {
    public private(set) var status = 0
    public private(set) var headers: [String: String] = [:]
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var position = 0
    static let headLimit = 64 << 10

    /// Connects and sends the request. `timeout`: the longest wait for any one read or write.
    public init(endpoint: HTTPEndpoint, method: String, path: String, headers: [(String, String)] = [],
                body: [UInt8] = [], timeout: Double) throws(HTTPClientError) {
        fd = try Self.connect(endpoint, timeout: timeout)
        var head = "\(method) \(endpoint.basePath)\(path) HTTP/1.1\r\nHost: \(endpoint.host):\(endpoint.port)\r\n"
            + "Connection: close\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        do {
            try write(Array(head.utf8) + body)
            try readHead()
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    /// Reads the body, handing each decoded piece to `consume`; returns when the body ends, or early when
    /// `consume` returns false. Throws when the connection ends before the body does.
    public func readBody(_ consume: ([UInt8]) -> Bool) throws(HTTPClientError) {
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                let line = try readLine(limit: 1024)
                let sizeText = line.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0,
                      size < (1 << 30) else { throw .malformed("chunk size '\(line)'") }
                if size == 0 {
                    while try !readLine(limit: 8192).isEmpty {}  // trailers
                    return
                }
                let piece = try readExactly(size)
                guard try readLine(limit: 2).isEmpty else { throw .malformed("no CRLF after a chunk") }
                if !consume(piece) { return }
            }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            guard length >= 0 else { throw .malformed("Content-Length \(length)") }
            var left = length
            while left > 0 {
                let piece = try readSome(max: left)
                left -= piece.count
                if !consume(piece) { return }
            }
        } else {
            while true {
                let piece: [UInt8]
                do { piece = try readSome(max: 1 << 16) } catch .closed { return }
                if !consume(piece) { return }
            }
        }
    }

    /// The whole body (at most `limit` bytes).
    public func readWholeBody(limit: Int = 64 << 20) throws(HTTPClientError) -> [UInt8] {
        var body: [UInt8] = []
        var tooLong = false
        try readBody { piece in
            body += piece
            tooLong = body.count > limit
            return !tooLong
        }
        if tooLong { throw .malformed("a body over \(limit) bytes") }
        return body
    }

    // MARK: reading

    private func readHead() throws(HTTPClientError) {
        let statusLine = try readLine(limit: 8192)
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]), (100...999).contains(code) else {
            throw .malformed("status line '\(statusLine.prefix(80))'")
        }
        status = code
        var total = statusLine.count
        while true {
            let line = try readLine(limit: Self.headLimit)
            if line.isEmpty { break }
            total += line.count
            guard total < Self.headLimit else { throw .malformed("headers over \(Self.headLimit) bytes") }
            guard let colon = line.firstIndex(of: ":") else { throw .malformed("header line '\(line.prefix(80))'") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        // An interim 100 Continue: the real answer follows.
        if status == 100 { headers = [:]; try readHead() }
    }

    private func readLine(limit: Int) throws(HTTPClientError) -> String {
        while true {
            if let newline = buffer[position...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > position, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = String(decoding: buffer[position..<end], as: UTF8.self)
                position = newline + 1
                return line
            }
            guard buffer.count - position <= limit else { throw .malformed("a line over \(limit) bytes") }
            try fill()
        }
    }

    private func readExactly(_ count: Int) throws(HTTPClientError) -> [UInt8] {
        while buffer.count - position < count { try fill() }
        defer { position += count }
        return Array(buffer[position..<(position + count)])
    }

    private func readSome(max: Int) throws(HTTPClientError) -> [UInt8] {
        if position == buffer.count { try fill() }
        let n = min(max, buffer.count - position)
        defer { position += n }
        return Array(buffer[position..<(position + n)])
    }

    private func fill() throws(HTTPClientError) {
        if position > 0 {
            buffer.removeFirst(position)
            position = 0
        }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            buffer += chunk[0..<n]
        } else if n == 0 {
            throw .closed(status == 0 ? "before answering" : "before the end of the body")
        } else if errno == EAGAIN || errno == EWOULDBLOCK {
            throw .timedOut
        } else {
            throw .closed("(\(String(cString: strerror(errno))))")
        }
    }

    private func write(_ bytes: [UInt8]) throws(HTTPClientError) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 {
                if n < 0, errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut }
                throw .closed("while the request was sent")
            }
            sent += n
        }
    }

    private static func connect(_ endpoint: HTTPEndpoint, timeout: Double) throws(HTTPClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw .connect("\(endpoint.host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let a = entry {
            entry = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            let seconds = max(timeout, 0.001)
            var interval = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - floor(seconds)) * 1e6))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
            lastError = "\(endpoint.host):\(endpoint.port): \(String(cString: strerror(errno)))"
            close(fd)
        }
        throw .connect(lastError)
    }
}
