//! The link between the NIC's and the host's iPipe runtimes: one TCP connection on the server's
//! address (loopback or the server namespace's), standing in for the PCIe path iPipe's runtimes
//! use. It carries what the runtimes emit for the other side, in order: migrated actor images
//! (phase 3), forwarded requests (to an actor living on the host, and phase 4's pushed ones),
//! recalls (a pull-back's phase 1) and the host's exported images.
//!
//! Framing (little-endian): `u32` length of what follows, then a kind byte and its payload:
//! `1` hello (the run's control-key tag of [`HELLO`]: the host accepts only its NIC), `2` image,
//! `3` forward (`u8` length + the client's address as text, then the request frame), `4` recall
//! (`u32` actor), `5` exported image. Images are naam-ipipe's encoding ([`naam_ipipe::image`]).
//! One sender thread per side writes in the order the runtime emitted, so an image always
//! precedes the requests forwarded to it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use naam_ipipe::ActorId;
use naam_ipipe::ActorImage;

use crate::control_auth::{ControlKey, TAG_BYTES};

/// What the NIC signs to introduce itself.
pub const HELLO: &[u8] = b"naam-ipipe-link v1";
/// Largest message (an actor image with every object): 1 GiB.
pub const LINK_MESSAGE_BYTES_MAX: usize = 1 << 30;
/// Messages waiting for the sender thread; beyond, they are dropped and recorded as failures.
pub const LINK_QUEUE_MAX: usize = 1 << 16;
/// How often a blocked link thread looks at the stop flag.
pub const LINK_POLL: Duration = Duration::from_millis(50);
/// How long the host waits for its NIC to connect, and the NIC for the host to accept.
pub const LINK_CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes read per system call.
const READ_CHUNK_BYTES: usize = 1 << 16;

/// One message between the sides.
#[derive(Debug)]
pub enum LinkMsg {
    /// The NIC's introduction: the tag of [`HELLO`] under the run's control key.
    Hello([u8; TAG_BYTES]),
    /// NIC → host: a migrated actor ([`naam_ipipe::Event::Migrated`]).
    Image(ActorImage),
    /// NIC → host: a request for an actor on the host; the host answers `client`.
    Forward {
        /// Where the reply goes.
        client: SocketAddr,
        /// The request frame.
        frame: Vec<u8>,
    },
    /// NIC → host: export this actor (a pull-back's phase 1).
    Recall(ActorId),
    /// Host → NIC: the recalled actor ([`naam_ipipe::Event::Exported`]).
    Exported(ActorImage),
}

/// Why the link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A socket operation.
    #[error("iPipe link: {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Bytes that are not a message.
    #[error("iPipe link: malformed message: {0}")]
    Malformed(String),
    /// The peer did not introduce itself with the run's key.
    #[error("iPipe link: the peer did not present the run's key")]
    Unauthenticated,
    /// Nobody connected in time.
    #[error("iPipe link: no connection within {0:?}")]
    Timeout(Duration),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> LinkError {
    move |source| LinkError::Io { what, source }
}

impl LinkMsg {
    /// Appends the message, framed, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            LinkMsg::Hello(tag) => {
                out.push(1);
                out.extend_from_slice(tag);
            }
            LinkMsg::Image(image) | LinkMsg::Exported(image) => {
                out.push(if matches!(self, LinkMsg::Image(_)) {
                    2
                } else {
                    5
                });
                naam_ipipe::image::encode(image, out);
            }
            LinkMsg::Forward { client, frame } => {
                let addr = client.to_string();
                out.push(3);
                out.push(addr.len() as u8);
                out.extend_from_slice(addr.as_bytes());
                out.extend_from_slice(frame);
            }
            LinkMsg::Recall(actor) => {
                out.push(4);
                out.extend_from_slice(&actor.0.to_le_bytes());
            }
        }
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// The message in `body` (a frame without its length).
    pub fn decode(body: &[u8]) -> Result<LinkMsg, LinkError> {
        let bad = |why: &str| LinkError::Malformed(why.to_string());
        let (&kind, rest) = body.split_first().ok_or_else(|| bad("empty"))?;
        let image = |bytes| naam_ipipe::image::decode(bytes).map_err(|e| bad(&e.to_string()));
        match kind {
            1 => Ok(LinkMsg::Hello(
                rest.try_into().map_err(|_| bad("hello length"))?,
            )),
            2 => Ok(LinkMsg::Image(image(rest)?)),
            5 => Ok(LinkMsg::Exported(image(rest)?)),
            3 => {
                let (&n, rest) = rest.split_first().ok_or_else(|| bad("forward"))?;
                let n = usize::from(n);
                let addr = rest.get(..n).ok_or_else(|| bad("forward address"))?;
                let client = std::str::from_utf8(addr)
                    .ok()
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| bad("forward address"))?;
                let frame = rest[n..].to_vec();
                Ok(LinkMsg::Forward { client, frame })
            }
            4 => {
                let id: [u8; 4] = rest.try_into().map_err(|_| bad("recall length"))?;
                Ok(LinkMsg::Recall(ActorId(u32::from_le_bytes(id))))
            }
            k => Err(bad(&format!("kind {k}"))),
        }
    }
}

