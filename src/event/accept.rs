//! Accepting: the listener, load balancing across loops, and adopting a socket.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::proto::Role;
use crate::proto::handshake::{ServerHandshake, write_http_response};

use super::conn::{ConnIo, Phase, ReadState, Slot};
use super::handler::Handler;
use super::id::ConnId;
use super::mailbox::Command;
use super::worker::{Worker, interrupted, would_block};

impl<H: Handler> Worker<H> {
    pub(crate) fn accept_all(&mut self) {
        // Accept until the listener is drained (edge-triggered); bounded by the
        // backlog the kernel holds.
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((sock, peer)) => self.distribute(sock, peer),
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => {}
                // Out of descriptors and the like: stop for now; the next connection
                // attempt wakes us again.
                Err(_) => return,
            }
        }
    }

    /// Hands an accepted socket to the next loop with room (round-robin).
    fn distribute(&mut self, sock: TcpStream, peer: SocketAddr) {
        let n = self.core.peers.len();
        let max = self.config().max_connections;
        for i in 0..n {
            let target = (self.rr + i) % n;
            let handle = &self.core.peers[target];
            if handle.live.load(Ordering::Relaxed) < max {
                self.rr = (target + 1) % n;
                if target == self.core.me.index {
                    self.adopt(sock, peer);
                } else {
                    // Counted now so the next accept sees the load.
                    handle.live.fetch_add(1, Ordering::Relaxed);
                    let _ = handle.post(Command::Adopt(sock, peer));
                }
                return;
            }
        }
        refuse_full(sock);
    }

    /// Takes a socket onto this loop: its server handshake starts now.
    pub(crate) fn adopt(&mut self, mut sock: TcpStream, peer: SocketAddr) {
        if self.core.live >= self.config().max_connections || self.shutdown.is_some() {
            refuse_full(sock);
            return;
        }
        if self.config().nodelay {
            let _ = sock.set_nodelay(true);
        }
        let (slot, generation) = self.core.alloc_slot();
        let registered = self.poll.registry().register(
            &mut sock,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err() {
            self.core.release_slot(slot);
            return;
        }
        let id = ConnId::new(self.core.me.index, slot, generation);
        let hs = ServerHandshake::new(self.server.clone(), self.core.now);
        let deadline = hs.poll_timeout();
        let io = ConnIo::new(
            Some(sock),
            id,
            peer,
            Role::Server,
            Phase::Request(hs),
            deadline,
        );
        self.insert(
            slot,
            Slot {
                io,
                rd: ReadState::new(),
                data: H::Data::default(),
            },
        );
        self.core.set_live(self.core.live + 1);
        self.arm_timer(slot);
    }
}

/// Best-effort 503 for a connection we cannot take.
pub(crate) fn refuse_full(mut sock: TcpStream) {
    use std::io::Write;
    let mut out = Vec::new();
    write_http_response(503, &[("Retry-After", "1")], b"server full\n", &mut out);
    let _ = sock.write(&out);
}
