//! The steps of a handover (see [`crate::handover`]): the old process's
//! coordinator, which drives its loops and talks to the new process, and the new
//! process's receiver.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::event::reactor::handover::{LoopExport, Step};
use crate::event::reactor::mailbox::{Command, WorkerHandle};
use crate::handover::format::{self, ConnRecord, ListenerRecord};
use crate::handover::wire;

/// How long either side waits for the other at each step.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a handover did (see [`ServerHandle::hand_over`](crate::event::ServerHandle::hand_over)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandoverReport {
    /// Open connections now served by the new process.
    pub connections: usize,
    /// Listening sockets handed over.
    pub listeners: usize,
    /// Open connections that could not move (TLS, a message still under way at
    /// the deadline): closed with 1012 (Service Restart) so their clients
    /// reconnect.
    pub closed: usize,
    /// From the call until the new process owned everything.
    pub elapsed: Duration,
    /// How long the connections were paused: from the first one set aside until
    /// the new process's ack.
    pub paused: Duration,
}

fn refused(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("handover: {why}"))
}

/// The old process's side: runs on the caller's thread, drives the loops.
pub(crate) fn hand_over(
    loops: &[WorkerHandle],
    path: &Path,
    wait: Duration,
) -> io::Result<HandoverReport> {
    let start = Instant::now();
    // One handover of a server at a time (a second call waits for the first).
    let Some(first) = loops.first() else {
        return Err(io::Error::other("handover: the server has no loop"));
    };
    let _one = first
        .handing_over
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sock = UnixStream::connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("handover: no new process on {}: {e}", path.display()),
        )
    })?;
    sock.set_read_timeout(Some(STEP_TIMEOUT))?;
    sock.set_write_timeout(Some(STEP_TIMEOUT))?;
    wire::same_user(&sock)?;
    wire::send(&sock, wire::HELLO, &format::encode_hello(), None)?;
    wire::read_reply(&sock)?;
    // From here on, every failure puts the loops back as they were.
    let (tx, rx) = mpsc::channel();
    let deadline = Instant::now() + wait;
    let paused_at = Instant::now();
    for l in loops {
        let _ = l.post(Command::HandOver(Step::Prepare {
            deadline,
            reply: tx.clone(),
        }));
    }
    drop(tx);
    let mut exports: Vec<Option<LoopExport>> = (0..loops.len()).map(|_| None).collect();
    let result = collect(&rx, &mut exports, wait).and_then(|()| transfer(&sock, &exports));
    let paused = paused_at.elapsed();
    match result {
        Ok((connections, listeners, closed)) => {
            for l in loops {
                let _ = l.post(Command::HandOver(Step::Commit));
            }
            // Our descriptors of the moved sockets close here; the new process
            // has its own.
            drop(exports);
            Ok(HandoverReport {
                connections,
                listeners,
                closed,
                elapsed: start.elapsed(),
                paused,
            })
        }
        Err(e) => {
            for (l, e) in loops.iter().zip(exports.iter_mut()) {
                let fds = e
                    .take()
                    .map(|e| e.conns.into_iter().map(|(_, fd)| fd).collect())
                    .unwrap_or_default();
                let _ = l.post(Command::HandOver(Step::Abort(fds)));
            }
            Err(e)
        }
    }
}

/// Every loop's export, each in its place.
fn collect(
    rx: &mpsc::Receiver<LoopExport>,
    exports: &mut [Option<LoopExport>],
    wait: Duration,
) -> io::Result<()> {
    let mut error = None;
    for _ in 0..exports.len() {
        let e = rx.recv_timeout(wait + STEP_TIMEOUT).map_err(|_| {
            io::Error::new(io::ErrorKind::TimedOut, "handover: a loop did not answer")
        })?;
        if let Some(why) = &e.error {
            error = Some(io::Error::other(format!("handover: {why}")));
        }
        let i = e.index;
        if let Some(slot) = exports.get_mut(i) {
            *slot = Some(e);
        }
    }
    error.map_or(Ok(()), Err)
}

