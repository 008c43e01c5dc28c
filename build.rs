//! Builds the few lines of C that route ALSA's messages into kumo's log (src/client/alsa.c:
//! alsa-lib's handler is variadic, which stable Rust cannot define), and warns when nasm is
//! missing: openh264-sys2 then builds without its assembly, silently, and encoding and
//! decoding run 2-3x slower.

fn main() {
    println!("cargo:rerun-if-changed=src/client/alsa.c");
    cc::Build::new().file("src/client/alsa.c").warnings(true).compile("kumo_alsa");
    // After the C library, so the linker resolves its call into libasound.
    println!("cargo:rustc-link-lib=asound");
    println!("cargo:rerun-if-env-changed=PATH");
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("nasm").is_file()));
    let x86 = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "x86_64" || a == "x86");
    println!("cargo:rustc-env=KUMO_OPENH264_ASM={}", if found && x86 { "nasm" } else { "none" });
    if !found && x86 {
        println!(
            "cargo:warning=nasm was not found: openh264 builds without its assembly and runs 2-3x slower. Install it (apt-get install nasm) and run `cargo clean -p openh264-sys2`."
        );
    }
}
