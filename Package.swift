// swift-tools-version:6.0
import PackageDescription

// Which code is built without bounds checks: only the engine's numeric hot path, where a profile shows it pays
// (see DESIGN.md, "Swift for speed"). Everything that reads untrusted input (HTTP, JSON, requests) is checked (-O).
let fastSwift: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"])]
let checkedSwift: [SwiftSetting] = [.unsafeFlags(["-wmo"])]

let package = Package(
    name: "QuantServe",
    products: [
        .library(name: "QuantServe", targets: ["QuantServe"]),
        .library(name: "QuantServeHTTP", targets: ["QuantServeHTTP"]),
        .executable(name: "quantserve", targets: ["quantserve"]),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CMicroHTTPD",
            path: "Sources/CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]
        ),
        .target(
            name: "CKernels",
            path: "Sources/CKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]
        ),
        .target(
            name: "CHTTPShim",
            dependencies: ["CMicroHTTPD"],
            path: "Sources/CHTTPShim"
        ),
        .target(
            name: "QuantServeJSON",
            path: "Sources/QuantServeJSON",
            swiftSettings: checkedSwift
        ),
        .target(
            name: "QuantServe",
            dependencies: ["CKernels", "COpenBLAS", "QuantServeJSON"],
            path: "Sources/QuantServe",
            resources: [.copy("Resources/calibration.txt")],
            swiftSettings: fastSwift
        ),
        .target(
            name: "QuantServeHTTP",
            dependencies: ["QuantServe", "QuantServeJSON", "CHTTPShim", "CMicroHTTPD"],
            path: "Sources/QuantServeHTTP",
            swiftSettings: checkedSwift
        ),
        .executableTarget(
            name: "quantserve",
            dependencies: ["QuantServe", "QuantServeHTTP"],
            path: "Sources/quantserve"
        ),
        .testTarget(
            name: "QuantServeTests",
            dependencies: ["QuantServe", "CKernels", "QuantServeJSON"],
            path: "Tests/QuantServeTests",
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "QuantServeHTTPTests",
            dependencies: ["QuantServeHTTP", "QuantServe", "QuantServeJSON"],
            path: "Tests/QuantServeHTTPTests"
        ),
    ]
)
