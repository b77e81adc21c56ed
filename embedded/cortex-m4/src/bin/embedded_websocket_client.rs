//! The minimal client of `silverback_client.rs` on embedded-websocket (0.9, no_std):
//! opening handshake, one text message sent, one received, the closing handshake;
//! the same smoltcp network, clock and ChaCha generator. Built for its size
//! (`embedded/sizes.sh`). embedded-websocket works in caller buffers: the
//! receive buffer and the frame buffer below are its connection state.
#![no_std]
#![no_main]

extern crate alloc;

use cortex_m_rt::entry;
use embedded_websocket::{
    WebSocketClient, WebSocketCloseStatusCode, WebSocketOptions, WebSocketReceiveMessageType,
    WebSocketSendMessageType, WebSocketState,
};
use panic_halt as _;
use rand_chacha_03::ChaCha20Rng;
use rand_core_06::SeedableRng;
use silverback_cortex_m4::{HeapSize, StubDevice, connect, entropy, init_heap, local, millis};
use smoltcp::socket::tcp;

#[entry]
fn main() -> ! {
    init_heap(HeapSize::Small);

    let mut dev = StubDevice::new();
    let (mut iface, mut sockets, h) = connect(&mut dev, local());
    let mut tick = 0u32;
    let mut ws = WebSocketClient::new_client(ChaCha20Rng::from_seed(entropy()));
    let options = WebSocketOptions {
        path: "/websocket",
        host: "192.168.69.1",
        origin: "",
        sub_protocols: None,
        additional_headers: None,
    };
    let mut out = [0u8; 1024];
    let mut rx = [0u8; 1024];
    let mut rx_len = 0;
    let mut frame = [0u8; 1024];
    let (n, key) = match ws.client_connect(&options, &mut out) {
        Ok(v) => v,
        Err(_) => halt(),
    };
    let mut out_len = n;
    let mut out_sent = 0;
    loop {
        // The same millisecond tick as the silverback program (32 bits, wrapping);
        // embedded-websocket keeps no time.
        tick = tick.wrapping_add(1);
        let now = smoltcp::time::Instant::from_millis(i64::from(millis(tick)));
        iface.poll(now, &mut dev, &mut sockets);
        let sock = sockets.get_mut::<tcp::Socket>(h);
        if let Ok(n) = sock.recv_slice(&mut rx[rx_len..]) {
            rx_len += n;
        }
        if out_sent < out_len {
            out_sent += sock.send_slice(&out[out_sent..out_len]).unwrap_or(0);
            continue;
        }
        match ws.state {
            WebSocketState::Connecting => match ws.client_accept(&key, &rx[..rx_len]) {
                Ok((n, _protocol)) => {
                    rx.copy_within(n..rx_len, 0);
                    rx_len -= n;
                    match ws.write(WebSocketSendMessageType::Text, true, b"hello", &mut out) {
                        Ok(n) => (out_len, out_sent) = (n, 0),
                        Err(_) => break,
                    }
                }
                Err(embedded_websocket::Error::HttpHeaderIncomplete) => {}
                Err(_) => break,
            },
            WebSocketState::Open | WebSocketState::CloseSent => {
                if rx_len == 0 {
                    continue;
                }
                let r = match ws.read(&rx[..rx_len], &mut frame) {
                    Ok(r) => r,
                    Err(embedded_websocket::Error::ReadFrameIncomplete) => continue,
                    Err(_) => break,
                };
                rx.copy_within(r.len_from..rx_len, 0);
                rx_len -= r.len_from;
                let reply = match r.message_type {
                    WebSocketReceiveMessageType::Text if r.end_of_message => {
                        ws.close(WebSocketCloseStatusCode::NormalClosure, None, &mut out)
                    }
                    WebSocketReceiveMessageType::CloseMustReply => ws.write(
                        WebSocketSendMessageType::CloseReply,
                        true,
                        &frame[..r.len_to],
                        &mut out,
                    ),
                    WebSocketReceiveMessageType::Ping => ws.write(
                        WebSocketSendMessageType::Pong,
                        true,
                        &frame[..r.len_to],
                        &mut out,
                    ),
                    WebSocketReceiveMessageType::CloseCompleted => {
                        sock.close();
                        break;
                    }
                    _ => Ok(0),
                };
                match reply {
                    Ok(n) => (out_len, out_sent) = (n, 0),
                    Err(_) => break,
                }
            }
            _ => break,
        }
    }
    halt()
}

fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
