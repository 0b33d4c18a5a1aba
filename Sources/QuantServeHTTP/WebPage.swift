import Foundation

/// The page at `GET /`: chat, compare two levels, status and the cost explorer, as static files (Web/) shipped as
/// a resource of this target and read once. Served with their types, an ETag (a revalidation costs a 304), and a
/// Content-Security-Policy that allows only this server's own scripts, styles and connections.
enum WebPage {
    /// The files, by the path they are served at.
    static let files: [(path: String, file: String, type: String)] = [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/ui/style.css", "style.css", "text/css; charset=utf-8"),
        ("/ui/api.js", "api.js", "text/javascript; charset=utf-8"),
        ("/ui/markdown.js", "markdown.js", "text/javascript; charset=utf-8"),
        ("/ui/chat.js", "chat.js", "text/javascript; charset=utf-8"),
        ("/ui/compare.js", "compare.js", "text/javascript; charset=utf-8"),
        ("/ui/status.js", "status.js", "text/javascript; charset=utf-8"),
        ("/ui/costs.js", "costs.js", "text/javascript; charset=utf-8"),
        ("/ui/app.js", "app.js", "text/javascript; charset=utf-8"),
    ]

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    struct Asset: Sendable {
        let body: [UInt8]
        let type: String
        let etag: String
    }

    /// Every file read once (nil for a file the resource bundle lacks: the route answers 404 saying so).
    static let assets: [String: Asset] = {
        var out: [String: Asset] = [:]
        for f in files {
            let name = (f.file as NSString).deletingPathExtension, ext = (f.file as NSString).pathExtension
            guard let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Web"),
                  let data = try? Data(contentsOf: url) else { continue }
            let body = [UInt8](data)
            out[f.path] = Asset(body: body, type: f.type, etag: "\"\(fnv1a(body))\"")
        }
        return out
    }()

    static func fnv1a(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return String(h, radix: 16)
    }

    /// The file at `path` (an `If-None-Match` that matches gets 304).
    static func response(_ path: String, ifNoneMatch: String?) -> HTTPResponse {
        guard let asset = assets[path] else {
            return .text(404, "the web page's files are not installed next to this binary (its resource bundle is missing)\n")
        }
        var headers: [(name: String, value: String)] = [("ETag", asset.etag), ("Cache-Control", "no-cache"),
                                                        ("X-Content-Type-Options", "nosniff")]
        if asset.type.hasPrefix("text/html") {
            headers += [("Content-Security-Policy", contentSecurityPolicy), ("X-Frame-Options", "DENY"),
                        ("Referrer-Policy", "no-referrer")]
        }
        if let tags = ifNoneMatch, tags.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == asset.etag }) {
            return HTTPResponse(status: 304, headers: headers)
        }
        return HTTPResponse(status: 200, headers: [("Content-Type", asset.type)] + headers, body: .full(asset.body))
    }
}