/// The NIC's end: connects to the host's link (retrying until it listens) and introduces itself.
pub fn connect(to: SocketAddr, key: &ControlKey) -> Result<TcpStream, LinkError> {
    let deadline = Instant::now() + LINK_CONNECT_TIMEOUT;
    let mut stream = loop {
        match TcpStream::connect_timeout(&to, LINK_POLL) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(LINK_POLL),
            Err(e) => return Err(io("connect to the host")(e)),
        }
    };
    stream.set_nodelay(true).map_err(io("set nodelay"))?;
    let mut hello = Vec::new();
    LinkMsg::Hello(key.tag(HELLO)).encode(&mut hello);
    stream.write_all(&hello).map_err(io("send hello"))?;
    Ok(stream)
}

/// The host's end: the first connection that introduces itself with the run's key.
pub fn accept(
    listener: &TcpListener,
    key: &ControlKey,
    stop: &AtomicBool,
) -> Result<TcpStream, LinkError> {
    listener
        .set_nonblocking(true)
        .map_err(io("set nonblocking"))?;
    let deadline = Instant::now() + LINK_CONNECT_TIMEOUT;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(LINK_POLL / 5);
                continue;
            }
            Err(e) => return Err(io("accept")(e)),
        };
        stream.set_nonblocking(false).map_err(io("set blocking"))?;
        stream.set_nodelay(true).map_err(io("set nodelay"))?;
        let mut reader = Reader::new(stream.try_clone().map_err(io("clone"))?)?;
        match reader.next(stop) {
            Ok(Some(LinkMsg::Hello(tag))) if tag == key.tag(HELLO) => return Ok(stream),
            // Someone else: drop them and keep listening.
            _ => continue,
        }
    }
    Err(LinkError::Timeout(LINK_CONNECT_TIMEOUT))
}

/// Reads messages from a stream, looking at the stop flag every [`LINK_POLL`].
#[derive(Debug)]
pub struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
    chunk: Vec<u8>,
}

impl Reader {
    /// Over `stream`.
    pub fn new(stream: TcpStream) -> Result<Reader, LinkError> {
        stream
            .set_read_timeout(Some(LINK_POLL))
            .map_err(io("set read timeout"))?;
        Ok(Reader {
            stream,
            buf: Vec::new(),
            chunk: vec![0; READ_CHUNK_BYTES],
        })
    }

    /// The next message; `None` when the peer closed or `stop` was set.
    pub fn next(&mut self, stop: &AtomicBool) -> Result<Option<LinkMsg>, LinkError> {
        loop {
            if let Some(msg) = self.take()? {
                return Ok(Some(msg));
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            match self.stream.read(&mut self.chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&self.chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io("read")(e)),
            }
        }
    }

    fn take(&mut self) -> Result<Option<LinkMsg>, LinkError> {
        let Some(len) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > LINK_MESSAGE_BYTES_MAX {
            return Err(LinkError::Malformed(format!("{len} bytes")));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let msg = LinkMsg::decode(&self.buf[4..4 + len]);
        self.buf.drain(..4 + len);
        msg.map(Some)
    }
}

/// Writes the messages of `rx` to `stream` in order until `stop` (and the queue is empty) or
/// the channel closes; returns the first write error.
pub fn send_loop(
    mut stream: TcpStream,
    rx: &crossbeam_channel::Receiver<LinkMsg>,
    stop: &AtomicBool,
) -> Result<(), LinkError> {
    let mut out = Vec::new();
    loop {
        let msg = match rx.recv_timeout(LINK_POLL) {
            Ok(m) => m,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) if !stop.load(Ordering::Relaxed) => {
                continue;
            }
            Err(_) => return Ok(()),
        };
        out.clear();
        msg.encode(&mut out);
        stream.write_all(&out).map_err(io("write"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_their_encoding() {
        let mut bytes = Vec::new();
        let client: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        LinkMsg::Forward {
            client,
            frame: vec![1, 2, 3],
        }
        .encode(&mut bytes);
        LinkMsg::Recall(ActorId(7)).encode(&mut bytes);
        let first = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        match LinkMsg::decode(&bytes[4..4 + first]).unwrap() {
            LinkMsg::Forward { client: c, frame } => {
                assert_eq!((c, frame), (client, vec![1, 2, 3]));
            }
            other => panic!("{other:?}"),
        }
        let rest = &bytes[4 + first..];
        assert!(matches!(
            LinkMsg::decode(&rest[4..]).unwrap(),
            LinkMsg::Recall(ActorId(7))
        ));
        assert!(LinkMsg::decode(&[9]).is_err());
        assert!(LinkMsg::decode(&[3, 200]).is_err());
    }
}
