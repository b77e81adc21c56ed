//! Negotiation (RFC 7692 §5, §7.1): the client's offer, the server's choice among
//! offers, and the client's check of the answer.

use super::{DeflateConfig, DeflateParams, EXTENSION};
use crate::proto::error::HandshakeError;
use alloc::{borrow::ToOwned, format, string::String, vec::Vec};

/// One `permessage-deflate` element of an extensions header, parsed.
#[derive(Debug, Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

fn parse_bits(v: Option<&str>) -> Result<u8, String> {
    let v = v.ok_or("a window size needs a value")?;
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    // RFC 7692 §7.1.2: 1*DIGIT without leading zeros, 8 to 15.
    if v.is_empty() || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("window bits {v:?} is not a decimal integer"));
    }
    match v.parse::<u8>() {
        Ok(n @ 8..=15) => Ok(n),
        _ => Err(format!("window bits {v} is outside 8-15")),
    }
}

/// An extension parameter: name and optional value.
type Param<'a> = (&'a str, Option<&'a str>);

/// Splits an extensions header value into elements of `(name, [(param, value)])`.
fn elements(header: &str) -> Vec<(&str, Vec<Param<'_>>)> {
    header
        .split(',')
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut parts = e.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim())),
                    None => (p, None),
                })
                .collect();
            (name, params)
        })
        .collect()
}

fn parse_params(params: &[Param<'_>]) -> Result<Params, String> {
    let mut out = Params::default();
    let mut seen: Vec<&str> = Vec::new();
    for &(k, v) in params {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(k)) {
            return Err(format!("duplicate parameter {k}"));
        }
        seen.push(k);
        match k.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" | "client_no_context_takeover" if v.is_some() => {
                return Err(format!("{k} takes no value"));
            }
            "server_no_context_takeover" => out.server_no_context_takeover = true,
            "client_no_context_takeover" => out.client_no_context_takeover = true,
            "server_max_window_bits" => out.server_max_window_bits = Some(parse_bits(v)?),
            "client_max_window_bits" => {
                out.client_max_window_bits = Some(match v {
                    None => None,
                    v => Some(parse_bits(v)?),
                });
            }
            _ => return Err(format!("unknown parameter {k}")),
        }
    }
    Ok(out)
}

/// The client's offer (the `Sec-WebSocket-Extensions` request header value).
pub fn client_offer(cfg: &DeflateConfig) -> String {
    let mut s = String::from(EXTENSION);
    if cfg.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if cfg.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if let Some(b) = cfg.asked_server_bits() {
        s.push_str(&format!("; server_max_window_bits={}", b.clamp(9, 15)));
    }
    match cfg.client_max_window_bits {
        Some(b) => s.push_str(&format!("; client_max_window_bits={}", b.clamp(9, 15))),
        None => s.push_str("; client_max_window_bits"),
    }
    s
}

/// Server side: picks the first acceptable `permessage-deflate` offer among the
/// request's `Sec-WebSocket-Extensions` values. Malformed offers (unknown or duplicate
/// parameters, invalid values) and offers we cannot honour are declined, as RFC 7692
/// §5 requires; the next offer is tried. Returns the parameters and the response
/// header value, or `None` (no compression on this connection).
pub fn server_accept<'a>(
    headers: impl Iterator<Item = &'a str>,
    cfg: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    for header in headers {
        for (name, raw) in elements(header) {
            if !name.eq_ignore_ascii_case(EXTENSION) {
                continue;
            }
            let Ok(offer) = parse_params(&raw) else {
                continue;
            };
            if let Some(r) = accept_offer(&offer, cfg) {
                return Some(r);
            }
        }
    }
    None
}

