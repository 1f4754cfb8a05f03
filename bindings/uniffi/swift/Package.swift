// swift-tools-version:5.9
// Concord for iOS and macOS: the generated Swift API (Sources/Concord) over the Rust
// library, shipped as an XCFramework built on macOS by build-xcframework.sh.
// Not compiled on the Linux machine this repository is tested on (no Swift toolchain).
import PackageDescription

let package = Package(
    name: "Concord",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Concord", targets: ["Concord"]),
    ],
    targets: [
        .binaryTarget(name: "ConcordFFI", path: "ConcordFFI.xcframework"),
        .target(name: "Concord", dependencies: ["ConcordFFI"], path: "Sources/Concord"),
    ]
)
