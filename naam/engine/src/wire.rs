//! The NAAM wire format (version 1, little-endian). Our reconstruction: the paper does not publish
//! one.
//!
//! Every frame starts with a 4-byte header: magic `0x4e41` ("AN" on the wire), version, kind.
//!
//! | kind | frame | direction |
//! |---|---|---|
//! | 1 | [`Invoke`]: run a function (also a continuation inside a pushback reply) | client → server |
//! | 2 | [`Reply`]: status, where it ran, reply bytes | server → client |
//! | 3 | [`ReadRequest`]: a one-sided read (RDMA READ) | client → server RNIC |
//! | 4 | [`ReadReply`]: the bytes, or why they were denied | server RNIC → client |
//! | 5 | [`LoadSample`]: a location's load, for the controller | NIC → host controller |
//!
//! Decoding borrows from the datagram, never panics, never allocates, and rejects every variable
//! part above its named maximum ([`crate::abi`]). [`Frame::decode`] ∘ `encode` is the identity
//! (property-tested in `tests/wire_props.rs`; fuzzed by `fuzz/fuzz_targets/decode.rs`).

use crate::abi::{
    ACCESS_BYTES_MAX, ACCESSES_PER_STEP_MAX, ARGS_BYTES_MAX, REPLY_BYTES_MAX, STATE_BYTES_MAX,
};
use crate::ids::{AccessKind, Descriptor, FunctionId, Location, Nanos, RequestId, Rkey, TenantId};

/// First two bytes of every frame.
pub const MAGIC: u16 = 0x4e41;
/// The only wire version this code speaks.
pub const WIRE_VERSION: u8 = 1;
/// Bytes of the common header (magic, version, kind).
pub const HEADER_BYTES: usize = 4;
/// Bytes of one encoded descriptor.
pub const DESCRIPTOR_BYTES: usize = 24;
/// Bytes of a reply address.
pub const REPLY_ADDR_BYTES: usize = 20;
/// Fixed part of an Invoke after the common header.
const INVOKE_FIXED_BYTES: usize = 4 + 4 + 8 + 4 + 2 + 1 + 1 + 1 + 1 + 2 + 2 + REPLY_ADDR_BYTES;
/// Largest encoded Invoke.
pub const INVOKE_BYTES_MAX: usize = HEADER_BYTES
    + INVOKE_FIXED_BYTES
    + ARGS_BYTES_MAX
    + 2 * ACCESSES_PER_STEP_MAX * DESCRIPTOR_BYTES
    + STATE_BYTES_MAX;
/// Largest payload of a reply: reply bytes, or a whole Invoke (a pushed-back continuation).
pub const REPLY_PAYLOAD_BYTES_MAX: usize = if REPLY_BYTES_MAX > INVOKE_BYTES_MAX {
    REPLY_BYTES_MAX
} else {
    INVOKE_BYTES_MAX
};
/// Largest frame of any kind (a read reply carrying `ACCESS_BYTES_MAX` bytes).
pub const FRAME_BYTES_MAX: usize = HEADER_BYTES + 16 + ACCESS_BYTES_MAX;
const _: () = assert!(FRAME_BYTES_MAX >= HEADER_BYTES + 24 + REPLY_PAYLOAD_BYTES_MAX);

/// Why a byte string is not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame ended inside a field.
    #[error("frame truncated in `{field}`: needs {need} more bytes, {have} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// The first two bytes are not [`MAGIC`].
    #[error("bad magic {found:#06x} (expected {MAGIC:#06x})")]
    BadMagic {
        /// The bytes found.
        found: u16,
    },
    /// A wire version this code does not speak.
    #[error("unsupported wire version {found} (this build speaks {WIRE_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u8,
    },
    /// An unknown frame kind.
    #[error("unknown frame kind {found}")]
    UnknownKind {
        /// The kind found.
        found: u8,
    },
    /// A variable part longer than its maximum.
    #[error("`{field}` is {len} long, more than its maximum {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its declared length.
        len: usize,
        /// The named maximum.
        max: usize,
    },
    /// A field holds a value outside its domain.
    #[error("`{field}` has invalid value {value}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// Bytes left over after a complete frame.
    #[error("{extra} trailing bytes after the frame")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

/// Why a frame cannot be encoded (a variable part over its maximum).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A variable part longer than its maximum.
    #[error("`{field}` is {len} long, more than its maximum {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The named maximum.
        max: usize,
    },
}

/// The address replies go to (IPv4-mapped or IPv6 address and UDP port). The engine has no
/// sockets: the transport converts this to and from its socket addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplyAddr {
    /// IPv6 address bytes (IPv4 as `::ffff:a.b.c.d`).
    pub ip: [u8; 16],
    /// UDP port.
    pub port: u16,
}

/// Up to [`ACCESSES_PER_STEP_MAX`] descriptors, inline (no allocation). Lists of the same
/// descriptors are equal (and hash alike) whatever their unused slots hold.
#[derive(Clone, Copy)]
pub struct Descriptors {
    items: [Descriptor; ACCESSES_PER_STEP_MAX],
    len: u8,
}

