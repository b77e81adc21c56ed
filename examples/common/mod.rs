//! Tiny command-line helpers shared by the examples (no argument-parsing crate).
#![allow(dead_code)]

/// The value following `--name`, if given.
pub fn flag_value(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
        if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_owned());
        }
    }
    None
}

/// True if `--name` is present.
pub fn flag(name: &str) -> bool {
    std::env::args().skip(1).any(|a| a == name)
}

/// The `--addr` value or `default`.
pub fn addr(default: &str) -> String {
    flag_value("--addr").unwrap_or_else(|| default.to_owned())
}

/// Exits with usage help if `--help` is given.
pub fn usage(text: &str) {
    if flag("--help") || flag("-h") {
        println!("{text}");
        std::process::exit(0);
    }
}

/// True if `--deflate` is given; exits with a message if the build lacks the
/// `deflate` feature.
pub fn deflate_requested() -> bool {
    let on = flag("--deflate");
    if on && !cfg!(feature = "deflate") {
        eprintln!("--deflate needs a build with --features deflate");
        std::process::exit(2);
    }
    on
}

/// The compression settings the Autobahn programs test with (`--deflate`).
#[cfg(feature = "deflate")]
pub fn autobahn_deflate_config() -> silverback::proto::deflate::DeflateConfig {
    // Workaround for kosoku 0.1.0 defect A (autobahn/README.md): its case code fails
    // on a small echo sent uncompressed, which RFC 7692 allows. Always compress,
    // unless `--deflate-min N` asks for another minimum (to reproduce the defect).
    let min = flag_value("--deflate-min")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    silverback::proto::deflate::DeflateConfig::default().min_message_size(min)
}
