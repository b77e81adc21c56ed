//! permessage-deflate (RFC 7692): negotiation, and per-message compression and
//! decompression shared by both IO layers. Only with the `deflate` feature.
//!
//! Negotiation: [`client_offer`] builds the client's offer, [`server_accept`] picks the
//! first acceptable offer from a request (declining malformed ones, §5),
//! [`client_check_response`] validates the server's answer (failing the handshake on
//! anything malformed, §5). Data: [`MessageDeflater`] compresses outgoing messages
//! (the trailing `00 00 ff ff` removed, §7.2.1) and [`MessageInflater`] decompresses
//! incoming ones fragment by fragment, enforcing the read limit on the *decompressed*
//! size (a decompression bomb stops at the limit) and UTF-8 of text as it inflates.
//!
//! zlib cannot compress with a window of 8 bits; offers and answers that would make
//! us compress with 8 are declined (server) or refused (client). Decompression uses at
//! least 9 bits, which reads any stream made with 8.
//!
//! One file per concern: `config` (what an endpoint offers or accepts, how a
//! connection keeps state), `negotiate` (offers and answers), `deflater`, `inflater`,
//! and `memory` (the per-thread pools and the windows state is kept in).

mod config;
mod deflater;
mod inflater;
mod memory;
mod negotiate;
#[cfg(test)]
mod tests;

pub use config::{DeflateConfig, DeflateMemory, DeflateParams, EXTENSION};
pub use deflater::MessageDeflater;
pub use inflater::{INFLATE_CHUNK, MessageInflater};
pub use negotiate::{client_check_response, client_offer, server_accept};

/// The marker a sync flush ends with; stripped on send, appended on receive (§7.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