impl PartialEq for Descriptors {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Descriptors {}

impl std::hash::Hash for Descriptors {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl std::fmt::Debug for Descriptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

const EMPTY_DESCRIPTOR: Descriptor = Descriptor {
    rkey: Rkey(0),
    offset: 0,
    len: 0,
    kind: AccessKind::Read,
};

impl Default for Descriptors {
    fn default() -> Self {
        Descriptors::new()
    }
}

impl Descriptors {
    /// No descriptors.
    pub const fn new() -> Descriptors {
        Descriptors {
            items: [EMPTY_DESCRIPTOR; ACCESSES_PER_STEP_MAX],
            len: 0,
        }
    }

    /// Builds from a slice; `None` if it holds more than [`ACCESSES_PER_STEP_MAX`].
    pub fn from_slice(slice: &[Descriptor]) -> Option<Descriptors> {
        let mut out = Descriptors::new();
        for d in slice {
            out.push(*d).ok()?;
        }
        Some(out)
    }

    /// Appends one; `Err` when full.
    pub fn push(&mut self, descriptor: Descriptor) -> Result<(), Descriptor> {
        let slot = self
            .items
            .get_mut(usize::from(self.len))
            .ok_or(descriptor)?;
        *slot = descriptor;
        self.len += 1;
        Ok(())
    }

    /// The descriptors.
    #[inline]
    pub fn as_slice(&self) -> &[Descriptor] {
        &self.items[..usize::from(self.len)]
    }

    /// How many.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes all.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Flags of an [`Invoke`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InvokeFlags(pub u16);

impl InvokeFlags {
    /// The client can finish this message itself if the server pushes it back.
    pub const ALLOW_PUSHBACK: u16 = 1 << 0;
    /// Every flag this version defines; others are rejected.
    pub const KNOWN: u16 = Self::ALLOW_PUSHBACK;

    /// True when `flag` is set.
    pub fn has(self, flag: u16) -> bool {
        self.0 & flag != 0
    }
}

/// Run function `function` of `tenant` over `descriptors` (a message, or a continuation when
/// `step > 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invoke<'a> {
    /// The tenant the message acts for.
    pub tenant: TenantId,
    /// The function to run.
    pub function: FunctionId,
    /// Echoed in the reply.
    pub request_id: RequestId,
    /// Steering granularity below the function (e.g. the client's index).
    pub flow: u32,
    /// [`InvokeFlags`].
    pub flags: InvokeFlags,
    /// Steps already run (0 for a new message).
    pub step: u8,
    /// Attempts already restarted by `NAAM_RETRY`.
    pub attempt: u8,
    /// Where the reply goes (`None`: to the sender).
    pub reply_to: Option<ReplyAddr>,
    /// The argument block (≤ `ARGS_BYTES_MAX`).
    pub args: &'a [u8],
    /// Accesses to perform before step `step`.
    pub descriptors: Descriptors,
    /// Step 0's accesses, needed to restart a continuation after `NAAM_RETRY` (empty when
    /// `step == 0`, since they are `descriptors` then).
    pub origin: Descriptors,
    /// State carried into step `step` (≤ `STATE_BYTES_MAX`).
    pub state: &'a [u8],
}

/// The outcome of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The function replied; the payload is its reply.
    Ok,
    /// The server did not run (or finish) the message; the payload is an [`Invoke`] continuation
    /// the client may run itself.
    Pushback,
    /// The message failed.
    Error(ErrorCode),
}

/// A typed failure carried in a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrorCode {
    /// The class of failure.
    pub kind: ErrorKind,
    /// Class-specific detail (e.g. the function's own error code, the denial reason).
    pub detail: u32,
}

/// Classes of failure a reply can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request was not a valid frame.
    Malformed,
    /// No such function for this tenant.
    UnknownFunction,
    /// An access was denied; detail = [`crate::region::Denial::code`].
    AccessDenied,
    /// The function trapped; detail = [`crate::exec::TrapClass`] code.
    Trap,
    /// More than `STEPS_MAX` steps.
    StepsExceeded,
    /// More than `RETRIES_MAX` retries.
    RetriesExceeded,
    /// The function returned its own error code (detail).
    FunctionError,
    /// No room for another message at this location and pushback was not allowed.
    Overloaded,
    /// The function cannot run at this location (e.g. a host-native function at the NIC).
    WrongLocation,
    /// An access could not be performed by the data path (e.g. a transport failure).
    DataPath,
}

impl ErrorKind {
    const ALL: [ErrorKind; 10] = [
        ErrorKind::Malformed,
        ErrorKind::UnknownFunction,
        ErrorKind::AccessDenied,
        ErrorKind::Trap,
        ErrorKind::StepsExceeded,
        ErrorKind::RetriesExceeded,
        ErrorKind::FunctionError,
        ErrorKind::Overloaded,
        ErrorKind::WrongLocation,
        ErrorKind::DataPath,
    ];

    /// Wire code (1-based; 0 is never an error).
    pub fn code(self) -> u16 {
        ErrorKind::ALL
            .iter()
            .position(|k| *k == self)
            .map_or(0, |i| i as u16 + 1)
    }

    /// Decodes a wire code.
    pub fn from_code(code: u16) -> Option<ErrorKind> {
        ErrorKind::ALL
            .get(usize::from(code).checked_sub(1)?)
            .copied()
    }

