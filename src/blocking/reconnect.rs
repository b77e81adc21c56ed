//! Dialing again and again: the blocking layer's reconnection helper.

use std::net::TcpStream;
use std::time::Instant;

use crate::Backoff;
use crate::blocking::{Conn, Dialer};
use crate::error::Result;
use crate::proto::handshake::Response;

/// Dials one URL until it succeeds, waiting between attempts as its
/// [`Backoff`] says (exponential, full jitter), and remembers across
/// connections where it is in the backoff: a connection that stays up
/// `reset_after` starts the next run of attempts from the first window, one
/// that drops sooner goes on where the last run left off.
///
/// A device's main loop:
///
/// ```no_run
/// use silverback::blocking::Reconnector;
/// use silverback::{Backoff, Dialer, Error};
///
/// let mut link = Reconnector::new(Dialer::new(), "ws://gateway.example/feed", Backoff::new());
/// loop {
///     // Gives up (returning the last error) only if the backoff has a limit.
///     let (mut conn, _) = link.connect()?;
///     conn.write_message(silverback::MessageKind::Text, b"subscribe")?;
///     while let Ok(msg) = conn.read_message() {
///         println!("{msg:?}");
///     }
///     // Dropped: the next connect() waits its turn first.
/// }
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
pub struct Reconnector {
    dialer: Dialer,
    url: String,
    backoff: Backoff,
    attempt: u32,
    failing_since: Option<Instant>,
    connected_at: Option<Instant>,
    failures: u32,
}

impl Reconnector {
    /// A reconnector for `url` through `dialer` (its timeouts, proxy, TLS and
    /// settings apply to every attempt).
    pub fn new(dialer: Dialer, url: &str, backoff: Backoff) -> Self {
        Reconnector {
            dialer,
            url: url.to_owned(),
            backoff,
            attempt: 0,
            failing_since: None,
            connected_at: None,
            failures: 0,
        }
    }

    /// Dials `ws://` until a connection opens; the first call dials at once,
    /// later calls (after the last connection ended) wait their window first.
    /// Returns the last error once the backoff gives up.
    pub fn connect(&mut self) -> Result<(Conn<TcpStream>, Response)> {
        let url = self.url.clone();
        self.run(|d| d.dial(&url))
    }

    /// As [`connect`](Self::connect), for `wss://` (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn connect_tls(&mut self) -> Result<(Conn<crate::tls::ClientStream>, Response)> {
        let url = self.url.clone();
        self.run(|d| d.dial_tls(&url))
    }

    /// Failed attempts in the last call to `connect`.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn run<T>(&mut self, mut dial: impl FnMut(&Dialer) -> Result<T>) -> Result<T> {
        self.failures = 0;
        let mut wait = false;
        if let Some(up_since) = self.connected_at.take() {
            self.attempt = self
                .backoff
                .after_connection(self.attempt, up_since.elapsed());
            if self.attempt == 0 {
                self.failing_since = None;
            }
            wait = true;
        }
        let mut last = None;
        loop {
            if wait {
                let now = Instant::now();
                let since = *self.failing_since.get_or_insert(now);
                if !self.backoff.allows(self.attempt, since, now) {
                    return Err(last.unwrap_or(crate::Error::AlreadyClosed));
                }
                std::thread::sleep(self.backoff.delay(self.attempt));
                self.attempt = self.attempt.saturating_add(1);
            }
            match dial(&self.dialer) {
                Ok(c) => {
                    self.connected_at = Some(Instant::now());
                    return Ok(c);
                }
                Err(e) => {
                    self.failures += 1;
                    self.failing_since.get_or_insert_with(Instant::now);
                    last = Some(e);
                    wait = true;
                }
            }
        }
    }
}
