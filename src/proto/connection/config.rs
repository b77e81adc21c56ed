//! The settings of a connection, in the vocabulary every layer of the crate uses
//! (`read_buffer_size`, `write_buffer_size`, `max_message_size`, ...).

use core::time::Duration;

use crate::proto::decoder::{DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_WHOLE_FRAME_MAX};

/// The settings of a connection, shared (behind an `Arc`) by every connection of an
/// endpoint. Build with [`Default`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Largest message accepted; a larger one fails the connection with 1009 as soon
    /// as a frame header announces it (or, compressed, as it inflates past it).
    /// Default: 64 MiB.
    pub max_message_size: u64,
    /// The size of the driver's read buffer: data frames with a payload up to this
    /// size are delivered whole, as one piece borrowed from the input; larger ones
    /// are delivered piece by piece as their bytes arrive. A driver whose buffer
    /// holds `B` bytes past a frame header must set at most `B`. Default: 64 KiB.
    pub read_buffer_size: usize,
    /// Size of the fragments the streaming writer ([`Connection::stream_write`])
    /// emits. Default: 4096 (at least 4).
    ///
    /// [`Connection::stream_write`]: super::Connection::stream_write
    pub write_buffer_size: usize,
    /// Answer pings with pongs automatically. Default: true.
    pub auto_pong: bool,
    /// Send a ping this often while the connection is open (`None`: never).
    /// Default: none.
    pub ping_interval: Option<Duration>,
    /// Fail a peer that sent nothing at all within this time after our heartbeat
    /// ping. Default: 10 s.
    pub pong_timeout: Duration,
    /// Close (1001) a connection that received nothing for this long (`None`:
    /// never). Default: none.
    pub idle_timeout: Option<Duration>,
    /// How long to wait for the peer's close frame after ours (or for its close or
    /// end of input after a failed write), and, as a client, for the server to close
    /// the transport after the closing handshake. Default: 5 s.
    pub close_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            read_buffer_size: DEFAULT_WHOLE_FRAME_MAX,
            write_buffer_size: 4096,
            auto_pong: true,
            ping_interval: None,
            pong_timeout: Duration::from_secs(10),
            idle_timeout: None,
            close_timeout: Duration::from_secs(5),
        }
    }
}

impl ConnectionConfig {
    /// See [`max_message_size`](#structfield.max_message_size). Default: 64 MiB.
    pub fn max_message_size(mut self, n: u64) -> Self {
        self.max_message_size = n;
        self
    }

    /// See [`read_buffer_size`](#structfield.read_buffer_size). Default: 64 KiB.
    pub fn read_buffer_size(mut self, n: usize) -> Self {
        self.read_buffer_size = n;
        self
    }

    /// See [`write_buffer_size`](#structfield.write_buffer_size). Default: 4096.
    pub fn write_buffer_size(mut self, n: usize) -> Self {
        self.write_buffer_size = n;
        self
    }

    /// See [`auto_pong`](#structfield.auto_pong). Default: true.
    pub fn auto_pong(mut self, on: bool) -> Self {
        self.auto_pong = on;
        self
    }

    /// Heartbeat: ping every `interval`, fail a peer silent for `pong_timeout` after
    /// a ping. Default: off.
    pub fn heartbeat(mut self, interval: Option<Duration>, pong_timeout: Duration) -> Self {
        self.ping_interval = interval;
        self.pong_timeout = pong_timeout;
        self
    }

    /// See [`idle_timeout`](#structfield.idle_timeout). Default: none.
    pub fn idle_timeout(mut self, t: Option<Duration>) -> Self {
        self.idle_timeout = t;
        self
    }

    /// See [`close_timeout`](#structfield.close_timeout). Default: 5 s.
    pub fn close_timeout(mut self, t: Duration) -> Self {
        self.close_timeout = t;
        self
    }
}