    /// A stable lower-case name for results and logs.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "malformed",
            ErrorKind::UnknownFunction => "unknown-function",
            ErrorKind::AccessDenied => "access-denied",
            ErrorKind::Trap => "trap",
            ErrorKind::StepsExceeded => "steps-exceeded",
            ErrorKind::RetriesExceeded => "retries-exceeded",
            ErrorKind::FunctionError => "function-error",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::WrongLocation => "wrong-location",
            ErrorKind::DataPath => "data-path",
        }
    }
}

/// The reply to an [`Invoke`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The request's id.
    pub request_id: RequestId,
    /// Outcome.
    pub status: Status,
    /// Where it ran (for a pushback: where it was pushed back from).
    pub location: Location,
    /// Steps run in the last attempt.
    pub steps: u8,
    /// Attempts restarted by `NAAM_RETRY`.
    pub attempts: u8,
    /// Steering hint: the share (permille) of new requests of this function the client should run
    /// itself (server-side pushback).
    pub client_permille: u16,
    /// Reply bytes (Ok) or an encoded continuation (Pushback); empty on error.
    pub payload: &'a [u8],
}

/// A one-sided read: `len` bytes at `offset` of `rkey`, on behalf of `tenant`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    /// The tenant reading.
    pub tenant: TenantId,
    /// Echoed in the reply.
    pub read_id: u64,
    /// Region capability.
    pub rkey: Rkey,
    /// Offset in the region.
    pub offset: u64,
    /// Bytes (≤ `ACCESS_BYTES_MAX`).
    pub len: u32,
}

/// The answer to a [`ReadRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadReply<'a> {
    /// The read's id.
    pub read_id: u64,
    /// 0 when the read was served, else a [`crate::region::Denial::code`].
    pub denial: u32,
    /// The bytes read (empty when denied).
    pub data: &'a [u8],
}

/// A location's load over the last sampling period, for the controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadSample {
    /// End of the sampling period.
    pub at: Nanos,
    /// Which location (host or NIC).
    pub location: Option<Location>,
    /// Queueing delay of messages started in the period (mean, ns).
    pub queue_delay_ns: u64,
    /// Busy time of the location's workers over the period, permille of capacity.
    pub utilisation_permille: u16,
    /// Messages queued at the end of the period.
    pub queue_len: u32,
    /// Messages completed in the period.
    pub completions: u64,
    /// Length of the period (ns).
    pub period_ns: u64,
}

/// Any frame. Decoded on the stack and consumed at once, so the size of the largest variant
/// (an Invoke with its inline descriptors) is deliberate: boxing it would allocate per message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Frame<'a> {
    /// Kind 1.
    Invoke(Invoke<'a>),
    /// Kind 2.
    Reply(Reply<'a>),
    /// Kind 3.
    Read(ReadRequest),
    /// Kind 4.
    ReadReply(ReadReply<'a>),
    /// Kind 5.
    Sample(LoadSample),
}

const KIND_INVOKE: u8 = 1;
const KIND_REPLY: u8 = 2;
const KIND_READ: u8 = 3;
const KIND_READ_REPLY: u8 = 4;
const KIND_SAMPLE: u8 = 5;

impl<'a> Frame<'a> {
    /// Decodes one whole frame. Never panics; never allocates. Inlined, with the field decoders,
    /// so an Invoke (≈ 300 bytes with its inline descriptors) is copied out through fewer
    /// layers' `Result`s; a server that takes only Invokes uses
    /// [`Frame::decode_invoke_in_place`], which copies none.
    #[inline]
    pub fn decode(bytes: &'a [u8]) -> Result<Frame<'a>, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let frame = match decode_header(&mut r)? {
            KIND_INVOKE => Frame::Invoke(decode_invoke(&mut r)?),
            KIND_REPLY => Frame::Reply(decode_reply(&mut r)?),
            KIND_READ => Frame::Read(decode_read(&mut r)?),
            KIND_READ_REPLY => Frame::ReadReply(decode_read_reply(&mut r)?),
            KIND_SAMPLE => Frame::Sample(decode_sample(&mut r)?),
            found => return Err(DecodeError::UnknownKind { found }),
        };
        r.finish()?;
        Ok(frame)
    }

    /// [`Frame::decode`] for a server, which takes only Invokes: an Invoke is decoded into
    /// `invoke` (whatever it held; it is then that frame's Invoke) and gives `Ok(true)`; a valid frame of another kind gives `Ok(false)`; bytes that are no
    /// frame give [`Frame::decode`]'s error. In place, so the Invoke (≈ 300 bytes) is not moved.
    #[inline]
    pub fn decode_invoke_in_place(
        bytes: &'a [u8],
        invoke: &mut Invoke<'a>,
    ) -> Result<bool, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        if decode_header(&mut r)? != KIND_INVOKE {
            return Frame::decode(bytes).map(|_| false);
        }
        decode_invoke_into(&mut r, invoke)?;
        r.finish()?;
        Ok(true)
    }

    /// The frame's kind byte on the wire.
    pub fn kind(&self) -> u8 {
        match self {
            Frame::Invoke(_) => KIND_INVOKE,
            Frame::Reply(_) => KIND_REPLY,
            Frame::Read(_) => KIND_READ,
            Frame::ReadReply(_) => KIND_READ_REPLY,
            Frame::Sample(_) => KIND_SAMPLE,
        }
    }

    /// Encodes into `out` (cleared first; reuse it to avoid allocation).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.clear();
        put_header(self.kind(), out);
        match self {
            Frame::Invoke(m) => encode_invoke(m, out),
            Frame::Reply(m) => encode_reply(m, out),
            Frame::Read(m) => encode_read(m, out),
            Frame::ReadReply(m) => encode_read_reply(m, out),
            Frame::Sample(m) => {
                encode_sample(m, out);
                Ok(())
            }
        }
    }
}

