// Concord for Android: a library module holding the generated Kotlin (src/main/kotlin) and
// the Rust library per ABI (src/main/jniLibs/<abi>/libconcord_uniffi.so), both produced by
// build-android.sh. Not built on the machine this repository is tested on (no Android SDK).
plugins {
    id("com.android.library") version "8.5.2"
    id("org.jetbrains.kotlin.android") version "2.0.20"
}

android {
    namespace = "dev.concord"
    compileSdk = 34
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].jniLibs.srcDirs("src/main/jniLibs")
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin { jvmToolchain(17) }

dependencies {
    // uniffi's Kotlin calls the library through JNA; the @aar variant ships JNA's own .so files.
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.8.1")
}
