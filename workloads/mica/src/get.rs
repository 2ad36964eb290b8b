//! The NAAM GET function (`bpf/mica_get.c`): its argument block, its first access, its reply
//! and its error codes. The byte layout is `bpf/mica_abi.h`; the test `abi_header_matches_layout`
//! checks that the constants here agree with it.
//!
//! A GET message is: function `mica_get`, args from `GetArgs::encode`, one initial access
//! `GetArgs::initial_access` (the key's primary bucket). Then, step by step:
//!
//! | step | data the runtime fetched | the function |
//! |---|---|---|
//! | 0 | the primary bucket | notes its version (odd → `NAAM_RETRY`); looks for the key's tag |
//! | tag found | item (`item_read_bytes` at `offset & (log_bytes-1)` of `log`), log tail (8 B of `meta`), bucket header (8 B) | version changed → `NAAM_RETRY`; hash and key match → offset valid? hit : miss; else keep scanning |
//! | no tag, chained | the next extra bucket | keeps scanning |
//! | no tag, chain ends | bucket header (8 B) | version unchanged → miss, else `NAAM_RETRY` |
//!
//! A hit takes two steps, as MICA's two dependent reads; validation reads ride along with the
//! item read. **The runtime must perform a step's accesses in declaration order** (the tail and
//! the version must be read after the item) and each access in ascending address order: see
//! "Access order" in the crate docs for why, and where our data paths guarantee it.

use crate::config::MicaConfig;
use crate::hash::key_hash;
use crate::layout::{ITEM_HEADER_BYTES, KEY_BYTES_MAX, VALUE_BYTES_MAX, bucket_index, round_up8};

/// Symbol name of the function in `GET_OBJECT`.
pub const GET_FUNCTION_NAME: &str = "mica_get";
/// ELF section of the function (`NAAM_FUNCTION(mica_get)`).
pub const GET_FUNCTION_SECTION: &str = "naam/mica_get";
/// The compiled function: `bpf/mica_get.o`, built by `scripts/build-bpf.sh` from `mica_get.c`.
pub const GET_OBJECT: &[u8] = include_bytes!("../bpf/mica_get.o");

/// NAAM's argument-block bound (`NAAM_ARGS_BYTES_MAX` in `naam.h`).
pub const NAAM_ARGS_BYTES_MAX: usize = 256;
/// NAAM's single-access bound (`NAAM_ACCESS_BYTES_MAX` in `naam.h`).
pub const NAAM_ACCESS_BYTES_MAX: usize = 4096;
/// NAAM's reply bound (`NAAM_REPLY_BYTES_MAX` in `naam.h`).
pub const NAAM_REPLY_BYTES_MAX: usize = 1024;

/// Offset of the index region's rkey (u64).
pub const ARGS_INDEX_RKEY: usize = 0;
/// Offset of the log region's rkey (u64).
pub const ARGS_LOG_RKEY: usize = 8;
/// Offset of the meta region's rkey (u64).
pub const ARGS_META_RKEY: usize = 16;
/// Offset of the key hash (u64).
pub const ARGS_KEY_HASH: usize = 24;
/// Offset of the log size (u64).
pub const ARGS_LOG_BYTES: usize = 32;
/// Offset of the primary bucket count (u32).
pub const ARGS_BUCKETS: usize = 40;
/// Offset of the extra bucket count (u32).
pub const ARGS_EXTRA_BUCKETS: usize = 44;
/// Offset of the bytes read per candidate item (u16).
pub const ARGS_ITEM_READ_BYTES: usize = 48;
/// Offset of the slots per bucket (u8).
pub const ARGS_SLOTS: usize = 50;
/// Offset of the key length (u8).
pub const ARGS_KEY_LEN: usize = 51;
/// Offset of a reserved u32 (zero).
pub const ARGS_RESERVED: usize = 52;
/// Offset of the key bytes (zero-padded to 8).
pub const ARGS_KEY: usize = 56;
/// Bytes of the longest argument block.
pub const GET_ARGS_BYTES_MAX: usize = ARGS_KEY + KEY_BYTES_MAX;

/// Reply status byte of a miss.
pub const REPLY_MISS: u8 = 0;
/// Reply status byte of a hit (the value follows).
pub const REPLY_HIT: u8 = 1;

