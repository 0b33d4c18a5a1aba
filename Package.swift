// swift-tools-version:6.0
import PackageDescription

// Every Swift target is built with bounds and overflow checks (-O, the release default) and whole-module
// optimisation. The numeric hot path is C (CKernels, -O3); its Swift callers work on unsafe pointers, whose
// subscripts are unchecked in -O anyway. -Ounchecked on the engine target was measured not to pay (2026-11-27,
// `quantserve bench` int8 and int4, three alternating rounds: prefill 0.99x / 0.97x, decode 1.06x / 1.00x checked
// against unchecked; docs/checked-builds.md), so no target keeps it: a bug reached through a request traps.
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
            swiftSettings: checkedSwift
        ),
        .target(
            name: "QuantServeHTTP",
            dependencies: ["QuantServe", "QuantServeJSON", "CHTTPShim", "CMicroHTTPD"],
            path: "Sources/QuantServeHTTP",
            resources: [.copy("Web")],
            swiftSettings: checkedSwift
        ),
        .target(
            name: "QuantServeLoad",
            dependencies: ["QuantServeJSON"],
            path: "Sources/QuantServeLoad",
            swiftSettings: checkedSwift
        ),
        .executableTarget(
            name: "quantserve",
            dependencies: ["QuantServe", "QuantServeHTTP", "QuantServeLoad"],
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
            dependencies: ["QuantServeHTTP", "QuantServe", "QuantServeJSON", "QuantServeLoad"],
            path: "Tests/QuantServeHTTPTests"
        ),
    ]
)
