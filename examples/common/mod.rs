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

/// Every value given with `--name` (the flag may repeat), in order.
pub fn flag_values(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == name {
            out.extend(args.next());
        } else if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            out.push(v.to_owned());
        }
    }
    out
}

/// True if `--name` is present.
pub fn flag(name: &str) -> bool {
    std::env::args().skip(1).any(|a| a == name)
}

/// The `--addr` value or `default`.
pub fn addr(default: &str) -> String {
    flag_value("--addr").unwrap_or_else(|| default.to_owned())
}

/// Exits with usage help if `--help` is given, and with the usage and status 2 if a
/// flag is not one the usage text names (`echo --max-msgs-per-sec 50` must not run
/// without the limit its user asked for).
pub fn usage(text: &str) {
    if flag("--help") || flag("-h") {
        println!("{text}");
        std::process::exit(0);
    }
    if let Some(bad) = unknown_flag(text, std::env::args().skip(1)) {
        eprintln!("unknown flag {bad}\nusage: {text}");
        std::process::exit(2);
    }
}

/// The first argument that looks like a flag (`--name`, `--name=value`, `-x`) and is
/// not named in `usage`. Values of flags are not flags; negative numbers pass.
pub fn unknown_flag(usage: &str, args: impl Iterator<Item = String>) -> Option<String> {
    let known: Vec<&str> = usage
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    args.filter(|a| a.starts_with('-') && a.len() > 1)
        .filter(|a| !a[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.'))
        .map(|a| a.split('=').next().unwrap_or_default().to_owned())
        .find(|a| !known.contains(&a.as_str()))
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

/// The compression settings `--deflate-mode MODE` (or the `SILVERBACK_DEFLATE_MODE`
/// environment variable) names (default `fast`):
///
/// * `fast`: dedicated zlib streams per connection, 15-bit windows, memLevel 8 (the
///   library's default; about 300 KiB per connection with context takeover);
/// * `dedicated:BITS:MEM`: dedicated streams with BITS-bit windows and memLevel MEM;
/// * `small`: context takeover in about 1 KiB per connection (512 bytes of history
///   kept each way, per-thread zlib streams);
/// * `window:BITS`: the same keeping 2^BITS bytes;
/// * `shared`: no context takeover, nothing per connection.
#[cfg(feature = "deflate")]
pub fn deflate_mode_config() -> silverback::proto::deflate::DeflateConfig {
    use silverback::proto::deflate::DeflateConfig;
    // The flag, or (for programs started by a harness, e.g. autobahn/run.sh) the
    // SILVERBACK_DEFLATE_MODE environment variable.
    let mode = flag_value("--deflate-mode")
        .or_else(|| std::env::var("SILVERBACK_DEFLATE_MODE").ok())
        .unwrap_or_else(|| "fast".into());
    let parts: Vec<&str> = mode.split(':').collect();
    let num = |i: usize, what: &str| -> u8 {
        parts
            .get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                eprintln!("--deflate-mode {mode}: {what} missing or not a number");
                std::process::exit(2);
            })
    };
    match parts[0] {
        "fast" => DeflateConfig::default(),
        "small" => DeflateConfig::small(),
        "shared" => DeflateConfig::shared(),
        "dedicated" => DeflateConfig::dedicated(num(1, "BITS"), num(2, "MEM")),
        "window" => DeflateConfig::window(num(1, "BITS")),
        other => {
            eprintln!(
                "--deflate-mode {other}: expected fast, small, shared, dedicated:BITS:MEM or window:BITS"
            );
            std::process::exit(2);
        }
    }
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
    // The memory mode from --deflate-mode / SILVERBACK_DEFLATE_MODE (default fast).
    deflate_mode_config().min_message_size(min)
}

/// The server's TLS configuration from `--tls-cert FILE --tls-key FILE`, or a fresh
/// self-signed certificate for `localhost` and `127.0.0.1` with `--tls-self-signed`
/// (written to a temporary PEM file whose path is printed, so clients can trust it).
/// `None`: plain. Exits with a message on a bad file or a build without `tls`.
#[cfg(feature = "tls")]
pub fn server_tls() -> Option<std::sync::Arc<silverback::tls::rustls::ServerConfig>> {
    let cert = flag_value("--tls-cert");
    let key = flag_value("--tls-key");
    let cfg = match (cert, key, flag("--tls-self-signed")) {
        (Some(c), Some(k), _) => silverback::tls::server_config_from_files(&c, &k),
        (None, None, true) => {
            let ck = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ])
            .expect("rcgen makes a certificate");
            let cert_pem = ck.cert.pem();
            let path =
                std::env::temp_dir().join(format!("silverback-{}-cert.pem", std::process::id()));
            if std::fs::write(&path, &cert_pem).is_ok() {
                eprintln!(
                    "self-signed certificate for localhost, 127.0.0.1 and ::1: {} \
                     (trust it in the client, e.g. websocat --cacert, NODE_EXTRA_CA_CERTS, \
                     Python ssl.create_default_context(cafile=...))",
                    path.display()
                );
            }
            silverback::tls::server_config(
                cert_pem.as_bytes(),
                ck.signing_key.serialize_pem().as_bytes(),
            )
        }
        (None, None, false) => return None,
        _ => {
            eprintln!("--tls-cert and --tls-key go together");
            std::process::exit(2);
        }
    };
    match cfg {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("TLS: {e}");
            std::process::exit(2);
        }
    }
}