/// A frame a client takes: the kinds [`crate::client::ClientEndpoint::handle_datagram`] accepts.
/// Small (no Invoke variant), so a reply is decoded where the client keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// Kind 2.
    Reply(Reply<'a>),
    /// Kind 4.
    ReadReply(ReadReply<'a>),
}

/// Why bytes are not a frame a client takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientDecodeError {
    /// Not a valid frame: [`Frame::decode`]'s error for the same bytes.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// A valid frame of a kind a client does not take (an Invoke, a read request, a sample).
    #[error("frame kind {kind} is not one a client takes")]
    NotForClient {
        /// The frame's kind.
        kind: u8,
    },
}

impl<'a> ClientFrame<'a> {
    /// Decodes a Reply or a ReadReply exactly as [`Frame::decode`] does (the same frame, or the
    /// same error), without building the Invoke variant a client never takes (≈ 280 bytes, written
    /// out on every reply). Any other kind is decoded whole, out of line, for its error.
    /// Always inlined: out of line, the reply went through memory as a `Result` once more.
    #[inline(always)]
    pub fn decode(bytes: &'a [u8]) -> Result<ClientFrame<'a>, ClientDecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let frame = match decode_header(&mut r)? {
            KIND_REPLY => ClientFrame::Reply(decode_reply(&mut r)?),
            KIND_READ_REPLY => ClientFrame::ReadReply(decode_read_reply(&mut r)?),
            _ => return Err(not_for_client(bytes)),
        };
        r.finish()?;
        Ok(frame)
    }
}

/// What a frame of a kind other than a client's is: malformed (with [`Frame::decode`]'s error) or
/// valid but not for a client. Never on a client's hot path.
#[cold]
#[inline(never)]
fn not_for_client(bytes: &[u8]) -> ClientDecodeError {
    match Frame::decode(bytes) {
        Ok(frame) => ClientDecodeError::NotForClient { kind: frame.kind() },
        Err(e) => ClientDecodeError::Malformed(e),
    }
}

impl<'a> Invoke<'a> {
    /// Every field zero or empty: a place to decode into ([`Frame::decode_invoke_in_place`]).
    #[inline]
    pub fn empty() -> Invoke<'a> {
        Invoke::new_message(
            TenantId(0),
            FunctionId(0),
            RequestId(0),
            &[],
            Descriptors::new(),
        )
    }

    /// A new message (step 0, first attempt, no state): `args` and step 0's `descriptors`, no
    /// flags, flow 0, reply to the sender. Set other fields with struct update syntax.
    pub fn new_message(
        tenant: TenantId,
        function: FunctionId,
        request_id: RequestId,
        args: &'a [u8],
        descriptors: Descriptors,
    ) -> Invoke<'a> {
        Invoke {
            tenant,
            function,
            request_id,
            flow: 0,
            flags: InvokeFlags(0),
            step: 0,
            attempt: 0,
            reply_to: None,
            args,
            descriptors,
            origin: Descriptors::new(),
            state: &[],
        }
    }

    /// Encodes this Invoke as a frame ([`Frame::encode`]'s bytes, without copying the Invoke
    /// into a [`Frame`] first).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.clear();
        put_header(KIND_INVOKE, out);
        encode_invoke(self, out)
    }

    /// The fields [`MessageHead`] names.
    fn head(&self) -> MessageHead {
        MessageHead {
            tenant: self.tenant,
            function: self.function,
            request_id: self.request_id,
            flow: self.flow,
            flags: self.flags,
            reply_to: self.reply_to,
        }
    }
}

/// A new message's fields besides its argument block and step 0's accesses (an [`Invoke`] at
/// step 0, first attempt, without origin or state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHead {
    /// The tenant the message acts for.
    pub tenant: TenantId,
    /// The function to run.
    pub function: FunctionId,
    /// Echoed in the reply.
    pub request_id: RequestId,
    /// Steering granularity below the function.
    pub flow: u32,
    /// [`InvokeFlags`].
    pub flags: InvokeFlags,
    /// Where the reply goes (`None`: to the sender).
    pub reply_to: Option<ReplyAddr>,
}