/// Error code: argument block malformed.
pub const ERR_ARGS: u64 = 16;
/// Error code: fetched accesses differ from those declared.
pub const ERR_DATA: u64 = 17;
/// Error code: carried state missing or malformed.
pub const ERR_STATE: u64 = 18;
/// Error code: a valid item is longer than `item_read_bytes`.
pub const ERR_ITEM_TRUNCATED: u64 = 19;
/// Error code: a NAAM helper refused a call.
pub const ERR_HELPER: u64 = 20;

const _: () = assert!(GET_ARGS_BYTES_MAX <= NAAM_ARGS_BYTES_MAX);
const _: () = assert!(
    VALUE_BYTES_MAX < NAAM_REPLY_BYTES_MAX,
    "status byte + value fit a reply"
);
const _: () = assert!(crate::layout::ITEM_BYTES_LIMIT <= NAAM_ACCESS_BYTES_MAX);

/// Region capabilities (rkeys) of one table, as the engine registered them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MicaRkeys {
    /// rkey of the `index` region.
    pub index: u64,
    /// rkey of the `log` region.
    pub log: u64,
    /// rkey of the `meta` region.
    pub meta: u64,
}

/// One access descriptor: `len` bytes at `offset` of the region named by `rkey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Region capability.
    pub rkey: u64,
    /// Byte offset in the region.
    pub offset: u64,
    /// Bytes to read.
    pub len: u32,
}

/// The arguments of one GET message.
#[derive(Debug, Clone, Copy)]
pub struct GetArgs<'k> {
    /// The table's configuration (bucket count, slots, log size).
    pub config: MicaConfig,
    /// The table's regions.
    pub rkeys: MicaRkeys,
    /// The key.
    pub key: &'k [u8],
    /// Bytes read per candidate item: at least the largest item the client expects, at most the
    /// table's `item_bytes_max` (reads past it would leave the log region).
    pub item_read_bytes: u32,
}

/// Arguments that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// The key is longer than `KEY_BYTES_MAX`.
    #[error("key of {key_bytes} bytes is longer than {max} bytes", max = KEY_BYTES_MAX)]
    KeyTooLong {
        /// Length of the rejected key.
        key_bytes: usize,
    },
    /// `item_read_bytes` is below a header plus the padded key, or above `item_bytes_max`.
    #[error("item_read_bytes = {item_read_bytes}: must be in {min}..={max} for this key and table")]
    ItemReadBytes {
        /// The rejected value.
        item_read_bytes: u32,
        /// Smallest acceptable value (header + padded key).
        min: u32,
        /// Largest acceptable value (the table's `item_bytes_max`).
        max: u32,
    },
}

impl<'k> GetArgs<'k> {
    /// Arguments that read `item_bytes_max` bytes per candidate (always enough).
    pub fn new(config: MicaConfig, rkeys: MicaRkeys, key: &'k [u8]) -> Self {
        GetArgs {
            config,
            rkeys,
            key,
            item_read_bytes: config.item_bytes_max,
        }
    }

    /// The key's hash (`hash::key_hash`).
    #[inline]
    pub fn key_hash(&self) -> u64 {
        key_hash(self.key)
    }