fn accept_offer(offer: &Params, cfg: &DeflateConfig) -> Option<(DeflateParams, String)> {
    if offer.server_no_context_takeover && !cfg.accept_no_context_takeover {
        return None;
    }
    let ours = cfg.server_max_window_bits.unwrap_or(15).clamp(9, 15);
    let server_bits = match offer.server_max_window_bits {
        // zlib cannot compress with an 8-bit window.
        Some(8) => return None,
        Some(_) if !cfg.accept_max_window_bits => return None,
        Some(n) => n.min(ours),
        None => ours,
    };
    let client_bits = match offer.client_max_window_bits {
        // The client cannot be asked for a smaller window: it compresses with 15.
        None => 15,
        Some(offered) => {
            let limit = offered.unwrap_or(15);
            cfg.client_max_window_bits
                .map_or(limit, |b| b.clamp(9, 15).min(limit))
        }
    };
    let params = DeflateParams {
        server_no_context_takeover: offer.server_no_context_takeover
            || cfg.server_no_context_takeover,
        // Only our answer obliges the client; its own hint in the offer does not
        // make it safe to drop our inflater's context (a peer may ignore its hint).
        client_no_context_takeover: cfg.client_must_reset(client_bits),
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    };
    let mut resp = String::from(EXTENSION);
    if params.server_no_context_takeover {
        resp.push_str("; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        resp.push_str("; client_no_context_takeover");
    }
    if offer.server_max_window_bits.is_some() || server_bits < 15 {
        resp.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    if offer.client_max_window_bits.is_some() && client_bits < 15 {
        resp.push_str(&format!("; client_max_window_bits={client_bits}"));
    }
    Some((params, resp))
}

fn bad_response(why: impl Into<String>) -> HandshakeError {
    HandshakeError::InvalidExtension(why.into())
}

/// Client side: checks the server's `Sec-WebSocket-Extensions` answer to our
/// [`client_offer`]. Anything malformed, unknown, or beyond what we offered fails the
/// handshake (RFC 7692 §5). `None` (no header) means no compression.
pub fn client_check_response(
    header: Option<&str>,
    cfg: &DeflateConfig,
) -> Result<Option<DeflateParams>, HandshakeError> {
    let Some(header) = header else {
        return Ok(None);
    };
    let els = elements(header);
    let mut found = None;
    for (name, raw) in els {
        if !name.eq_ignore_ascii_case(EXTENSION) {
            return Err(HandshakeError::UnexpectedExtension(name.to_owned()));
        }
        if found.is_some() {
            return Err(bad_response("permessage-deflate accepted twice"));
        }
        found = Some(parse_params(&raw).map_err(bad_response)?);
    }
    let Some(p) = found else {
        return Ok(None);
    };
    if let (Some(asked), Some(got)) = (cfg.asked_server_bits(), p.server_max_window_bits)
        && got > asked
    {
        return Err(bad_response(format!(
            "server_max_window_bits={got} exceeds the {asked} we asked for"
        )));
    }
    if cfg.server_no_context_takeover && !p.server_no_context_takeover {
        return Err(bad_response("server ignored server_no_context_takeover"));
    }
    let client_bits = match p.client_max_window_bits {
        Some(None) => {
            return Err(bad_response(
                "client_max_window_bits needs a value in a response",
            ));
        }
        Some(Some(8)) => {
            return Err(bad_response(
                "client_max_window_bits=8 cannot be honoured by zlib",
            ));
        }
        Some(Some(n)) => n.min(cfg.client_max_window_bits.unwrap_or(15)),
        None => cfg.client_max_window_bits.unwrap_or(15).clamp(9, 15),
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: p.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover || cfg.client_no_context_takeover,
        server_max_window_bits: p.server_max_window_bits.unwrap_or(15),
        client_max_window_bits: client_bits,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negotiate(offer: &str, cfg: &DeflateConfig) -> Option<(DeflateParams, String)> {
        server_accept(core::iter::once(offer), cfg)
    }

    #[test]
    fn default_offer_round_trip() {
        let cfg = DeflateConfig::default();
        let offer = client_offer(&cfg);
        assert_eq!(offer, "permessage-deflate; client_max_window_bits");
        let (p, resp) = negotiate(&offer, &cfg).unwrap();
        assert_eq!(resp, "permessage-deflate");
        assert_eq!(client_check_response(Some(&resp), &cfg).unwrap(), Some(p));
    }

    #[test]
    fn server_honours_requests_and_declines_what_it_cannot() {
        let cfg = DeflateConfig::default();
        let (p, resp) = negotiate(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits",
            &cfg,
        )
        .unwrap();
        assert!(p.server_no_context_takeover);
        assert_eq!(p.server_max_window_bits, 9);
        assert_eq!(
            resp,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
        );
        // Several offers: the first acceptable one wins; malformed ones are skipped.
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_max_window_bits=8",
        ] {
            assert!(negotiate(bad, &cfg).is_none(), "{bad}");
            let two = format!("{bad}, permessage-deflate");
            assert_eq!(
                negotiate(&two, &cfg).map(|r| r.1),
                Some("permessage-deflate".into()),
                "{bad}"
            );
        }
        let strict = DeflateConfig {
            accept_no_context_takeover: false,
            ..cfg
        };
        assert!(negotiate("permessage-deflate; server_no_context_takeover", &strict).is_none());
        assert!(negotiate("x-webkit-deflate-frame", &DeflateConfig::default()).is_none());
    }

    #[test]
    fn memory_presets_negotiate_what_they_need() {
        let small = DeflateConfig::small();
        // A browser's offer: the client accepts a window limit.
        let (p, resp) = negotiate("permessage-deflate; client_max_window_bits", &small).unwrap();
        // Our messages keep a 15-bit window inside a message; only the client's
        // window (our inbound history) is limited.
        assert_eq!(resp, "permessage-deflate; client_max_window_bits=9");
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (15, 9)
        );
        assert!(!p.server_no_context_takeover && !p.client_no_context_takeover);
        // No window limit offered: the client is asked to drop its context instead.
        let (p, resp) = negotiate("permessage-deflate", &small).unwrap();
        assert_eq!(resp, "permessage-deflate; client_no_context_takeover");
        assert!(p.client_no_context_takeover && !p.server_no_context_takeover);
        // Our client in small mode asks the server for 9 bits (its inbound history)
        // and compresses with 9, and accepts the answer.
        let offer = client_offer(&small);
        assert_eq!(
            offer,
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"
        );
        let (p, resp) = negotiate(&offer, &small).unwrap();
        assert_eq!(client_check_response(Some(&resp), &small).unwrap(), Some(p));

        let shared = DeflateConfig::shared();
        let (p, resp) = negotiate("permessage-deflate; client_max_window_bits", &shared).unwrap();
        assert_eq!(
            resp,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        // Against a default server: it agrees to drop its context; our client drops
        // its own regardless (the server merely keeps a context it will not need).
        let offer = client_offer(&shared);
        let (_, resp) = negotiate(&offer, &DeflateConfig::default()).unwrap();
        let p = client_check_response(Some(&resp), &shared)
            .unwrap()
            .unwrap();
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);

        let dedicated = DeflateConfig::dedicated(12, 4);
        let (p, resp) =
            negotiate("permessage-deflate; client_max_window_bits", &dedicated).unwrap();
        assert_eq!(
            resp,
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
        );
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (12, 12)
        );
        // Dedicated mode never asks a client for no context takeover.
        let (p, _) = negotiate("permessage-deflate", &dedicated).unwrap();
        assert!(!p.client_no_context_takeover);
        assert_eq!(p.client_max_window_bits, 15);
    }

    #[test]
    fn client_refuses_malformed_responses() {
        let cfg = DeflateConfig {
            server_max_window_bits: Some(10),
            ..DeflateConfig::default()
        };
        for bad in [
            "permessage-deflate; server_max_window_bits=12",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=8",
            "permessage-deflate; bogus",
            "permessage-deflate, permessage-deflate",
            "x-other",
        ] {
            assert!(client_check_response(Some(bad), &cfg).is_err(), "{bad}");
        }
        let p = client_check_response(
            Some("permessage-deflate; server_max_window_bits=10; client_max_window_bits=11"),
            &cfg,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (10, 11)
        );
    }
}