impl MessageHead {
    /// Encodes the new message with `args` and step 0's `descriptors` as an Invoke frame into
    /// `out` (cleared first): the bytes [`Invoke::encode`] writes for the same message, without
    /// building the Invoke (≈ 280 bytes, two descriptor lists) first. A client encodes every
    /// request it sends to the server this way.
    pub fn encode_invoke(
        &self,
        args: &[u8],
        descriptors: &Descriptors,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let fixed = invoke_fixed(self, [0, 0, descriptors.len, 0], args.len(), 0);
        let mut frame = [0u8; HEADER_BYTES + INVOKE_FIXED_BYTES];
        frame[..HEADER_BYTES].copy_from_slice(&header(KIND_INVOKE));
        frame[HEADER_BYTES..].copy_from_slice(&fixed);
        out.clear();
        put_invoke(&frame, args, descriptors.as_slice(), &[], &[], out)
    }
}

// ---- encoding ---------------------------------------------------------------------------------

/// The common header (magic, version, kind).
fn header(kind: u8) -> [u8; HEADER_BYTES] {
    let [magic_lo, magic_hi] = MAGIC.to_le_bytes();
    [magic_lo, magic_hi, WIRE_VERSION, kind]
}

/// The common header in one append, not three.
fn put_header(kind: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&header(kind));
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), EncodeError> {
    if len > max {
        return Err(EncodeError::TooLong { field, len, max });
    }
    Ok(())
}

fn put_descriptor(d: &Descriptor, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_len("descriptor.len", d.len as usize, ACCESS_BYTES_MAX)?;
    let mut bytes = [0u8; DESCRIPTOR_BYTES];
    bytes[0..8].copy_from_slice(&d.rkey.0.to_le_bytes());
    bytes[8..16].copy_from_slice(&d.offset.to_le_bytes());
    bytes[16..20].copy_from_slice(&d.len.to_le_bytes());
    bytes[20] = d.kind.code();
    // bytes[21..24]: padding, zero.
    out.extend_from_slice(&bytes);
    Ok(())
}

/// The Invoke's fixed part, built in one array and appended once (as [`encode_reply`] does):
/// one capacity check instead of one per field, on every request a client sends. `counts` are
/// the step, the attempt, and the lengths of the descriptor and origin lists; an argument block
/// or state above its maximum (its length truncated here) is refused by [`put_invoke`].
fn invoke_fixed(
    head: &MessageHead,
    counts: [u8; 4],
    args_len: usize,
    state_len: usize,
) -> [u8; INVOKE_FIXED_BYTES] {
    let mut fixed = [0u8; INVOKE_FIXED_BYTES];
    fixed[0..4].copy_from_slice(&head.tenant.0.to_le_bytes());
    fixed[4..8].copy_from_slice(&head.function.0.to_le_bytes());
    fixed[8..16].copy_from_slice(&head.request_id.0.to_le_bytes());
    fixed[16..20].copy_from_slice(&head.flow.to_le_bytes());
    fixed[20..22].copy_from_slice(&head.flags.0.to_le_bytes());
    fixed[22..26].copy_from_slice(&counts);
    fixed[26..28].copy_from_slice(&(args_len as u16).to_le_bytes());
    fixed[28..30].copy_from_slice(&(state_len as u16).to_le_bytes());
    if let Some(addr) = &head.reply_to {
        // present = 1, a zero pad byte, the port, the address; absent: all zero.
        fixed[30] = 1;
        fixed[32..34].copy_from_slice(&addr.port.to_le_bytes());
        fixed[34..50].copy_from_slice(&addr.ip);
    }
    fixed
}

fn encode_invoke(m: &Invoke<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let counts = [m.step, m.attempt, m.descriptors.len, m.origin.len];
    let fixed = invoke_fixed(&m.head(), counts, m.args.len(), m.state.len());
    let (descriptors, origin) = (m.descriptors.as_slice(), m.origin.as_slice());
    put_invoke(&fixed, m.args, descriptors, origin, m.state, out)
}

/// Appends an Invoke's parts after its `fixed` bytes (the fixed part, possibly after the frame
/// header) with one reservation, refusing a part above its maximum.
#[inline]
fn put_invoke(
    fixed: &[u8],
    args: &[u8],
    descriptors: &[Descriptor],
    origin: &[Descriptor],
    state: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    check_len("args", args.len(), ARGS_BYTES_MAX)?;
    check_len("state", state.len(), STATE_BYTES_MAX)?;
    let descriptors_bytes = (descriptors.len() + origin.len()) * DESCRIPTOR_BYTES;
    out.reserve(fixed.len() + args.len() + descriptors_bytes + state.len());
    out.extend_from_slice(fixed);
    out.extend_from_slice(args);
    for d in descriptors {
        put_descriptor(d, out)?;
    }
    for d in origin {
        put_descriptor(d, out)?;
    }
    out.extend_from_slice(state);
    Ok(())
}

fn status_code(status: Status) -> (u8, u16, u32) {
    match status {
        Status::Ok => (0, 0, 0),
        Status::Pushback => (1, 0, 0),
        Status::Error(e) => (2, e.kind.code(), e.detail),
    }
}

/// Bytes of a Reply's fixed part (after the frame header, before the payload).
const REPLY_FIXED_BYTES: usize = 24;

