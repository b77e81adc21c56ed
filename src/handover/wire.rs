//! Frames over the handover's Unix socket: `[kind: u8][length: u32 LE][payload]`,
//! a frame's file descriptors (at most [`MAX_FDS`]) attached to its header with
//! SCM_RIGHTS. Connections travel in batches ([`CONNS`]: a count, then each record
//! with its length, one descriptor per record in order), so that 10,000 of them
//! take a few hundred system calls, not tens of thousands. rustix does the
//! `sendmsg`/`recvmsg`; no `unsafe` here.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The old process opens: magic and format version.
pub(crate) const HELLO: u8 = 1;
/// The new process answers: [`OK`] then a reason if any.
pub(crate) const REPLY: u8 = 2;
/// A listening socket (with its descriptor).
pub(crate) const LISTENER: u8 = 3;
/// A batch of connections (with their descriptors, in order).
pub(crate) const CONNS: u8 = 4;
/// Everything was sent: the counts.
pub(crate) const END: u8 = 5;
/// The old process let go: the new one serves from now on.
pub(crate) const COMMIT: u8 = 6;

/// The payload of a [`REPLY`] that accepts.
pub(crate) const OK: u8 = 0;
/// The payload of a [`REPLY`] that refuses (a reason follows).
pub(crate) const REFUSE: u8 = 1;

/// Largest frame accepted (a batch of connections with full output queues).
const MAX_FRAME: usize = 512 * 1024 * 1024;

/// Most descriptors in one frame (Linux passes at most 253 per message).
pub(crate) const MAX_FDS: usize = 200;

/// Sends one frame, with `fd` attached to its header.
pub(crate) fn send(
    sock: &UnixStream,
    kind: u8,
    payload: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    send_with(sock, kind, payload, fd.as_slice())
}

/// Sends one frame, with `fds` (at most [`MAX_FDS`]) attached to its header.
pub(crate) fn send_with(
    sock: &UnixStream,
    kind: u8,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    if fds.len() > MAX_FDS || payload.len() > MAX_FRAME {
        return Err(io::Error::other("handover frame too large"));
    }
    let mut head = [0u8; 5];
    head[0] = kind;
    head[1..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("ancillary buffer too small"));
    }
    let mut sent = loop {
        match rustix::net::sendmsg(
            sock,
            &[IoSlice::new(&head)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    // The descriptor went with the first byte; the rest is plain bytes.
    let mut w = sock;
    while sent < head.len() {
        sent += w.write(&head[sent..])?;
    }
    w.write_all(payload)
}

/// Receives one frame: its kind, payload and the descriptors that came with it.
pub(crate) fn recv(sock: &UnixStream) -> io::Result<(u8, Vec<u8>, Vec<OwnedFd>)> {
    let mut head = [0u8; 5];
    // Room for more than a sender may attach, so that nothing is truncated.
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS + 53))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        let mut iov = [IoSliceMut::new(&mut head)];
        match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(m) => break m.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(got) = msg {
            fds.extend(got);
        }
    }
    if got == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the other process hung up",
        ));
    }
    let mut r = sock;
    r.read_exact(&mut head[got..])?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    let mut payload = vec![0; len];
    r.read_exact(&mut payload)?;
    Ok((head[0], payload, fds))
}

/// Receives a frame of `kind` (anything else is a protocol error).
pub(crate) fn expect(sock: &UnixStream, kind: u8) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let (k, payload, fd) = recv(sock)?;
    if k != kind {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("handover: expected frame {kind}, got {k}"),
        ));
    }
    Ok((payload, fd))
}

/// Sends a [`REPLY`]: accept, or refuse with `reason`.
pub(crate) fn reply(sock: &UnixStream, refusal: Option<&str>) -> io::Result<()> {
    let mut p = vec![if refusal.is_some() { REFUSE } else { OK }];
    p.extend_from_slice(refusal.unwrap_or("").as_bytes());
    send(sock, REPLY, &p, None)
}

/// Reads a [`REPLY`]: `Ok(())` if the other side accepted, an error with its
/// reason if it refused.
pub(crate) fn read_reply(sock: &UnixStream) -> io::Result<()> {
    let (p, _) = expect(sock, REPLY)?;
    match p.split_first() {
        Some((&OK, _)) => Ok(()),
        Some((_, reason)) => Err(io::Error::other(format!(
            "the new process refused the handover: {}",
            String::from_utf8_lossy(reason)
        ))),
        None => Err(io::Error::new(io::ErrorKind::InvalidData, "empty reply")),
    }
}

/// Checks that the process at the other end of `sock` runs as our user (Linux:
/// `SO_PEERCRED`; elsewhere the socket's directory must be trusted alone): a
/// handover gives away every connection, so it goes to no one else.
pub(crate) fn same_user(sock: &UnixStream) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let peer = rustix::net::sockopt::socket_peercred(sock)?;
        if peer.uid != rustix::process::getuid() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "handover: the process at the other end (pid {}) runs as another user",
                    peer.pid.as_raw_nonzero()
                ),
            ));
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = sock;
    Ok(())
}

/// A descriptor of `s` that outlives it (the same socket: `dup`).
pub(crate) fn dup(s: &impl AsFd) -> io::Result<OwnedFd> {
    rustix::io::dup(s.as_fd()).map_err(Into::into)
}
