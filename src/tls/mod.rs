//! `wss://`: TLS with rustls (feature `tls`), for both roles and both IO layers.
//!
//! TLS is one more byte transform in front of the protocol: the event loop runs it
//! from partial, non-blocking reads inside the loop (configure it with
//! [`ServerBuilder::tls`](crate::event::ServerBuilder::tls) /
//! [`ClientBuilder::tls`](crate::event::ClientBuilder::tls)); the blocking layer runs
//! over [`ServerStream`] / [`ClientStream`], which implement
//! [`Stream`](crate::blocking::Stream) (see [`accept`], [`connect`] and
//! [`Dialer::dial_tls`](crate::Dialer::dial_tls)).
//!
//! This module makes the rustls configurations a WebSocket peer needs: a server's
//! from a PEM certificate chain and key ([`server_config`]), a client's from the root
//! certificates the user trusts ([`client_config`], [`roots_from_pem`], or
//! `client_config_webpki_roots` with the `tls-webpki-roots` feature). Both
//! advertise ALPN `http/1.1` (RFC 8441 aside, WebSocket upgrades are HTTP/1.1). A
//! ready rustls configuration (several host names through a certificate resolver,
//! client certificates, other ALPN) works just as well: `rustls` is re-exported.
//!
//! Certificate verification is on by default and cannot be switched off by a
//! setting; [`dangerous_client_config_accepting_any_certificate`] exists for tests
//! against self-signed servers only, and its name says so.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use silverback::event::{Ctx, Handler, MessageRef, Server};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = ();
//!     fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
//!         let _ = ctx.send(msg.kind, msg.data);
//!     }
//! }
//!
//! let tls = silverback::tls::server_config_from_files("cert.pem", "key.pem")?;
//! Server::builder().addr("0.0.0.0:443").tls(tls).build(|_| Echo)?.run()?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod provider;
mod shared;

pub use provider::{provider, ring_provider};
pub use rustls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, ServerConfig,
    ServerConnection, SignatureScheme, StreamOwned,
};
pub use shared::{SharedClientStream, SharedServerStream, SharedTls};

/// A blocking server-side TLS stream over TCP; a [`Stream`](crate::blocking::Stream), so
/// [`Upgrader::upgrade`](crate::Upgrader::upgrade) runs over it.
pub type ServerStream = StreamOwned<ServerConnection, TcpStream>;

/// A blocking client-side TLS stream over TCP (what
/// [`Dialer::dial_tls`](crate::Dialer::dial_tls) returns the connection over).
pub type ClientStream = StreamOwned<ClientConnection, TcpStream>;

/// Why a TLS configuration could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A PEM file could not be read.
    Io(io::Error),
    /// The PEM text holds no certificate (or a malformed one).
    NoCertificate,
    /// The PEM text holds no private key (or a malformed one).
    NoPrivateKey,
    /// rustls refused the certificate, key or settings.
    Rustls(rustls::Error),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Io(e) => write!(f, "reading PEM: {e}"),
            TlsConfigError::NoCertificate => f.write_str("no certificate in the PEM text"),
            TlsConfigError::NoPrivateKey => f.write_str("no private key in the PEM text"),
            TlsConfigError::Rustls(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsConfigError::Io(e) => Some(e),
            TlsConfigError::Rustls(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rustls::Error> for TlsConfigError {
    fn from(e: rustls::Error) -> Self {
        TlsConfigError::Rustls(e)
    }
}

/// The ALPN protocol a WebSocket upgrade runs over.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Parses every certificate in a PEM text (a chain: leaf first).
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsConfigError::NoCertificate)?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate);
    }
    Ok(certs)
}

/// Parses the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM text.
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsConfigError::NoPrivateKey)
}

/// A server configuration from a PEM certificate chain (leaf first) and its key:
/// TLS 1.2 and 1.3, no client certificates, ALPN `http/1.1`.
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let certs = certificates_from_pem(cert_chain_pem)?;
    let key = private_key_from_pem(key_pem)?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(cfg))
}

/// [`server_config`] from two PEM files.
pub fn server_config_from_files(
    cert_chain: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let certs = std::fs::read(cert_chain).map_err(TlsConfigError::Io)?;
    let key = std::fs::read(key).map_err(TlsConfigError::Io)?;
    server_config(&certs, &key)
}