/// Builds the fixed part in a stack array and appends it with the payload in two copies: a reply
/// is encoded once per message, and nine appends each paid a capacity check.
fn encode_reply(m: &Reply<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_len("payload", m.payload.len(), REPLY_PAYLOAD_BYTES_MAX)?;
    let (status, kind, detail) = status_code(m.status);
    let mut fixed = [0u8; REPLY_FIXED_BYTES];
    fixed[0..8].copy_from_slice(&m.request_id.0.to_le_bytes());
    fixed[8..12].copy_from_slice(&[status, m.location.code(), m.steps, m.attempts]);
    fixed[12..14].copy_from_slice(&kind.to_le_bytes());
    fixed[14..16].copy_from_slice(&m.client_permille.to_le_bytes());
    fixed[16..20].copy_from_slice(&detail.to_le_bytes());
    fixed[20..22].copy_from_slice(&(m.payload.len() as u16).to_le_bytes());
    // fixed[22..24]: padding, zero.
    out.reserve(REPLY_FIXED_BYTES + m.payload.len());
    out.extend_from_slice(&fixed);
    out.extend_from_slice(m.payload);
    Ok(())
}

fn encode_read(m: &ReadRequest, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_len("read.len", m.len as usize, ACCESS_BYTES_MAX)?;
    out.extend_from_slice(&m.tenant.0.to_le_bytes());
    out.extend_from_slice(&m.len.to_le_bytes());
    out.extend_from_slice(&m.read_id.to_le_bytes());
    out.extend_from_slice(&m.rkey.0.to_le_bytes());
    out.extend_from_slice(&m.offset.to_le_bytes());
    Ok(())
}

fn encode_read_reply(m: &ReadReply<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_len("read_reply.data", m.data.len(), ACCESS_BYTES_MAX)?;
    out.extend_from_slice(&m.read_id.to_le_bytes());
    out.extend_from_slice(&m.denial.to_le_bytes());
    out.extend_from_slice(&(m.data.len() as u32).to_le_bytes());
    out.extend_from_slice(m.data);
    Ok(())
}

fn encode_sample(m: &LoadSample, out: &mut Vec<u8>) {
    out.extend_from_slice(&m.at.0.to_le_bytes());
    out.push(m.location.map_or(u8::MAX, Location::code));
    out.push(0);
    out.extend_from_slice(&m.utilisation_permille.to_le_bytes());
    out.extend_from_slice(&m.queue_len.to_le_bytes());
    out.extend_from_slice(&m.queue_delay_ns.to_le_bytes());
    out.extend_from_slice(&m.completions.to_le_bytes());
    out.extend_from_slice(&m.period_ns.to_le_bytes());
}

// ---- decoding ---------------------------------------------------------------------------------

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    // Always inlined: LLVM left `array` out of line, eight calls per Invoke.
    #[inline(always)]
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let have = self.bytes.len() - self.pos;
        if n > have {
            return Err(DecodeError::Truncated {
                field,
                need: n,
                have,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    #[inline]
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    #[inline]
    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    #[inline]
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    #[inline]
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    #[inline]
    fn bounded(
        &mut self,
        len: usize,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.take(len, field)
    }

    /// A reader of the next fixed-size part of `N` bytes alone, or of the rest of the frame when
    /// it is shorter: the part's field reads then fail where the whole frame's reader would
    /// have, with the same error. The caller reads exactly `N` bytes from it (calling its field
    /// reader directly: passed as a closure, LLVM left it out of line).
    #[inline(always)]
    fn fixed<const N: usize>(&mut self) -> Reader<'a> {
        let rest = &self.bytes[self.pos..];
        let bytes = rest.get(..N).unwrap_or(rest);
        self.pos += bytes.len();
        Reader { bytes, pos: 0 }
    }

    #[inline]
    fn finish(&self) -> Result<(), DecodeError> {
        match self.bytes.len() - self.pos {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { extra }),
        }
    }
}

/// The common header: magic, version, then the kind byte, returned.
#[inline(always)]
fn decode_header(r: &mut Reader<'_>) -> Result<u8, DecodeError> {
    let magic = r.u16("magic")?;
    if magic != MAGIC {
        return Err(DecodeError::BadMagic { found: magic });
    }
    let version = r.u8("version")?;
    if version != WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion { found: version });
    }
    r.u8("kind")
}

fn bad(field: &'static str, value: impl Into<u64>) -> DecodeError {
    DecodeError::BadValue {
        field,
        value: value.into(),
    }
}

/// A whole descriptor is read from its fixed offsets (see [`put_descriptor`]) with one bounds
/// check; a truncated one field by field, so that its error names the field that ran out.
#[inline(always)]
fn decode_descriptor(r: &mut Reader<'_>) -> Result<Descriptor, DecodeError> {
    let Some(b) = r.bytes[r.pos..].first_chunk::<DESCRIPTOR_BYTES>() else {
        return descriptor_fields(r);
    };
    r.pos += DESCRIPTOR_BYTES;
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
    let len = u32::from_le_bytes([b[16], b[17], b[18], b[19]]);
    descriptor_checked(Rkey(word(0)), word(8), len, b[20])
}

/// Fails on the field that runs out when fewer than [`DESCRIPTOR_BYTES`] are left.
#[cold]
fn descriptor_fields(r: &mut Reader<'_>) -> Result<Descriptor, DecodeError> {
    let rkey = Rkey(r.u64("descriptor.rkey")?);
    let offset = r.u64("descriptor.offset")?;
    let len = r.u32("descriptor.len")?;
    let [kind, _, _, _] = r.array::<4>("descriptor.kind")?;
    descriptor_checked(rkey, offset, len, kind)
}

