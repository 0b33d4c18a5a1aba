import CHTTPShim
import CMicroHTTPD
import Foundation
import Synchronization

/// Answers requests. Runs on the connection's own thread and may block there (waiting for a whole generation);
/// `connection` tells whether the client is still there.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest, connection: HTTPConnection) -> HTTPResponse
}

/// The client side of a request, for a handler that waits: its socket, to notice a hang-up.
public struct HTTPConnection: Sendable {
    public let socket: Int32
}

public struct HTTPServerOptions: Sendable {
    public var host = "127.0.0.1"
    /// 0: any free port (see `HTTPServer.port`).
    public var port: UInt16 = 8080
    /// Bodies over this are refused with 413, before they are read when they declare their length.
    public var maxBodyBytes = 8 << 20
    /// A connection that sends or reads nothing for this long (idle keep-alive, a crawling client) is closed.
    /// A request waiting for the engine is not idle: its thread is in the handler, not waiting on the client.
    public var idleTimeoutSeconds: UInt32 = 30
    /// Connections open at once (each holds a thread, a socket and, while generating, an eventfd).
    public var connectionLimit: UInt32 = 512
    public init() {}
}

public struct HTTPServerError: Error, CustomStringConvertible {
    public let description: String
}

/// An HTTP/1.1 server on libmicrohttpd with a thread per connection: requests are read whole (bounded), handed
/// to the handler, and answered with a whole body or a chunked stream fed by a `ResponseChannel`.
public final class HTTPServer: Sendable {
    /// The C daemon handle; libmicrohttpd is thread-safe for everything called on it here.
    private struct Daemon: @unchecked Sendable { let pointer: OpaquePointer }

    public let options: HTTPServerOptions
    let handler: any HTTPHandler
    private let daemon: Mutex<Daemon?>

    /// The port it listens on (the one the system chose, for port 0).
    public var port: UInt16 { daemon.withLock { $0.map { qs_http_port($0.pointer) } ?? 0 } }

    public init(options: HTTPServerOptions, handler: any HTTPHandler) throws {
        self.options = options
        self.handler = handler
        daemon = Mutex(nil)
        var error = [CChar](repeating: 0, count: 256)
        // The callbacks get the server as their context: it stays alive until `stop()` releases it.
        let context = Unmanaged.passRetained(self)
        guard let d = qs_http_start(options.host, options.port, options.idleTimeoutSeconds, options.connectionLimit,
                                    64 << 10, accessHandler, completedHandler, context.toOpaque(), &error,
                                    error.count) else {
            context.release()
            throw HTTPServerError(description: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) },
                                                      as: UTF8.self))
        }
        daemon.withLock { $0 = Daemon(pointer: d) }
    }

    /// Stops listening, closes every connection and waits for their threads. Finish every stream first.
    public func stop() {
        guard let d = daemon.withLock({ d -> Daemon? in defer { d = nil }; return d }) else { return }
        MHD_stop_daemon(d.pointer)
        Unmanaged.passUnretained(self).release()
    }
}

/// One request's state between libmicrohttpd's calls: its headers and the body read so far.
final class RequestContext {
    var request: HTTPRequest
    var received = 0
    var answered = false
    /// The stream a response is reading from, to hang up if the connection ends early.
    var channel: ResponseChannel?

    init(request: HTTPRequest) { self.request = request }
}

/// What a stream response's reader callback needs.
final class StreamReader {
    let channel: ResponseChannel
    let socket: Int32
    let connection: OpaquePointer?
    let idleTimeout: UInt32
    init(channel: ResponseChannel, socket: Int32, connection: OpaquePointer?, idleTimeout: UInt32) {
        self.channel = channel
        self.socket = socket
        self.connection = connection
        self.idleTimeout = idleTimeout
    }
}

private let headerNames = ["content-length", "content-type", "authorization", "x-request-id", "transfer-encoding",
                           "accept", "user-agent", "origin", "cache-control", "if-none-match"]

/// The query-string arguments a route reads (`/v1/quantserve/report?window=3600&format=markdown`).
private let queryNames = ["window", "format"]