    /// Writes the argument block into `out` (cleared first) and returns its length.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<usize, ArgsError> {
        self.encode_hashed(self.key_hash(), out)
    }

    /// [`encode`](Self::encode) with the key's hash computed by the caller (`key_hash` must be
    /// [`key_hash`](Self::key_hash)): a client that also needs the initial access hashes once.
    #[inline]
    pub fn encode_hashed(&self, key_hash: u64, out: &mut Vec<u8>) -> Result<usize, ArgsError> {
        debug_assert_eq!(key_hash, self.key_hash());
        self.check()?;
        let len = ARGS_KEY + round_up8(self.key.len());
        out.clear();
        out.reserve(len);
        out.extend_from_slice(&self.fixed_part(key_hash));
        // The key in whole 8-byte words, the last one zero-padded: copies of a constant length
        // (a store each), not a `memcpy` and a `memset` call of the key's length per GET.
        let (words, tail) = self.key.as_chunks::<8>();
        for word in words {
            out.extend_from_slice(word);
        }
        if !tail.is_empty() {
            let mut last = [0u8; 8];
            last[..tail.len()].copy_from_slice(tail);
            out.extend_from_slice(&last);
        }
        debug_assert_eq!(out.len(), len);
        Ok(len)
    }

    /// Writes the argument block into `out` (cleared first) and returns the message's initial
    /// access: the whole of what a client builds per GET, with the key hashed once for both.
    #[inline]
    pub fn encode_with_access(&self, out: &mut Vec<u8>) -> Result<Access, ArgsError> {
        let key_hash = self.key_hash();
        self.encode_hashed(key_hash, out)?;
        Ok(self.initial_access_hashed(key_hash))
    }

    /// The key length and `item_read_bytes` checks of [`encode`](Self::encode).
    #[inline]
    fn check(&self) -> Result<(), ArgsError> {
        if self.key.len() > KEY_BYTES_MAX {
            return Err(ArgsError::KeyTooLong {
                key_bytes: self.key.len(),
            });
        }
        let min = (ITEM_HEADER_BYTES + round_up8(self.key.len())) as u32;
        let max = self.config.item_bytes_max;
        if !(min..=max).contains(&self.item_read_bytes) {
            let item_read_bytes = self.item_read_bytes;
            return Err(ArgsError::ItemReadBytes {
                item_read_bytes,
                min,
                max,
            });
        }
        Ok(())
    }

    /// The block's fixed part (everything before the key), built on the stack: its offsets are
    /// constants there, so the writes need no bounds checks (the client encodes one per GET).
    #[inline]
    fn fixed_part(&self, key_hash: u64) -> [u8; ARGS_KEY] {
        let mut fixed = [0u8; ARGS_KEY];
        fixed[ARGS_INDEX_RKEY..][..8].copy_from_slice(&self.rkeys.index.to_le_bytes());
        fixed[ARGS_LOG_RKEY..][..8].copy_from_slice(&self.rkeys.log.to_le_bytes());
        fixed[ARGS_META_RKEY..][..8].copy_from_slice(&self.rkeys.meta.to_le_bytes());
        fixed[ARGS_KEY_HASH..][..8].copy_from_slice(&key_hash.to_le_bytes());
        fixed[ARGS_LOG_BYTES..][..8].copy_from_slice(&self.config.log_bytes.to_le_bytes());
        fixed[ARGS_BUCKETS..][..4].copy_from_slice(&self.config.buckets.to_le_bytes());
        fixed[ARGS_EXTRA_BUCKETS..][..4].copy_from_slice(&self.config.extra_buckets.to_le_bytes());
        fixed[ARGS_ITEM_READ_BYTES..][..2]
            .copy_from_slice(&(self.item_read_bytes as u16).to_le_bytes());
        fixed[ARGS_SLOTS] = self.config.slots.count() as u8;
        fixed[ARGS_KEY_LEN] = self.key.len() as u8;
        fixed
    }

    /// The message's initial access: the key's primary bucket in the `index` region.
    pub fn initial_access(&self) -> Access {
        self.initial_access_hashed(self.key_hash())
    }

    /// [`initial_access`](Self::initial_access) with the key's hash computed by the caller
    /// (`key_hash` must be [`key_hash`](Self::key_hash)).
    #[inline]
    pub fn initial_access_hashed(&self, key_hash: u64) -> Access {
        debug_assert_eq!(key_hash, self.key_hash());
        let bucket = bucket_index(key_hash, self.config.buckets);
        let bucket_bytes = self.config.bucket_bytes();
        Access {
            rkey: self.rkeys.index,
            offset: u64::from(bucket) * bucket_bytes as u64,
            len: bucket_bytes as u32,
        }
    }
}

/// A GET argument block as a native server reads it (what `mica_get` reads in C): the table's
/// rkeys, the key and its hash. Validated like the C function's argument check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetRequest<'a> {
    /// The table's regions, as the client names them.
    pub rkeys: MicaRkeys,
    /// The key hash the client computed (`hash::key_hash` of `key`). Used as given, as
    /// `mica_get` does: a wrong hash finds the wrong bucket and misses.
    pub key_hash: u64,
    /// The key.
    pub key: &'a [u8],
}

