//! `wsprobe`: a conformance prober for anyone's WebSocket server.
//!
//! ```text
//! wsprobe check ws://HOST:PORT/PATH [--pid PID] [--deadline SECS] [--only NAME[,NAME]]
//!               [--fast] [--json FILE] [--junit FILE] [--format table|json|junit]
//! wsprobe fuzz ws://HOST:PORT/PATH [--seed N] [--cases N] [--out DIR] [--max-findings N]
//!              [--pid PID] [--deadline SECS]
//! wsprobe replay FILE ws://HOST:PORT/PATH [--pid PID] [--deadline SECS]
//! wsprobe serve [--addr HOST:PORT] [--count N] [--deadline SECS] [--json FILE] [--junit FILE]
//! wsprobe list
//! ```
//!
//! `check` runs the catalogue of probes (`wsprobe list`) against the server, each on
//! its own connection, prints a table (or JSON / JUnit XML) and exits 1 if any
//! probe found a violation, a hang or a dead server, 2 on a usage error.

use std::process::ExitCode;
use std::time::Duration;

use silverback::probe::fuzz::{self as pfuzz, Model};
use silverback::probe::{self, Evidence, Options, PROBES, Target};

const USAGE: &str = "usage:
  wsprobe check ws://HOST:PORT/PATH [options]
      --pid PID           watch the server process (RSS growth per probe, liveness)
      --rss-limit-mb N    RSS growth per probe that counts as a violation (default 256)
      --deadline SECS     how long to wait for an answer (default 5)
      --only NAME[,NAME]  only probes whose name contains one of these
      --fast              skip the slow probes (slow head, never-reading peer)
      --format F          stdout as table (default), json or junit
      --json FILE         also write the JSON report to FILE
      --junit FILE        also write a JUnit XML report to FILE
      --ca FILE           wss://: trust the CA certificates in this PEM file
      --insecure          wss://: accept any certificate (a test server's own)
  wsprobe fuzz ws://HOST:PORT/PATH [options]
      --seed N            the run's seed (default: from the clock; printed)
      --cases N           how many mutated conversations (default 200)
      --out DIR           where reproducers go (default .)
      --max-findings N    stop after N failures (default 5)
      --pid, --deadline   as for check
  wsprobe replay FILE ws://HOST:PORT/PATH [--pid PID] [--deadline SECS]
                          send a reproducer's bytes again and judge the answer
  wsprobe serve [--addr HOST:PORT] [--count N] [--deadline SECS] [--json FILE] [--junit FILE]
                          a hostile server for testing clients: connect the client under
                          test to ws://ADDR/NAME for probe NAME, or to ws://ADDR/ for the
                          next one; ends after N connections (default: one per probe)
  wsprobe list            the catalogue (server probes, then client probes)
exit status: 0 all probes held, 1 a violation / hang / dead server, 2 usage";

fn usage(msg: &str) -> ExitCode {
    eprintln!("wsprobe: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("list") => {
            for p in PROBES.iter().chain(probe::CLIENT_PROBES) {
                println!(
                    "{:<34} §{:<10} {:<10} {}{} -> {}",
                    p.name,
                    p.section,
                    p.requirement.name(),
                    p.summary,
                    if p.slow { " [slow]" } else { "" },
                    p.expect.describe()
                );
            }
            ExitCode::SUCCESS
        }
        Some("check") => check(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("replay") => replay(&args[1..]),
        Some("serve") => serve(&args[1..]),
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => usage(&format!("unknown command {other:?}")),
    }
}

fn check(args: &[String]) -> ExitCode {
    let (c, named) = match common(args, &["--format", "--json", "--junit"]) {
        Ok(x) => x,
        Err(e) => return usage(&e),
    };
    let [url] = c.rest.as_slice() else {
        return usage("check needs one ws:// URL");
    };
    let (mut format, mut json_file, mut junit_file) = ("table".to_owned(), None, None);
    for (n, v) in named {
        match n.as_str() {
            "--format" => format = v,
            "--json" => json_file = Some(v),
            _ => junit_file = Some(v),
        }
    }
    if !matches!(format.as_str(), "table" | "json" | "junit") {
        return usage("--format is table, json or junit");
    }
    let target = match make_target(url, &c.tls) {
        Ok(t) => t,
        Err(e) => return usage(&format!("{url}: {e}")),
    };
    if probe::selected(&c.opts).is_empty() {
        return usage("--only selects no probe (see wsprobe list)");
    }
    let live = format == "table";
    let results = probe::check(&target, &c.opts, |r| {
        if live {
            eprintln!("{:<11} {}", r.verdict.name(), r.probe.name);
        }
    });
    match format.as_str() {
        "json" => println!("{}", probe::json(url, &results)),
        "junit" => print!("{}", probe::junit(url, &results)),
        _ => print!("{}", probe::table(&results)),
    }
    finish(url, &results, json_file, junit_file)
}

