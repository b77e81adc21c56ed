//! Accepting: the listener, load balancing across loops, and adopting a socket.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use crate::event::conn::sock::Sock;
use mio::{Interest, Token};

use crate::proto::Role;
use crate::proto::handshake::{ServerHandshake, write_http_response};

use crate::event::api::handler::Handler;
use crate::event::api::id::ConnId;
use crate::event::conn::transport::{ServerTls, Transport};
use crate::event::conn::{ConnIo, Phase, ProxyWait, Slot};
use crate::event::reactor::mailbox::Command;
use crate::event::reactor::worker::{Worker, interrupted, would_block};

impl<H: Handler> Worker<H> {
    /// Accepts on listener `index`.
    pub(crate) fn accept_all(&mut self, index: usize) {
        // Accept until the listener is drained (edge-triggered); bounded by the
        // backlog the kernel holds.
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.sock.accept() {
                Ok((sock, peer)) => {
                    let tls = listener.tls.clone();
                    self.distribute(sock, peer, tls);
                }
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => {}
                // Out of descriptors and the like: stop for now; the next connection
                // attempt wakes us again.
                Err(_) => return,
            }
        }
    }

    /// Hands an accepted socket to the next loop with room (round-robin).
    fn distribute(&mut self, sock: Sock, peer: SocketAddr, tls: ServerTls) {
        if self.accept_here {
            // adopt() refuses with 503 when this loop is full.
            self.adopt(sock, peer, &tls);
            return;
        }
        let n = self.core.peers.len();
        let max = self.config().max_connections;
        for i in 0..n {
            let target = (self.rr + i) % n;
            let handle = &self.core.peers[target];
            if handle.live.load(Ordering::Relaxed) < max {
                self.rr = (target + 1) % n;
                if target == self.core.me.index {
                    self.adopt(sock, peer, &tls);
                } else {
                    // Counted now so the next accept sees the load.
                    handle.live.fetch_add(1, Ordering::Relaxed);
                    let _ = handle.post(Command::Adopt(sock, peer, tls));
                }
                return;
            }
        }
        self.core.shared.stats.refuse(503);
        crate::logging::info!("refused {peer}: every loop is at max_connections (503)");
        refuse_full(sock, &tls);
    }

    /// Takes a socket onto this loop: its server handshake starts now.
    pub(crate) fn adopt(&mut self, sock: Sock, peer: SocketAddr, tls: &ServerTls) {
        if self.core.live >= self.config().max_connections || self.shutdown.is_some() {
            self.core.shared.stats.refuse(503);
            refuse_full(sock, tls);
            return;
        }
        if self.config().nodelay {
            let _ = sock.set_nodelay(true);
        }
        // With the PROXY protocol on, the header comes before TLS: the socket
        // stays plain until it is read. (TCP only: a Unix socket's peer is local.)
        let proxy = self
            .config()
            .proxy_protocol
            .as_ref()
            .filter(|_| matches!(sock, Sock::Tcp(_)))
            .map(|p| p.trusts(peer.ip()));
        let sock = match proxy {
            Some(_) => Ok(Transport::Plain(sock)),
            None => tls.wrap(sock),
        };
        let Ok(mut sock) = sock else {
            return;
        };
        let (slot, generation) = self.core.alloc_slot();
        let registered = self.poll.registry().register(
            sock.sock(),
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err() {
            self.core.release_slot(slot);
            return;
        }
        self.core.shared.stats.accepted += 1;
        let id = ConnId::new(self.core.me.index, slot, generation);
        crate::logging::debug!(
            "{id}: accepted {peer}{}",
            if tls.is_tls() { " (TLS)" } else { "" }
        );
        let hs = ServerHandshake::new(self.server.clone(), self.core.now);
        let phase = match proxy {
            Some(trusted) => Phase::Proxy(Box::new(ProxyWait {
                hs,
                tls: tls.clone(),
                trusted,
            })),
            None => Phase::Request(hs),
        };
        let io = ConnIo::new(Some(sock), id, peer, Role::Server, phase);
        self.insert(
            slot,
            Slot {
                io,
                rd: None,
                data: H::Data::default(),
            },
        );
        self.core.set_live(self.core.live + 1);
        // Behind a balancer the address is known after the PROXY header.
        if proxy.is_none() && !self.admit(slot, tls.is_tls()) {
            return;
        }
        self.arm_timer(slot);
    }
}

/// Best-effort 503 for a connection we cannot take. On a TLS listener the socket is
/// just closed: a plain-text answer would be garbage to the peer's TLS stack, and a
/// TLS session costs the very resources we are short of.
pub(crate) fn refuse_full(mut sock: Sock, tls: &ServerTls) {
    if tls.is_tls() {
        return;
    }
    use std::io::Write;
    let mut out = Vec::new();
    write_http_response(503, &[("Retry-After", "1")], b"server full\n", &mut out);
    let _ = sock.write(&out);
}
