//! `wsprobe`: a conformance prober for anyone's WebSocket server.
//!
//! ```text
//! wsprobe check ws://HOST:PORT/PATH [--pid PID] [--deadline SECS] [--only NAME[,NAME]]
//!               [--fast] [--json FILE] [--junit FILE] [--format table|json|junit]
//! wsprobe list
//! ```
//!
//! `check` runs the catalogue of probes (`wsprobe list`) against the server, each on
//! its own connection, prints a table (or JSON / JUnit XML) and exits 1 if any
//! probe found a violation, a hang or a dead server, 2 on a usage error.

use std::process::ExitCode;
use std::time::Duration;

use silverback::probe::{self, Options, PROBES, Target};

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
  wsprobe list            the catalogue
exit status: 0 all probes held, 1 a violation / hang / dead server, 2 usage";

fn usage(msg: &str) -> ExitCode {
    eprintln!("wsprobe: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("list") => {
            for p in PROBES {
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
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => usage(&format!("unknown command {other:?}")),
    }
}

fn check(args: &[String]) -> ExitCode {
    let mut opts = Options::default();
    let mut url = None;
    let mut format = "table".to_owned();
    let mut json_file = None;
    let mut junit_file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        let r: Result<(), String> = (|| {
            match a.as_str() {
                "--pid" => {
                    opts.pid = Some(value("--pid")?.parse().map_err(|e| format!("--pid: {e}"))?)
                }
                "--rss-limit-mb" => {
                    let mb: u64 = value("--rss-limit-mb")?
                        .parse()
                        .map_err(|e| format!("--rss-limit-mb: {e}"))?;
                    opts.rss_growth_kib = mb * 1024;
                }
                "--deadline" => {
                    let s: f64 = value("--deadline")?
                        .parse()
                        .map_err(|e| format!("--deadline: {e}"))?;
                    if !(s > 0.0 && s < 3600.0) {
                        return Err("--deadline: between 0 and 3600 seconds".into());
                    }
                    opts.deadline = Duration::from_secs_f64(s);
                }
                "--only" => opts.only = value("--only")?.split(',').map(str::to_owned).collect(),
                "--fast" => opts.slow = false,
                "--format" => format = value("--format")?,
                "--json" => json_file = Some(value("--json")?),
                "--junit" => junit_file = Some(value("--junit")?),
                u if !u.starts_with('-') && url.is_none() => url = Some(u.to_owned()),
                other => return Err(format!("unknown option {other:?}")),
            }
            Ok(())
        })();
        if let Err(e) = r {
            return usage(&e);
        }
    }
    let Some(url) = url else {
        return usage("check needs a ws:// URL");
    };
    if !matches!(format.as_str(), "table" | "json" | "junit") {
        return usage("--format is table, json or junit");
    }
    let target = match Target::new(&url) {
        Ok(t) => t,
        Err(e) => return usage(&format!("{url}: {e}")),
    };
    if probe::selected(&opts).is_empty() {
        return usage("--only selects no probe (see wsprobe list)");
    }
    let live = format == "table";
    let results = probe::check(&target, &opts, |r| {
        if live {
            eprintln!("{:<11} {}", r.verdict.name(), r.probe.name);
        }
    });
    match format.as_str() {
        "json" => println!("{}", probe::json(&url, &results)),
        "junit" => print!("{}", probe::junit(&url, &results)),
        _ => print!("{}", probe::table(&results)),
    }
    for (file, text) in [
        (json_file, probe::json(&url, &results)),
        (junit_file, probe::junit(&url, &results)),
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