/// Writes the JSON and JUnit reports asked for; exit 1 if a probe failed.
fn finish(
    name: &str,
    results: &[probe::ProbeResult],
    json_file: Option<String>,
    junit_file: Option<String>,
) -> ExitCode {
    for (file, text) in [
        (json_file, probe::json(name, results)),
        (junit_file, probe::junit(name, results)),
    ] {
        if let Some(f) = file
            && let Err(e) = std::fs::write(&f, text)
        {
            eprintln!("wsprobe: cannot write {f}: {e}");
            return ExitCode::from(2);
        }
    }
    if results.iter().any(|r| r.verdict.is_failure()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Options shared by the commands, and the rest of the arguments.
struct Common {
    opts: Options,
    rest: Vec<String>,
    tls: TlsArgs,
}

/// How `wss://` targets are verified.
#[derive(Default)]
struct TlsArgs {
    ca: Option<String>,
    insecure: bool,
}

/// The target for `url`: `wss://` needs the `tls` feature and `--ca` or
/// `--insecure` (or the `tls-webpki-roots` feature for public servers).
fn make_target(url: &str, tls: &TlsArgs) -> Result<Target, String> {
    if !url.starts_with("wss://") {
        return Target::new(url).map_err(|e| e.to_string());
    }
    #[cfg(feature = "tls")]
    {
        use silverback::tls;
        let cfg = if tls.insecure {
            tls::dangerous_client_config_accepting_any_certificate()
        } else if let Some(f) = &tls.ca {
            let pem = std::fs::read(f).map_err(|e| format!("--ca {f}: {e}"))?;
            tls::client_config(tls::roots_from_pem(&pem).map_err(|e| format!("--ca {f}: {e}"))?)
        } else {
            #[cfg(feature = "tls-webpki-roots")]
            {
                tls::client_config_webpki_roots()
            }
            #[cfg(not(feature = "tls-webpki-roots"))]
            return Err("wss:// needs --ca FILE (the server's CA in PEM) or --insecure".into());
        };
        Target::with_tls(url, cfg).map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = tls;
        Err("wss:// needs a build with --features probe,tls".into())
    }
}

fn common(args: &[String], extra: &[&str]) -> Result<(Common, Vec<(String, String)>), String> {
    let mut opts = Options::default();
    let mut rest = Vec::new();
    let mut named = Vec::new();
    let mut tls = TlsArgs::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--pid" => opts.pid = Some(value()?.parse().map_err(|e| format!("--pid: {e}"))?),
            "--deadline" => {
                let s: f64 = value()?.parse().map_err(|e| format!("--deadline: {e}"))?;
                if !(s > 0.0 && s < 3600.0) {
                    return Err("--deadline: between 0 and 3600 seconds".into());
                }
                opts.deadline = Duration::from_secs_f64(s);
            }
            "--rss-limit-mb" => {
                let mb: u64 = value()?
                    .parse()
                    .map_err(|e| format!("--rss-limit-mb: {e}"))?;
                opts.rss_growth_kib = mb * 1024;
            }
            "--only" => opts.only = value()?.split(',').map(str::to_owned).collect(),
            "--fast" => opts.slow = false,
            "--ca" => tls.ca = Some(value()?),
            "--insecure" => tls.insecure = true,
            n if extra.contains(&n) => named.push((n.to_owned(), value()?)),
            u if !u.starts_with('-') => rest.push(u.to_owned()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok((Common { opts, rest, tls }, named))
}

fn fuzz(args: &[String]) -> ExitCode {
    let (c, named) = match common(args, &["--seed", "--cases", "--out", "--max-findings"]) {
        Ok(x) => x,
        Err(e) => return usage(&e),
    };
    let [url] = c.rest.as_slice() else {
        return usage("fuzz needs one ws:// URL");
    };
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    let (mut cases, mut out, mut max) = (200u64, ".".to_owned(), 5usize);
    for (n, v) in named {
        let bad = |e: std::num::ParseIntError| format!("{n}: {e}");
        match n.as_str() {
            "--seed" => {
                seed = match v.parse().map_err(bad) {
                    Ok(x) => x,
                    Err(e) => return usage(&e),
                }
            }
            "--cases" => {
                cases = match v.parse().map_err(bad) {
                    Ok(x) => x,
                    Err(e) => return usage(&e),
                }
            }
            "--max-findings" => {
                max = match v.parse().map_err(bad) {
                    Ok(x) => x,
                    Err(e) => return usage(&e),
                }
            }
            _ => out = v,
        }
    }
    let target = match make_target(url, &c.tls) {
        Ok(t) => t,
        Err(e) => return usage(&format!("{url}: {e}")),
    };
    eprintln!("wsprobe fuzz {url}: seed {seed}, {cases} cases");
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let findings = pfuzz::run(&target, &c.opts, seed, cases, max.max(1), |_, model, v| {
        let key = match model {
            Model::Continues => "valid",
            Model::Fails(_) => "breaks a rule",
            Model::Closes => "ends with a close",
            Model::Incomplete => "ends inside a frame",
        };
        *counts.entry(format!("{key}: {}", v.name())).or_default() += 1;
    });
    for (k, n) in &counts {
        println!("{n:>6}  {k}");
    }
    let mut status = ExitCode::SUCCESS;
    for f in &findings {
        let path = format!("{out}/wsprobe-{}-{}.repro", f.case.seed, f.case.index);
        let text = pfuzz::reproducer(url, &f.case, f.model, &f.verdict, &f.bytes);
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("wsprobe: cannot write {path}: {e}");
            return ExitCode::from(2);
        }
        println!(
            "finding: case {} ({}): {} — {}; model: {}; reproducer {path} ({} bytes)",
            f.case.index,
            f.case.mutations.join(", "),
            f.verdict.name(),
            f.verdict.detail(),
            f.model.describe(),
            f.bytes.len()
        );
        status = ExitCode::FAILURE;
    }
    println!("{} findings (seed {seed})", findings.len());
    status
}

fn replay(args: &[String]) -> ExitCode {
    let (c, _) = match common(args, &[]) {
        Ok(x) => x,
        Err(e) => return usage(&e),
    };
    let [file, url] = c.rest.as_slice() else {
        return usage("replay needs a reproducer FILE and a ws:// URL");
    };
    let bytes = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| pfuzz::parse_reproducer(&t))
    {
        Ok(b) => b,
        Err(e) => return usage(&format!("{file}: {e}")),
    };
    let target = match make_target(url, &c.tls) {
        Ok(t) => t,
        Err(e) => return usage(&format!("{url}: {e}")),
    };
    let mut ev = Evidence::default();
    let (model, v) = pfuzz::judge(&target, &c.opts, &bytes, &mut ev);
    println!(
        "{}: {} ({} bytes; model: {})",
        v.name(),
        v.detail(),
        bytes.len(),
        model.describe()
    );
    if v.is_failure() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn serve(args: &[String]) -> ExitCode {
    let (c, named) = match common(args, &["--addr", "--count", "--json", "--junit"]) {
        Ok(x) => x,
        Err(e) => return usage(&e),
    };
    if !c.rest.is_empty() {
        return usage("serve takes no URL (clients connect to it)");
    }
    let mut addr = "127.0.0.1:9300".to_owned();
    let mut count = probe::CLIENT_PROBES.len();
    let (mut json_file, mut junit_file) = (None, None);
    for (n, v) in named {
        match n.as_str() {
            "--addr" => addr = v,
            "--count" => {
                count = match v.parse() {
                    Ok(x) => x,
                    Err(e) => return usage(&format!("--count: {e}")),
                }
            }
            "--json" => json_file = Some(v),
            _ => junit_file = Some(v),
        }
    }
    let listener = match std::net::TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => return usage(&format!("--addr {addr}: {e}")),
    };
    let local = listener
        .local_addr()
        .map_or(addr.clone(), |a| a.to_string());
    eprintln!(
        "wsprobe serve: connect the client under test to ws://{local}/NAME (or ws://{local}/ for the next probe); {count} connections"
    );
    let results = probe::serve(&listener, &c.opts, count, |r| {
        eprintln!("{:<11} {}", r.verdict.name(), r.probe.name);
    });
    print!("{}", probe::table(&results));
    finish(
        &format!("clients of ws://{local}/"),
        &results,
        json_file,
        junit_file,
    )
}