#[inline(always)]
fn descriptor_checked(
    rkey: Rkey,
    offset: u64,
    len: u32,
    kind: u8,
) -> Result<Descriptor, DecodeError> {
    if len == 0 || len as usize > ACCESS_BYTES_MAX {
        return Err(bad("descriptor.len", len));
    }
    let kind = AccessKind::from_code(kind).ok_or_else(|| bad("descriptor.kind", kind))?;
    Ok(Descriptor {
        rkey,
        offset,
        len,
        kind,
    })
}

/// Decodes `count` descriptors into `out`, replacing what it held, in place: returned by value
/// through a `Result` and then moved into the Invoke, each 104-byte array was copied twice more.
#[inline(always)]
fn decode_descriptors_into(
    r: &mut Reader<'_>,
    count: u8,
    field: &'static str,
    out: &mut Descriptors,
) -> Result<(), DecodeError> {
    if usize::from(count) > ACCESSES_PER_STEP_MAX {
        return Err(DecodeError::TooLong {
            field,
            len: usize::from(count),
            max: ACCESSES_PER_STEP_MAX,
        });
    }
    out.len = 0;
    for _ in 0..count {
        // Cannot fail: count was checked against the capacity above.
        let _ = out.push(decode_descriptor(r)?);
    }
    Ok(())
}

#[inline(always)]
fn decode_reply_addr(r: &mut Reader<'_>) -> Result<Option<ReplyAddr>, DecodeError> {
    let present = r.u8("reply_to.present")?;
    let _pad = r.u8("reply_to.pad")?;
    let port = r.u16("reply_to.port")?;
    let ip = r.array::<16>("reply_to.ip")?;
    match present {
        0 if port == 0 && ip == [0; 16] => Ok(None),
        1 => Ok(Some(ReplyAddr { ip, port })),
        other => Err(bad("reply_to.present", other)),
    }
}

/// An Invoke's fixed part (see [`invoke_fixed`]).
struct InvokeHead {
    tenant: TenantId,
    function: FunctionId,
    request_id: RequestId,
    flow: u32,
    flags: u16,
    counts: [u8; 4],
    args_len: usize,
    state_len: usize,
    reply_to: Option<ReplyAddr>,
}

#[inline(always)]
fn invoke_head(r: &mut Reader<'_>) -> Result<InvokeHead, DecodeError> {
    let tenant = TenantId(r.u32("tenant")?);
    let function = FunctionId(r.u32("function")?);
    let request_id = RequestId(r.u64("request_id")?);
    let flow = r.u32("flow")?;
    let flags = r.u16("flags")?;
    if flags & !InvokeFlags::KNOWN != 0 {
        return Err(bad("flags", flags));
    }
    Ok(InvokeHead {
        tenant,
        function,
        request_id,
        flow,
        flags,
        counts: r.array::<4>("counts")?,
        args_len: usize::from(r.u16("args_len")?),
        state_len: usize::from(r.u16("state_len")?),
        reply_to: decode_reply_addr(r)?,
    })
}

// Always inlined into `Frame::decode` (LLVM declined the hint).
#[inline(always)]
fn decode_invoke<'a>(r: &mut Reader<'a>) -> Result<Invoke<'a>, DecodeError> {
    let mut invoke = Invoke::empty();
    decode_invoke_into(r, &mut invoke)?;
    Ok(invoke)
}

/// Decodes an Invoke after its header into `invoke` (whatever it held), every field written in
/// place: built apart and moved, the two 104-byte arrays and then the whole
/// Invoke were copied on their way to the caller (≈ 110 instructions, then three `memcpy`s).
#[inline(always)]
fn decode_invoke_into<'a>(r: &mut Reader<'a>, invoke: &mut Invoke<'a>) -> Result<(), DecodeError> {
    let InvokeHead {
        tenant,
        function,
        request_id,
        flow,
        flags,
        counts: [step, attempt, n_desc, n_origin],
        args_len,
        state_len,
        reply_to,
    } = invoke_head(&mut r.fixed::<INVOKE_FIXED_BYTES>())?;
    invoke.args = r.bounded(args_len, ARGS_BYTES_MAX, "args")?;
    decode_descriptors_into(r, n_desc, "descriptors", &mut invoke.descriptors)?;
    decode_descriptors_into(r, n_origin, "origin", &mut invoke.origin)?;
    invoke.state = r.bounded(state_len, STATE_BYTES_MAX, "state")?;
    if usize::from(step) > crate::abi::STEPS_MAX {
        return Err(bad("step", step));
    }
    if (step == 0) != invoke.origin.is_empty() {
        // A continuation (step > 0) must carry step 0's accesses; a new message must not.
        return Err(bad("origin.count", n_origin));
    }
    invoke.tenant = tenant;
    invoke.function = function;
    invoke.request_id = request_id;
    invoke.flow = flow;
    invoke.flags = InvokeFlags(flags);
    invoke.step = step;
    invoke.attempt = attempt;
    invoke.reply_to = reply_to;
    Ok(())
}