/// Without the `tls` feature: refuses the TLS flags with a message.
#[cfg(not(feature = "tls"))]
pub fn server_tls() -> Option<()> {
    if flag_value("--tls-cert").is_some() || flag("--tls-self-signed") {
        eprintln!("--tls-cert/--tls-self-signed need a build with --features tls");
        std::process::exit(2);
    }
    None
}

/// Applies the edge flags to a server builder: `--proxy-protocol` (headers
/// required from `--trusted-proxy CIDR`, repeatable, default 127.0.0.1 and ::1)
/// the limits (see `silverback::event::Limits`) and `--reuseport` (one listener
/// per loop). Exits with status 2 on a bad value.
pub fn with_edge_flags(
    mut b: silverback::event::ServerBuilder,
) -> silverback::event::ServerBuilder {
    use silverback::event::{IpNet, ProxyProtocol, RatePolicy};
    fn bad(flag: &str, v: &str) -> ! {
        eprintln!("{flag}: bad value {v:?}");
        std::process::exit(2);
    }
    fn num<T: std::str::FromStr>(flag: &str) -> Option<T> {
        flag_value(flag).map(|v| v.parse().unwrap_or_else(|_| bad(flag, &v)))
    }
    if flag("--proxy-protocol") {
        let mut nets: Vec<IpNet> = flag_values("--trusted-proxy")
            .iter()
            .map(|n| n.parse().unwrap_or_else(|_| bad("--trusted-proxy", n)))
            .collect();
        if nets.is_empty() {
            nets = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        }
        b = b.proxy_protocol(ProxyProtocol::trusting(nets).required(true));
    }
    if let Some(n) = num("--max-conns-per-ip") {
        b = b.max_conns_per_ip(n);
    }
    if let Some(n) = num("--max-handshakes-per-ip") {
        b = b.max_handshakes_per_ip(n);
    }
    if let Some(n) = num("--max-msgs-per-sec") {
        b = b.max_messages_per_sec(n);
    }
    if let Some(n) = num("--max-bytes-per-sec") {
        b = b.max_bytes_per_sec(n);
    }
    if flag("--reuseport") {
        #[cfg(all(unix, feature = "reuseport"))]
        {
            b = b.reuseport(true);
        }
        #[cfg(not(all(unix, feature = "reuseport")))]
        {
            eprintln!("--reuseport needs a build with --features reuseport (Unix)");
            std::process::exit(2);
        }
    }
    if let Some(path) = flag_value("--unix") {
        #[cfg(unix)]
        {
            let _ = std::fs::remove_file(&path); // a socket file left by a crash
            b = b.listen_unix(path);
        }
        #[cfg(not(unix))]
        {
            eprintln!("--unix {path}: Unix domain sockets need a Unix");
            std::process::exit(2);
        }
    }
    match flag_value("--rate-policy").as_deref() {
        None | Some("close") => {}
        Some("throttle") => b = b.rate_policy(RatePolicy::Throttle),
        Some(v) => bad("--rate-policy", v),
    }
    b
}

/// Applies the TLS flags (see [`server_tls`]) to a server builder; returns it with
/// the schemes to print: `("ws", "http")` or `("wss", "https")`.
pub fn with_server_tls(
    builder: silverback::event::ServerBuilder,
) -> (silverback::event::ServerBuilder, &'static str, &'static str) {
    let tls = server_tls();
    let secure = tls.is_some();
    #[cfg(feature = "tls")]
    let builder = match tls {
        Some(cfg) => builder.tls(cfg),
        None => builder,
    };
    if secure {
        (builder, "wss", "https")
    } else {
        (builder, "ws", "http")
    }
}

