// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "PinScope",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "TraceReader", targets: ["TraceReader"]),
        .library(name: "PinScope", targets: ["PinScope"]),
        .executable(name: "pinscope", targets: ["pinscope"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CTraceEvent", pkgConfig: "libtraceevent",
                       providers: [.apt(["libtraceevent-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "CTraceEventPrint", dependencies: ["CTraceEvent"]),
        .target(name: "CPrefetch"),
        .target(
            name: "TraceReader",
            dependencies: [
                "CTraceEvent", "CTraceEventPrint", "CZlib", "CZstd",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            // The per-record loop is hot: no dynamic exclusivity checks in release builds.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .target(
            name: "PinScope", dependencies: ["TraceReader", "CPrefetch"],
            // The per-event analysis is hot too (page states are classes changed in place).
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "pinscope",
            dependencies: [
                "TraceReader", "PinScope",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TraceReaderTests", dependencies: ["TraceReader", "TestSupport"]),
        .testTarget(name: "PinScopeTests", dependencies: ["PinScope", "TraceReader", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["TraceReader", "TestSupport"]),
    ]
)
