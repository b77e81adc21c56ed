//! Applying [`Limits`](crate::event::Limits) on a loop: admitting a connection
//! against its address and giving it its rate budgets (the state itself lives
//! in `conn::rates`).

use crate::event::conn::rates::ConnRates;

impl<H: crate::event::Handler> crate::event::reactor::worker::Worker<H> {
    /// Applies the limits to a server connection whose source address is final
    /// (at accept, or after its PROXY header): counts it against its address,
    /// or answers `503` (plain listeners) and closes it; gives it its rate
    /// budgets. `tls`: the listener runs TLS (no plain-text answer then). Returns
    /// false when the connection was refused.
    pub(crate) fn admit(&mut self, slot: usize, tls: bool) -> bool {
        let limits = &self.config().limits;
        if !limits.per_ip() && !limits.per_conn() {
            return true;
        }
        self.admit_limited(slot, tls)
    }

    #[cold]
    #[inline(never)]
    fn admit_limited(&mut self, slot: usize, tls: bool) -> bool {
        let limits = self.config().limits;
        let now = self.core.now;
        let Some(crate::event::reactor::worker::Parts { conn: c, core, .. }) = self.parts(slot)
        else {
            return false;
        };
        if limits.per_ip()
            && let Some(ips) = core.shared.ips.as_ref()
        {
            match ips.admit(c.io.peer().ip(), &limits, now) {
                Ok(()) => c.io.ip_counted = true,
                Err(why) => {
                    core.shared.stats.refused_per_ip += 1;
                    crate::logging::info!("{}: refused {}: {}", c.io.id, c.io.peer(), why.as_str());
                    if !tls && let Some(sock) = c.io.sock.as_mut() {
                        use std::io::Write;
                        let mut out = Vec::new();
                        crate::proto::handshake::write_http_response(
                            503,
                            &[("Retry-After", "1")],
                            format!("{}\n", why.as_str()).as_bytes(),
                            &mut out,
                        );
                        let _ = sock.sock().write(&out);
                    }
                    c.io.kill(&mut core.shared);
                    return false;
                }
            }
        }
        if limits.per_conn() {
            c.io.cold().rates = Some(ConnRates::new(&limits, now));
            c.io.rated = true;
        }
        true
    }

    /// A connection handed over by an old process: counted against its address
    /// when that is within the limits (never refused: it is open already, and an
    /// HTTP refusal would be garbage on it), given its rate budgets afresh.
    #[cfg(feature = "handover")]
    pub(crate) fn admit_resumed(&mut self, slot: usize) {
        let limits = self.config().limits;
        let now = self.core.now;
        let Some(crate::event::reactor::worker::Parts { conn: c, core, .. }) = self.parts(slot)
        else {
            return;
        };
        if limits.per_ip()
            && let Some(ips) = core.shared.ips.as_ref()
        {
            c.io.ip_counted = ips.admit(c.io.peer().ip(), &limits, now).is_ok();
        }
        if limits.per_conn() {
            c.io.cold().rates = Some(ConnRates::new(&limits, now));
            c.io.rated = true;
        }
    }

    /// A connection counted against its address ends.
    pub(crate) fn release_ip(&mut self, io: &crate::event::conn::ConnIo) {
        if io.ip_counted
            && let Some(ips) = self.core.shared.ips.as_ref()
        {
            ips.release(io.peer().ip(), self.core.now);
        }
    }
}