/// Sends every loop's export and gets the new process's ready and ack. Returns
/// (connections, listeners, staying).
fn transfer(
    sock: &UnixStream,
    exports: &[Option<LoopExport>],
) -> io::Result<(usize, usize, usize)> {
    let (mut conns, mut listeners, mut staying) = (0, 0, 0);
    for e in exports.iter().flatten() {
        for (rec, fd) in &e.listeners {
            wire::send(
                sock,
                wire::LISTENER,
                &format::encode_listener(rec),
                Some(fd.as_fd()),
            )?;
            listeners += 1;
        }
    }
    for e in exports.iter().flatten() {
        for batch in e.conns.chunks(wire::MAX_FDS) {
            let payload = format::encode_batch(batch.iter().map(|(b, _)| b.as_slice()));
            let fds: Vec<_> = batch.iter().map(|(_, fd)| fd.as_fd()).collect();
            wire::send_with(sock, wire::CONNS, &payload, &fds)?;
            conns += batch.len();
        }
        staying += e.staying;
    }
    wire::send(
        sock,
        wire::END,
        &format::encode_end(listeners as u32, conns as u32),
        None,
    )?;
    wire::read_reply(sock)?;
    wire::send(sock, wire::COMMIT, &[], None)?;
    wire::read_reply(sock)?;
    Ok((conns, listeners, staying))
}

/// What the new process received: listeners and connections, checked.
pub(crate) struct Inbound {
    pub(crate) listeners: Vec<(ListenerRecord, OwnedFd)>,
    pub(crate) conns: Vec<(ConnRecord, OwnedFd)>,
}

/// The new process's side: listens on `path`, takes one handover, checks all of
/// it with `check` before saying ready, and returns once the old process let go.
pub(crate) fn receive(
    path: &Path,
    check: impl Fn(&ConnRecord) -> Result<(), String>,
) -> io::Result<Inbound> {
    let listener = UnixListener::bind(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("handover: listen on {}: {e}", path.display()),
        )
    })?;
    let accepted = listener.accept();
    let _ = std::fs::remove_file(path);
    drop(listener);
    let (sock, _) = accepted?;
    sock.set_read_timeout(Some(STEP_TIMEOUT))?;
    sock.set_write_timeout(Some(STEP_TIMEOUT))?;
    if let Err(e) = wire::same_user(&sock) {
        let _ = wire::reply(&sock, Some("another user"));
        return Err(e);
    }
    let (hello, _) = wire::expect(&sock, wire::HELLO)?;
    if let Err(e) = format::decode_hello(&hello) {
        let _ = wire::reply(&sock, Some(&e.to_string()));
        return Err(refused(e));
    }
    wire::reply(&sock, None)?;
    let mut inbound = Inbound {
        listeners: Vec::new(),
        conns: Vec::new(),
    };
    let verdict = loop {
        let (kind, payload, fds) = wire::recv(&sock)?;
        let step = match kind {
            wire::LISTENER if fds.len() == 1 => format::decode_listener(&payload)
                .map(|l| {
                    inbound
                        .listeners
                        .extend(fds.into_iter().map(|fd| (l.clone(), fd)))
                })
                .map_err(|e| e.to_string()),
            wire::CONNS => conns_batch(&payload, fds, &check, &mut inbound.conns),
            wire::END => match format::decode_end(&payload) {
                Ok((l, c))
                    if l as usize == inbound.listeners.len()
                        && c as usize == inbound.conns.len() =>
                {
                    break Ok(());
                }
                Ok(_) => Err("counts do not match what arrived".to_owned()),
                Err(e) => Err(e.to_string()),
            },
            wire::LISTENER => Err("a listener came without its socket".into()),
            k => Err(format!("unexpected frame {k}")),
        };
        if let Err(e) = step {
            break Err(e);
        }
    };
    if let Err(why) = verdict {
        let _ = wire::reply(&sock, Some(&why));
        return Err(refused(why));
    }
    wire::reply(&sock, None)?;
    wire::expect(&sock, wire::COMMIT)?;
    wire::reply(&sock, None)?;
    Ok(inbound)
}

/// Decodes and checks a batch of connections; one descriptor per record.
fn conns_batch(
    payload: &[u8],
    fds: Vec<OwnedFd>,
    check: &impl Fn(&ConnRecord) -> Result<(), String>,
    into: &mut Vec<(ConnRecord, OwnedFd)>,
) -> Result<(), String> {
    let records = format::decode_batch(payload).map_err(|e| e.to_string())?;
    if records.len() != fds.len() {
        return Err(format!(
            "{} connections came with {} sockets",
            records.len(),
            fds.len()
        ));
    }
    for (bytes, fd) in records.into_iter().zip(fds) {
        let c = format::decode_conn(bytes).map_err(|e| e.to_string())?;
        check(&c)?;
        into.push((c, fd));
    }
    Ok(())
}
