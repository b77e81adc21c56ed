//! Heap held by one idle rustls session with the buffered API (what the blocking
//! layer's `tls::ServerStream`/`ClientStream` hold; the `tls` feature, ring
//! provider), measured with a counting allocator: a server session and a client
//! session after the handshake and one 1 KiB message each way, everything written
//! drained and everything received read. TLS 1.3 and 1.2, and with the server's
//! session tickets off. (The event loop uses rustls' unbuffered API instead, which
//! keeps no I/O buffer while idle: its figure comes from `loadgen idle`, see
//! docs/BENCHMARKS.md.)
//!
//! ```text
//! cargo run --release --features tls --example tls_memory
//! ```

#[path = "common/counting.rs"]
#[allow(dead_code)]
mod counting;

#[cfg(feature = "tls")]
use std::sync::atomic::Ordering;

#[cfg(feature = "tls")]
use counting::CURRENT;

#[cfg(feature = "tls")]
fn main() {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use silverback::tls::{self, rustls};

    fn now() -> usize {
        CURRENT.load(Ordering::SeqCst)
    }

    /// Moves every pending TLS record from `from` to `to` and lets `to` process it.
    fn pump(from: &mut rustls::Connection, to: &mut rustls::Connection) {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).unwrap();
        }
        let mut rd = &wire[..];
        while !rd.is_empty() {
            to.read_tls(&mut rd).unwrap();
            to.process_new_packets().unwrap();
        }
    }

    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = ck.cert.pem();
    let key = ck.signing_key.serialize_pem();
    let roots = tls::roots_from_pem(cert.as_bytes()).unwrap();
    let base_server = tls::server_config(cert.as_bytes(), key.as_bytes()).unwrap();

    println!(
        "| TLS | server session tickets | server session, idle (KiB) | client session, idle (KiB) |"
    );
    println!("|---|---|---|---|");
    for (label, versions) in [
        ("1.3", &[&rustls::version::TLS13][..]),
        ("1.2", &[&rustls::version::TLS12][..]),
    ] {
        for tickets in [true, false] {
            let mut scfg = (*base_server).clone();
            if !tickets {
                scfg.send_tls13_tickets = 0;
                scfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            }
            let scfg = Arc::new(scfg);
            let mut ccfg = rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            ccfg.alpn_protocols = vec![tls::ALPN_HTTP11.to_vec()];
            let ccfg = Arc::new(ccfg);
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();

            let base = now();
            let mut server: rustls::Connection =
                rustls::ServerConnection::new(scfg.clone()).unwrap().into();
            let after_server_new = now();
            let mut client: rustls::Connection =
                rustls::ClientConnection::new(ccfg.clone(), name.clone())
                    .unwrap()
                    .into();
            let client_new = now() - after_server_new;
            for _ in 0..10 {
                pump(&mut client, &mut server);
                pump(&mut server, &mut client);
            }
            assert!(!server.is_handshaking() && !client.is_handshaking());
            let msg = vec![b'x'; 1024];
            let mut got = vec![0u8; 4096];
            client.writer().write_all(&msg).unwrap();
            pump(&mut client, &mut server);
            let n = server.reader().read(&mut got).unwrap();
            assert_eq!(n, msg.len());
            server.writer().write_all(&msg).unwrap();
            pump(&mut server, &mut client);
            let n = client.reader().read(&mut got).unwrap();
            assert_eq!(n, msg.len());
            // What each session holds: the bytes its drop frees (caches live in the
            // configurations and outlive it).
            drop(got);
            drop(msg);
            let before_drop = now();
            drop(client);
            let client_idle = before_drop - now();
            let before_drop = now();
            drop(server);
            let server_idle = before_drop - now();
            if std::env::var_os("TLS_MEMORY_DEBUG").is_some() {
                eprintln!(
                    "server new: {} B, client new: {client_new} B, total {} B",
                    after_server_new - base,
                    now() - base
                );
            }
            println!(
                "| {label} | {} | {:.2} | {:.2} |",
                if tickets { "default" } else { "off" },
                server_idle as f64 / 1024.0,
                client_idle as f64 / 1024.0,
            );
        }
    }
    println!(
        "\nsize_of: ServerConnection {} B, ClientConnection {} B",
        std::mem::size_of::<rustls::ServerConnection>(),
        std::mem::size_of::<rustls::ClientConnection>()
    );
}

#[cfg(not(feature = "tls"))]
fn main() {
    eprintln!("build with --features tls");
}
