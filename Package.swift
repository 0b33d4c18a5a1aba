// swift-tools-version:6.0
import PackageDescription

// Hot code is built with -Ounchecked and whole-module optimisation (see DESIGN.md, "Swift for speed").
let fastSwift: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"])]

let package = Package(
    name: "QuantServe",
    products: [
        .library(name: "QuantServe", targets: ["QuantServe"]),
        .executable(name: "quantserve", targets: ["quantserve"]),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "CKernels",
            path: "Sources/CKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]
        ),
        .target(
            name: "QuantServe",
            dependencies: ["CKernels", "COpenBLAS"],
            path: "Sources/QuantServe",
            resources: [.copy("Resources/calibration.txt")],
            swiftSettings: fastSwift
        ),
        .executableTarget(
            name: "quantserve",
            dependencies: ["QuantServe"],
            path: "Sources/quantserve"
        ),
        .testTarget(
            name: "QuantServeTests",
            dependencies: ["QuantServe", "CKernels"],
            path: "Tests/QuantServeTests",
            resources: [.copy("Fixtures")]
        ),
    ]
)