/// The TLS client configuration for `wss://` URLs: trusts `--cafile FILE` (PEM).
#[cfg(feature = "tls")]
pub fn client_tls() -> Option<std::sync::Arc<silverback::tls::rustls::ClientConfig>> {
    static CFG: std::sync::OnceLock<Option<std::sync::Arc<silverback::tls::rustls::ClientConfig>>> =
        std::sync::OnceLock::new();
    CFG.get_or_init(|| {
        let file = flag_value("--cafile")?;
        let pem = std::fs::read(&file).unwrap_or_else(|e| panic!("--cafile {file}: {e}"));
        let roots = silverback::tls::roots_from_pem(&pem)
            .unwrap_or_else(|e| panic!("--cafile {file}: {e}"));
        Some(silverback::tls::client_config(roots))
    })
    .clone()
}

/// Dials `ws://` or (with `--features tls` and `--cafile`) `wss://`; one connection
/// type for both.
pub fn dial(
    dialer: &silverback::Dialer,
    url: &str,
) -> Result<
    (
        silverback::Conn<Box<dyn silverback::blocking::Stream>>,
        silverback::proto::handshake::Response,
    ),
    silverback::Error,
> {
    let u = silverback::url::WsUrl::parse(url)?;
    let tcp = std::net::TcpStream::connect((u.host.as_str(), u.port))?;
    tcp.set_nodelay(true)?;
    let stream: Box<dyn silverback::blocking::Stream> = if u.secure {
        #[cfg(feature = "tls")]
        {
            let cfg = client_tls().expect("wss:// needs --cafile");
            Box::new(silverback::tls::connect(
                tcp,
                &u.host,
                &cfg,
                Some(std::time::Duration::from_secs(30)),
            )?)
        }
        #[cfg(not(feature = "tls"))]
        panic!("wss:// needs a build with --features tls")
    } else {
        Box::new(tcp)
    };
    dialer.dial_stream(stream, url)
}

/// `--resume PATH` (feature `handover`): the server takes over the listeners and
/// connections of a running one, which hands them over on SIGUSR2 when started
/// with `--handover PATH` (see [`hand_over_on_signal`]). `build` waits for it.
pub fn with_resume(b: silverback::event::ServerBuilder) -> silverback::event::ServerBuilder {
    let Some(path) = flag_value("--resume") else {
        return b;
    };
    #[cfg(feature = "handover")]
    {
        println!("waiting on {path} for the running server's handover (send it SIGUSR2)");
        b.resume_from(path)
    }
    #[cfg(not(feature = "handover"))]
    {
        let _ = (b, path);
        eprintln!("--resume needs a build with --features handover");
        std::process::exit(2);
    }
}

/// `--handover PATH` (feature `handover`): on SIGUSR2, hands every listener and
/// open connection to the process waiting on PATH (started with `--resume PATH`),
/// then shuts down what is left (a few seconds' grace) so that `run` returns. If
/// the handover fails (no process there, a refusal), this one serves on and waits
/// for the next SIGUSR2.
pub fn hand_over_on_signal(handle: silverback::event::ServerHandle) {
    let Some(path) = flag_value("--handover") else {
        return;
    };
    #[cfg(feature = "handover")]
    {
        use signal_hook::consts::SIGUSR2;
        let mut signals = signal_hook::iterator::Signals::new([SIGUSR2]).unwrap_or_else(|e| {
            eprintln!("--handover: cannot watch SIGUSR2: {e}");
            std::process::exit(2);
        });
        println!("on SIGUSR2: hand over to the server waiting on {path}");
        std::thread::spawn(move || {
            for _ in signals.forever() {
                match handle.hand_over(&path) {
                    Ok(r) => {
                        println!(
                            "handed over {} connections and {} listeners in {:.1} ms \
                             (connections paused {:.1} ms; {} closed with 1012)",
                            r.connections,
                            r.listeners,
                            r.elapsed.as_secs_f64() * 1e3,
                            r.paused.as_secs_f64() * 1e3,
                            r.closed
                        );
                        handle.shutdown(std::time::Duration::from_secs(5));
                        return;
                    }
                    Err(e) => eprintln!("handover failed, serving on: {e}"),
                }
            }
        });
    }
    #[cfg(not(feature = "handover"))]
    {
        let _ = (handle, path);
        eprintln!("--handover needs a build with --features handover");
        std::process::exit(2);
    }
}
