//! What an application touches: the [`Handler`](handler::Handler) it implements,
//! the contexts its callbacks get ([`Ctx`](ctx::Ctx), [`LoopCtx`](ctx::LoopCtx)), the
//! handles other threads use ([`Sender`](sender::Sender),
//! [`Publisher`](publisher::Publisher), [`Responder`](responder::Responder)), the plain values passed back and forth, the
//! configuration, the counters, and the front doors ([`Server`](server::Server),
//! [`Client`](client::Client)).

pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod ctx;
pub(crate) mod handler;
#[cfg(feature = "handover")]
pub(crate) mod handover;
pub(crate) mod id;
pub(crate) mod limits;
pub(crate) mod prepared;
pub(crate) mod publisher;
pub(crate) mod responder;
pub(crate) mod response;
pub(crate) mod sender;
pub(crate) mod server;
pub(crate) mod stats;
pub(crate) mod types;