private func lookupHeader(_ connection: OpaquePointer?, _ name: String,
                          kind: MHD_ValueKind = QS_MHD_HEADER_KIND) -> String? {
    guard let value = MHD_lookup_connection_value(connection, kind, name) else { return nil }
    return String(validatingCString: value) ?? String(decoding: Array(
        UnsafeBufferPointer(start: value, count: strlen(value))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private let accessHandler: qs_http_access_handler = { cls, connection, url, method, _, uploadData, uploadSize, requestContext in
    guard let cls, let requestContext, let uploadSize else { return QS_MHD_NO }
    let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()
    if requestContext.pointee == nil {
        // First call: headers only.
        var headers: [String: String] = [:]
        for name in headerNames { if let v = lookupHeader(connection, name) { headers[name] = v } }
        let path = url.map { String(cString: $0) } ?? "/"
        var request = HTTPRequest(method: method.map { String(cString: $0) } ?? "GET", path: path, headers: headers)
        for name in queryNames {
            if let v = lookupHeader(connection, name, kind: QS_MHD_GET_ARGUMENT_KIND) { request.query[name] = v }
        }
        let context = RequestContext(request: request)
        if let raw = headers["content-length"] {
            guard let n = Int(raw.trimmingCharacters(in: .whitespaces)), n >= 0 else { return QS_MHD_NO }
            if n > server.options.maxBodyBytes {
                // Refused before a byte of it is read.
                context.request.bodyTooLarge = true
                requestContext.pointee = Unmanaged.passRetained(context).toOpaque()
                context.answered = true
                return respond(server, connection, context)
            }
            // Room for the declared body, but not more than 1 MiB ahead of what has arrived.
            context.request.body.reserveCapacity(min(n, 1 << 20))
        }
        requestContext.pointee = Unmanaged.passRetained(context).toOpaque()
        return QS_MHD_YES
    }
    let context = Unmanaged<RequestContext>.fromOpaque(requestContext.pointee!).takeUnretainedValue()
    if uploadSize.pointee > 0 {
        let n = uploadSize.pointee
        context.received += n
        if context.received > server.options.maxBodyBytes {
            context.request.bodyTooLarge = true
            context.request.body = []
            // A body of unknown length that never ends is not drained for ever.
            if context.received > 8 * server.options.maxBodyBytes { return QS_MHD_NO }
        } else if let uploadData {
            uploadData.withMemoryRebound(to: UInt8.self, capacity: n) {
                context.request.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n))
            }
        }
        uploadSize.pointee = 0
        return QS_MHD_YES
    }
    if context.answered { return QS_MHD_YES }
    context.answered = true
    return respond(server, connection, context)
}

private func respond(_ server: HTTPServer, _ connection: OpaquePointer?, _ context: RequestContext) -> MHD_Result {
    let socket = qs_http_connection_fd(connection)
    let response = server.handler.handle(context.request, connection: HTTPConnection(socket: socket))
    let mhdResponse: OpaquePointer?
    switch response.body {
    case .full(let bytes):
        mhdResponse = bytes.withUnsafeBytes {
            MHD_create_response_from_buffer(bytes.count, UnsafeMutableRawPointer(mutating: $0.baseAddress),
                                            QS_MHD_RESPMEM_MUST_COPY)
        }
    case .stream(let channel):
        context.channel = channel
        let reader = Unmanaged.passRetained(StreamReader(channel: channel, socket: socket, connection: connection,
                                                       idleTimeout: server.options.idleTimeoutSeconds))
        mhdResponse = MHD_create_response_from_callback(UInt64.max, 16 << 10, streamRead, reader.toOpaque(), streamFree)
        if mhdResponse == nil { reader.release(); channel.hangUp() }
    }
    guard let mhdResponse else { return QS_MHD_NO }
    for h in response.headers { MHD_add_response_header(mhdResponse, h.name, h.value) }
    let result = MHD_queue_response(connection, UInt32(response.status), mhdResponse)
    MHD_destroy_response(mhdResponse)
    return result
}

private let streamRead: MHD_ContentReaderCallback = { cls, _, buffer, max in
    guard let cls, let buffer else { return -2 }
    let reader = Unmanaged<StreamReader>.fromOpaque(cls).takeUnretainedValue()
    var waited = false
    while true {
        switch reader.channel.read(max: max) {
        case .bytes(let bytes):
            // Waiting for the engine is not the client being idle.
            if waited, let connection = reader.connection { qs_http_touch(connection, reader.idleTimeout) }
            bytes.withUnsafeBytes { UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            return bytes.count
        case .end: return -1  // MHD_CONTENT_READER_END_OF_STREAM
        case .hungUp: return -2  // MHD_CONTENT_READER_END_WITH_ERROR
        case .empty:
            reader.channel.wait(socket: reader.socket)
            waited = true
        }
    }
}

private let streamFree: MHD_ContentReaderFreeCallback = { cls in
    guard let cls else { return }
    let reader = Unmanaged<StreamReader>.fromOpaque(cls).takeRetainedValue()
    // The response is gone: if its stream had not finished, the client went away.
    if !reader.channel.isFinished { reader.channel.hangUp() }
}

private let completedHandler: qs_http_completed_handler = { _, _, requestContext, _ in
    guard let requestContext, let raw = requestContext.pointee else { return }
    let context = Unmanaged<RequestContext>.fromOpaque(raw).takeRetainedValue()
    requestContext.pointee = nil
    if let channel = context.channel {
        if !channel.isFinished { channel.hangUp() }
        channel.connectionClosed()
    }
}