/// A root store holding every certificate in a PEM text (a private CA, a
/// self-signed server's certificate).
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates_from_pem(pem)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// A client configuration that verifies servers against `roots`: TLS 1.2 and 1.3,
/// ALPN `http/1.1`. The host name checked is the URL's (SNI too).
pub fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Arc::new(cfg)
}

/// A client configuration trusting Mozilla's root certificates (the public web's),
/// compiled in by the `tls-webpki-roots` feature.
#[cfg(feature = "tls-webpki-roots")]
pub fn client_config_webpki_roots() -> Arc<ClientConfig> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    client_config(roots)
}

/// **Insecure: for tests only.** A client configuration that accepts any server
/// certificate for any host name (signatures on the handshake are still checked).
/// Anyone on the path can read and change the traffic of a connection made with
/// it. Use [`client_config`] with the server's certificate as a root instead
/// wherever you can.
pub fn dangerous_client_config_accepting_any_certificate() -> Arc<ClientConfig> {
    let provider = provider();
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Arc::new(cfg)
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server name a client sends (SNI) and verifies, from a URL host.
pub(crate) fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("host {host:?}: {e}")))
}

/// Blocking server side: runs the TLS handshake on an accepted socket, all of it
/// within `timeout` (`None`: no limit). Garbage instead of a ClientHello, plain
/// HTTP, a certificate the client refuses or a stall past the deadline are errors
/// (`TimedOut` for the stall); the socket is then dropped.
pub fn accept(
    tcp: TcpStream,
    config: &Arc<ServerConfig>,
    timeout: Option<Duration>,
) -> io::Result<ServerStream> {
    let conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
    handshake(StreamOwned::new(conn, tcp), timeout)
}

/// Blocking client side: runs the TLS handshake to `host` (SNI and the name the
/// certificate must carry) on a connected socket, within `timeout`.
pub fn connect(
    tcp: TcpStream,
    host: &str,
    config: &Arc<ClientConfig>,
    timeout: Option<Duration>,
) -> io::Result<ClientStream> {
    let conn = ClientConnection::new(config.clone(), server_name(host)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    handshake(StreamOwned::new(conn, tcp), timeout)
}

fn handshake<C, D>(
    mut s: StreamOwned<C, TcpStream>,
    timeout: Option<Duration>,
) -> io::Result<StreamOwned<C, TcpStream>>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    let deadline = timeout.map(|t| Instant::now() + t);
    let (old_read, old_write) = (s.sock.read_timeout()?, s.sock.write_timeout()?);
    // Bounded: every round either makes progress on the handshake or ends in an
    // error or the deadline.
    while s.conn.is_handshaking() {
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ));
            }
            s.sock.set_read_timeout(Some(left))?;
            s.sock.set_write_timeout(Some(left))?;
        }
        match s.conn.complete_io(&mut s.sock) {
            Ok((0, 0)) if s.conn.is_handshaking() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during the TLS handshake",
                ));
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ));
            }
            Err(e) => return Err(e),
        }
    }
    // Whatever the handshake's last flight left queued goes out now.
    while s.conn.wants_write() {
        s.conn.write_tls(&mut s.sock)?;
    }
    s.sock.set_read_timeout(old_read)?;
    s.sock.set_write_timeout(old_write)?;
    Ok(s)
}

/// Sends `close_notify` and ends our direction of TCP (best effort; the input stays
/// readable until the peer's end).
pub(crate) fn shutdown_stream<C, D>(s: &mut StreamOwned<C, TcpStream>) -> io::Result<()>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    s.conn.send_close_notify();
    while s.conn.wants_write() {
        if s.conn.write_tls(&mut s.sock)? == 0 {
            break;
        }
    }
    s.sock.shutdown(std::net::Shutdown::Write)
}

macro_rules! tls_stream_impl {
    ($t:ty) => {
        impl crate::blocking::Stream for $t {
            fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
                self.sock.set_read_timeout(timeout)
            }
            fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
                self.sock.set_write_timeout(timeout)
            }
            /// Sends `close_notify`, then ends our direction of TCP.
            fn shutdown(&mut self) -> io::Result<()> {
                match shutdown_stream(self) {
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                    r => r,
                }
            }
            fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
                self.sock.peer_addr()
            }
            fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
                self.sock.local_addr()
            }
        }
    };
}

tls_stream_impl!(ServerStream);
tls_stream_impl!(ClientStream);
