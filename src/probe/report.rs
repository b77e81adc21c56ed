//! The check's results as a text table, JSON and JUnit XML (for CI systems).

use std::fmt::Write;

use super::ProbeResult;

/// Hex of the first `n` bytes, with the total.
fn hex(bytes: &[u8], total: u64, n: usize) -> String {
    let mut s = String::new();
    for b in bytes.iter().take(n) {
        let _ = write!(s, "{b:02x}");
    }
    if total as usize > n.min(bytes.len()) {
        let _ = write!(s, "… ({total} bytes)");
    }
    s
}

/// One line per probe: verdict, name, section, requirement, detail; then a count.
pub fn table(results: &[ProbeResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<11} {:<34} {:<10} {:<10} detail",
        "verdict", "probe", "section", "level"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<11} {:<34} {:<10} {:<10} {}",
            r.verdict.name(),
            r.probe.name,
            r.probe.section,
            r.probe.requirement.name(),
            r.verdict.detail()
        );
    }
    let failed = results.iter().filter(|r| r.verdict.is_failure()).count();
    let _ = writeln!(
        s,
        "{} probes, {} held, {} failed",
        results.len(),
        results
            .iter()
            .filter(|r| r.verdict.name() == "held")
            .count(),
        failed
    );
    s
}

fn json_str(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A JSON document: the target and one object per probe (with hex evidence).
pub fn json(target: &str, results: &[ProbeResult]) -> String {
    let mut s = String::new();
    let _ = write!(s, "{{\"target\":{},\"probes\":[", json_str(target));
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let rss = match r.rss_kib {
            Some((b, a)) => format!("{{\"before_kib\":{b},\"after_kib\":{a}}}"),
            None => "null".into(),
        };
        let _ = write!(
            s,
            "{{\"name\":{},\"section\":{},\"level\":{},\"sends\":{},\"expect\":{},\"verdict\":{},\"detail\":{},\
             \"elapsed_ms\":{},\"rss\":{rss},\"sent_hex\":{},\"received_hex\":{}}}",
            json_str(r.probe.name),
            json_str(r.probe.section),
            json_str(r.probe.requirement.name()),
            json_str(r.probe.summary),
            json_str(&r.probe.expect.describe()),
            json_str(r.verdict.name()),
            json_str(r.verdict.detail()),
            r.elapsed.as_millis(),
            json_str(&hex(&r.evidence.sent, r.evidence.sent_total, 256)),
            json_str(&hex(&r.evidence.received, r.evidence.received_total, 256)),
        );
    }
    let failed = results.iter().filter(|r| r.verdict.is_failure()).count();
    let _ = write!(s, "],\"failed\":{failed}}}");
    s
}

fn xml(v: &str) -> String {
    v.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            '\'' => "&apos;".into(),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => " ".into(),
            c => c.to_string(),
        })
        .collect()
}

/// JUnit XML: one test case per probe, a failure for each failed one.
pub fn junit(target: &str, results: &[ProbeResult]) -> String {
    let failed = results.iter().filter(|r| r.verdict.is_failure()).count();
    let time: f64 = results.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuite name=\"wsprobe {}\" tests=\"{}\" failures=\"{failed}\" time=\"{time:.3}\">",
        xml(target),
        results.len()
    );
    for r in results {
        let _ = write!(
            s,
            "  <testcase classname=\"wsprobe.{}\" name=\"{} (§{}, {})\" time=\"{:.3}\"",
            xml(r.probe.requirement.name()),
            xml(r.probe.name),
            xml(r.probe.section),
            xml(&r.probe.expect.describe()),
            r.elapsed.as_secs_f64()
        );
        if r.verdict.is_failure() {
            let _ = writeln!(
                s,
                ">\n    <failure message=\"{}: {}\">sent: {}\nreceived: {}</failure>\n  </testcase>",
                r.verdict.name(),
                xml(r.verdict.detail()),
                hex(&r.evidence.sent, r.evidence.sent_total, 256),
                hex(&r.evidence.received, r.evidence.received_total, 256)
            );
        } else {
            s.push_str("/>\n");
        }
    }
    s.push_str("</testsuite>\n");
    s
}
