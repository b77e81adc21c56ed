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