/// An argument block `mica_get` would refuse (`ERR_ARGS`), and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than the fixed part, or than the fixed part plus the padded key.
    #[error("GET argument block of {len} bytes is too short (needs {need})")]
    Short {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The key is longer than `KEY_BYTES_MAX`.
    #[error("GET key of {key_bytes} bytes is longer than {max} bytes", max = KEY_BYTES_MAX)]
    KeyTooLong {
        /// The declared key length.
        key_bytes: usize,
    },
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl<'a> GetRequest<'a> {
    /// Reads an argument block written by [`GetArgs::encode`].
    pub fn parse(args: &'a [u8]) -> Result<Self, ParseError> {
        if args.len() < ARGS_KEY {
            return Err(ParseError::Short {
                len: args.len(),
                need: ARGS_KEY,
            });
        }
        let key_bytes = usize::from(args[ARGS_KEY_LEN]);
        if key_bytes > KEY_BYTES_MAX {
            return Err(ParseError::KeyTooLong { key_bytes });
        }
        let need = ARGS_KEY + round_up8(key_bytes);
        if args.len() < need {
            return Err(ParseError::Short {
                len: args.len(),
                need,
            });
        }
        let key = &args[ARGS_KEY..ARGS_KEY + key_bytes];
        let rkeys = MicaRkeys {
            index: le_u64(args, ARGS_INDEX_RKEY),
            log: le_u64(args, ARGS_LOG_RKEY),
            meta: le_u64(args, ARGS_META_RKEY),
        };
        Ok(GetRequest {
            rkeys,
            key_hash: le_u64(args, ARGS_KEY_HASH),
            key,
        })
    }
}

/// A decoded reply of `mica_get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetReply<'r> {
    /// The key was found; its value.
    Hit(&'r [u8]),
    /// The key was not found (absent, evicted, or overwritten by the log).
    Miss,
}

/// Reply bytes that `mica_get` cannot have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The reply is empty.
    #[error("empty mica_get reply")]
    Empty,
    /// The status byte is neither hit nor miss.
    #[error("mica_get reply has unknown status {status}")]
    UnknownStatus {
        /// The status byte.
        status: u8,
    },
    /// A miss carried payload bytes.
    #[error("mica_get miss reply carries {extra_bytes} unexpected bytes")]
    MissWithPayload {
        /// Bytes after the status.
        extra_bytes: usize,
    },
    /// A hit carried a value longer than `VALUE_BYTES_MAX`.
    #[error("mica_get hit reply carries {value_bytes} bytes of value, more than {max}", max = VALUE_BYTES_MAX)]
    ValueTooLong {
        /// Bytes of value.
        value_bytes: usize,
    },
}

impl<'r> GetReply<'r> {
    /// Writes the reply bytes `mica_get` produces (status, then the value on a hit) into `out`
    /// (cleared first).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        match self {
            GetReply::Hit(value) => {
                out.push(REPLY_HIT);
                out.extend_from_slice(value);
            }
            GetReply::Miss => out.push(REPLY_MISS),
        }
    }

    /// Decodes reply bytes: status, then the value on a hit.
    #[inline]
    pub fn decode(bytes: &'r [u8]) -> Result<Self, ReplyError> {
        let (&status, rest) = bytes.split_first().ok_or(ReplyError::Empty)?;
        match status {
            REPLY_MISS if rest.is_empty() => Ok(GetReply::Miss),
            REPLY_MISS => Err(ReplyError::MissWithPayload {
                extra_bytes: rest.len(),
            }),
            REPLY_HIT if rest.len() > VALUE_BYTES_MAX => Err(ReplyError::ValueTooLong {
                value_bytes: rest.len(),
            }),
            REPLY_HIT => Ok(GetReply::Hit(rest)),
            status => Err(ReplyError::UnknownStatus { status }),
        }
    }
}

/// The function-defined errors `mica_get` can end a message with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GetFunctionError {
    /// The argument block is malformed (`ERR_ARGS`).
    #[error("mica_get: malformed argument block")]
    Args,
    /// The runtime delivered accesses other than those declared (`ERR_DATA`).
    #[error("mica_get: fetched data do not match the declared accesses")]
    Data,
    /// The carried state is missing or malformed (`ERR_STATE`).
    #[error("mica_get: carried state missing or malformed")]
    State,
    /// A valid item is longer than `item_read_bytes` (`ERR_ITEM_TRUNCATED`): retry with more.
    #[error("mica_get: item longer than item_read_bytes")]
    ItemTruncated,
    /// A NAAM helper refused a call (`ERR_HELPER`).
    #[error("mica_get: a NAAM helper refused a call")]
    Helper,
}

impl GetFunctionError {
    /// The error for a function return code, `None` for codes `mica_get` does not define.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            ERR_ARGS => Some(GetFunctionError::Args),
            ERR_DATA => Some(GetFunctionError::Data),
            ERR_STATE => Some(GetFunctionError::State),
            ERR_ITEM_TRUNCATED => Some(GetFunctionError::ItemTruncated),
            ERR_HELPER => Some(GetFunctionError::Helper),
            _ => None,
        }
    }
}