// Always inlined: left out of line, the status went through memory as a `Result` (≈ 12
// instructions per reply besides its own).
#[inline(always)]
fn decode_status(status: u8, kind: u16, detail: u32) -> Result<Status, DecodeError> {
    match (status, kind) {
        (0, 0) if detail == 0 => Ok(Status::Ok),
        (1, 0) if detail == 0 => Ok(Status::Pushback),
        (2, _) => {
            let kind = ErrorKind::from_code(kind).ok_or_else(|| bad("error.kind", kind))?;
            Ok(Status::Error(ErrorCode { kind, detail }))
        }
        _ => Err(bad("status", status)),
    }
}

// Always inlined: left out of line, its `Result` was built in memory and copied again by
// `ClientFrame::decode` (≈ 30 instructions per reply).
#[inline(always)]
fn decode_reply<'a>(r: &mut Reader<'a>) -> Result<Reply<'a>, DecodeError> {
    let (
        request_id,
        [status, location, steps, attempts],
        kind,
        client_permille,
        detail,
        payload_len,
    ) = reply_head(r)?;
    let payload = r.bounded(payload_len, REPLY_PAYLOAD_BYTES_MAX, "payload")?;
    let location = Location::from_code(location).ok_or_else(|| bad("location", location))?;
    if client_permille > 1000 {
        return Err(bad("client_permille", client_permille));
    }
    let status = decode_status(status, kind, detail)?;
    Ok(Reply {
        request_id,
        status,
        location,
        steps,
        attempts,
        client_permille,
        payload,
    })
}

/// A Reply's fixed part: request id, status bytes, error kind, client share, error detail,
/// payload length.
type ReplyHead = (RequestId, [u8; 4], u16, u16, u32, usize);

/// A whole fixed part is read from its fixed offsets (see [`encode_reply`]) with one bounds
/// check (the fixed reader's checks, one per field, were ≈ 14 instructions per reply); a truncated
/// one field by field, so that its error names the field that ran out.
#[inline(always)]
fn reply_head(r: &mut Reader<'_>) -> Result<ReplyHead, DecodeError> {
    let Some(b) = r.bytes[r.pos..].first_chunk::<REPLY_FIXED_BYTES>() else {
        return reply_head_fields(&mut r.fixed::<REPLY_FIXED_BYTES>());
    };
    r.pos += REPLY_FIXED_BYTES;
    let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    Ok((
        RequestId(u64::from_le_bytes(b[0..8].try_into().unwrap_or_default())),
        [b[8], b[9], b[10], b[11]],
        u16_at(12),
        u16_at(14),
        u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
        usize::from(u16_at(20)),
    ))
}

/// Fails on the field that runs out when fewer than [`REPLY_FIXED_BYTES`] are left.
#[cold]
fn reply_head_fields(r: &mut Reader<'_>) -> Result<ReplyHead, DecodeError> {
    let request_id = RequestId(r.u64("request_id")?);
    let status = r.array::<4>("reply.status")?;
    let kind = r.u16("error.kind")?;
    let client_permille = r.u16("client_permille")?;
    let detail = r.u32("error.detail")?;
    let payload_len = usize::from(r.u16("payload_len")?);
    let _pad = r.u16("reply.pad")?;
    Ok((
        request_id,
        status,
        kind,
        client_permille,
        detail,
        payload_len,
    ))
}

fn decode_read(r: &mut Reader<'_>) -> Result<ReadRequest, DecodeError> {
    let tenant = TenantId(r.u32("tenant")?);
    let len = r.u32("read.len")?;
    let read_id = r.u64("read_id")?;
    let rkey = Rkey(r.u64("rkey")?);
    let offset = r.u64("offset")?;
    if len == 0 || len as usize > ACCESS_BYTES_MAX {
        return Err(bad("read.len", len));
    }
    Ok(ReadRequest {
        tenant,
        read_id,
        rkey,
        offset,
        len,
    })
}

fn decode_read_reply<'a>(r: &mut Reader<'a>) -> Result<ReadReply<'a>, DecodeError> {
    let read_id = r.u64("read_id")?;
    let denial = r.u32("denial")?;
    let len = r.u32("read_reply.len")? as usize;
    let data = r.bounded(len, ACCESS_BYTES_MAX, "read_reply.data")?;
    if denial != 0 && !data.is_empty() {
        return Err(bad("read_reply.len", len as u64));
    }
    Ok(ReadReply {
        read_id,
        denial,
        data,
    })
}

fn decode_sample(r: &mut Reader<'_>) -> Result<LoadSample, DecodeError> {
    let at = Nanos(r.u64("sample.at")?);
    let location = r.u8("sample.location")?;
    let _pad = r.u8("sample.pad")?;
    let utilisation_permille = r.u16("sample.utilisation")?;
    let queue_len = r.u32("sample.queue_len")?;
    let queue_delay_ns = r.u64("sample.queue_delay_ns")?;
    let completions = r.u64("sample.completions")?;
    let period_ns = r.u64("sample.period_ns")?;
    let location = match location {
        u8::MAX => None,
        code => Some(Location::from_code(code).ok_or_else(|| bad("sample.location", code))?),
    };
    Ok(LoadSample {
        at,
        location,
        queue_delay_ns,
        utilisation_permille,
        queue_len,
        completions,
        period_ns,
    })
}
