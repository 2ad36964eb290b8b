//! The NAAM lookup function (`bpf/btree_lookup.c`): arguments, first access, reply, errors.
//!
//! A lookup message is: function `btree_lookup`, args from [`LookupArgs::encode`], one initial
//! access [`LookupArgs::initial_access`] (the root node). Each step the runtime hands over one
//! node; the function checks its versions (torn → `NAAM_RETRY`) and fences (stale path →
//! `NAAM_RETRY`), then either replies (leaf) or declares the read of the child (inner node).
//! A lookup takes as many steps as the tree has levels. Layout: `bpf/btree_abi.h`.

use crate::layout::{NODE_BYTES_ALIGN, NODE_BYTES_MAX, NODE_BYTES_MIN};
use crate::reader::BTreeReader;

/// Symbol name of the function in `LOOKUP_OBJECT`.
pub const LOOKUP_FUNCTION_NAME: &str = "btree_lookup";
/// ELF section of the function (`NAAM_FUNCTION(btree_lookup)`).
pub const LOOKUP_FUNCTION_SECTION: &str = "naam/btree_lookup";
/// The compiled function: `bpf/btree_lookup.o`, built by `scripts/build-bpf.sh`.
pub const LOOKUP_OBJECT: &[u8] = include_bytes!("../bpf/btree_lookup.o");

/// Offset of the nodes region's rkey (u64).
pub const ARGS_NODES_RKEY: usize = 0;
/// Offset of the key (u64).
pub const ARGS_KEY: usize = 8;
/// Offset of the region's size in bytes (u64).
pub const ARGS_REGION_BYTES: usize = 16;
/// Offset of the node size (u32).
pub const ARGS_NODE_BYTES: usize = 24;
/// Offset of a reserved u32 (zero).
pub const ARGS_RESERVED: usize = 28;
/// Bytes of the argument block.
pub const ARGS_BYTES: usize = 32;

/// Bytes of a reply: u8 found, 7 zero bytes, u64 value.
pub const REPLY_BYTES: usize = 16;
/// Reply status: the key is absent.
pub const REPLY_NOT_FOUND: u8 = 0;
/// Reply status: the key was found.
pub const REPLY_FOUND: u8 = 1;

/// Error code: argument block malformed.
pub const ERR_ARGS: u64 = 16;
/// Error code: fetched node missing or of the wrong length.
pub const ERR_DATA: u64 = 17;
/// Error code: carried state missing or malformed.
pub const ERR_STATE: u64 = 18;
/// Error code: a stable node is inconsistent.
pub const ERR_CORRUPT: u64 = 19;
/// Error code: a NAAM helper refused a call.
pub const ERR_HELPER: u64 = 20;

const _: () = assert!(ARGS_BYTES <= 256, "NAAM_ARGS_BYTES_MAX");
const _: () = assert!(NODE_BYTES_MAX <= 4096, "NAAM_ACCESS_BYTES_MAX");

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

/// The arguments of one lookup message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupArgs {
    /// rkey of the `nodes` region.
    pub nodes_rkey: u64,
    /// The key to look up.
    pub key: u64,
    /// Bytes of the `nodes` region as registered (bounds child offsets).
    pub region_bytes: u64,
    /// Bytes per node.
    pub node_bytes: u32,
    /// The root's node offset (fixed once the tree is built).
    pub root_offset: u64,
}

/// Arguments that cannot describe a lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// The node size is out of range.
    #[error("node bytes = {node_bytes} is out of range")]
    NodeBytes {
        /// The rejected value.
        node_bytes: u32,
    },
    /// The region is smaller than two nodes or the root lies outside it.
    #[error("root offset {root_offset:#x} does not fit a region of {region_bytes} bytes")]
    Region {
        /// The root's offset.
        root_offset: u64,
        /// The region's size.
        region_bytes: u64,
    },
}

impl LookupArgs {
    /// Arguments for looking `key` up in the tree `reader` reads, registered as `nodes_rkey`.
    pub fn for_tree(reader: &BTreeReader<'_>, nodes_rkey: u64, key: u64) -> Self {
        LookupArgs {
            nodes_rkey,
            key,
            region_bytes: reader.region_bytes(),
            node_bytes: reader.node_bytes(),
            root_offset: reader.superblock().root_offset,
        }
    }

    /// The argument block.
    pub fn encode(&self) -> Result<[u8; ARGS_BYTES], ArgsError> {
        if !(NODE_BYTES_MIN..=NODE_BYTES_MAX).contains(&self.node_bytes) {
            return Err(ArgsError::NodeBytes {
                node_bytes: self.node_bytes,
            });
        }
        let node_bytes = u64::from(self.node_bytes);
        let root_fits = self.root_offset != 0
            && self.region_bytes >= 2 * node_bytes
            && self.root_offset <= self.region_bytes - node_bytes;
        if !root_fits {
            return Err(ArgsError::Region {
                root_offset: self.root_offset,
                region_bytes: self.region_bytes,
            });
        }
        let mut out = [0u8; ARGS_BYTES];
        out[ARGS_NODES_RKEY..][..8].copy_from_slice(&self.nodes_rkey.to_le_bytes());
        out[ARGS_KEY..][..8].copy_from_slice(&self.key.to_le_bytes());
        out[ARGS_REGION_BYTES..][..8].copy_from_slice(&self.region_bytes.to_le_bytes());
        out[ARGS_NODE_BYTES..][..4].copy_from_slice(&self.node_bytes.to_le_bytes());
        Ok(out)
    }

    /// The message's initial access: the root node.
    pub fn initial_access(&self) -> Access {
        Access {
            rkey: self.nodes_rkey,
            offset: self.root_offset,
            len: self.node_bytes,
        }
    }
}

/// A lookup argument block as a native server reads it (what `btree_lookup` reads in C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupRequest {
    /// rkey of the `nodes` region, as the client names it.
    pub nodes_rkey: u64,
    /// The key to look up.
    pub key: u64,
    /// Bytes of the `nodes` region as the client believes it registered.
    pub region_bytes: u64,
    /// Bytes per node.
    pub node_bytes: u32,
}

/// An argument block `btree_lookup` would refuse (`ERR_ARGS`), and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than [`ARGS_BYTES`].
    #[error("lookup argument block of {len} bytes, needs {ARGS_BYTES}")]
    Short {
        /// Bytes given.
        len: usize,
    },
    /// The node size is out of range or not a multiple of `NODE_BYTES_ALIGN`.
    #[error("lookup node bytes = {node_bytes} is out of range or unaligned")]
    NodeBytes {
        /// The rejected value.
        node_bytes: u32,
    },
    /// The region is smaller than two nodes.
    #[error("lookup region of {region_bytes} bytes is smaller than two nodes")]
    Region {
        /// The rejected value.
        region_bytes: u64,
    },
}

impl LookupRequest {
    /// Reads an argument block written by [`LookupArgs::encode`].
    pub fn parse(args: &[u8]) -> Result<Self, ParseError> {
        let Some(block) = args.get(..ARGS_BYTES) else {
            return Err(ParseError::Short { len: args.len() });
        };
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&block[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let mut word = [0u8; 4];
        word.copy_from_slice(&block[ARGS_NODE_BYTES..ARGS_NODE_BYTES + 4]);
        let node_bytes = u32::from_le_bytes(word);
        if !(NODE_BYTES_MIN..=NODE_BYTES_MAX).contains(&node_bytes)
            || !node_bytes.is_multiple_of(NODE_BYTES_ALIGN)
        {
            return Err(ParseError::NodeBytes { node_bytes });
        }
        let region_bytes = u64_at(ARGS_REGION_BYTES);
        if region_bytes < 2 * u64::from(node_bytes) {
            return Err(ParseError::Region { region_bytes });
        }
        Ok(LookupRequest {
            nodes_rkey: u64_at(ARGS_NODES_RKEY),
            key: u64_at(ARGS_KEY),
            region_bytes,
            node_bytes,
        })
    }
}

/// A decoded reply of `btree_lookup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupReply {
    /// The key's value.
    Found(u64),
    /// The key is absent.
    NotFound,
}

/// Reply bytes that `btree_lookup` cannot have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The reply is not `REPLY_BYTES` long.
    #[error("btree_lookup reply of {len} bytes, expected {REPLY_BYTES}")]
    Length {
        /// Bytes received.
        len: usize,
    },
    /// The status byte is unknown, a padding byte is set, or a miss carries a value.
    #[error("btree_lookup reply is malformed: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
}

impl LookupReply {
    /// The reply bytes `btree_lookup` produces: status, seven zero bytes, the value (zero when
    /// not found).
    pub fn encode(self) -> [u8; REPLY_BYTES] {
        let mut out = [0u8; REPLY_BYTES];
        if let LookupReply::Found(value) = self {
            out[0] = REPLY_FOUND;
            out[8..].copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Decodes the 16 reply bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReplyError> {
        let bytes: &[u8; REPLY_BYTES] = bytes
            .try_into()
            .map_err(|_| ReplyError::Length { len: bytes.len() })?;
        let [header, value] = reply_words(bytes);
        // One test of the seven padding bytes, not seven.
        if header >> 8 != 0 {
            return Err(ReplyError::Malformed {
                reason: "padding bytes are not zero",
            });
        }
        match header as u8 {
            REPLY_FOUND => Ok(LookupReply::Found(value)),
            REPLY_NOT_FOUND if value == 0 => Ok(LookupReply::NotFound),
            REPLY_NOT_FOUND => Err(ReplyError::Malformed {
                reason: "not-found reply carries a value",
            }),
            _ => Err(ReplyError::Malformed {
                reason: "unknown status",
            }),
        }
    }
}

/// The reply's two little-endian words: status and padding, then the value.
fn reply_words(bytes: &[u8; REPLY_BYTES]) -> [u64; 2] {
    let (header, value) = bytes.split_at(8);
    let word = |half: &[u8]| u64::from_le_bytes(half.try_into().unwrap_or([0xff; 8]));
    [word(header), word(value)]
}

/// The function-defined errors `btree_lookup` can end a message with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LookupFunctionError {
    /// The argument block is malformed (`ERR_ARGS`).
    #[error("btree_lookup: malformed argument block")]
    Args,
    /// The fetched node is missing or of the wrong length (`ERR_DATA`).
    #[error("btree_lookup: fetched data do not match the declared access")]
    Data,
    /// The carried state is missing or malformed (`ERR_STATE`).
    #[error("btree_lookup: carried state missing or malformed")]
    State,
    /// A stable node is inconsistent (`ERR_CORRUPT`).
    #[error("btree_lookup: corrupt node")]
    Corrupt,
    /// A NAAM helper refused a call (`ERR_HELPER`).
    #[error("btree_lookup: a NAAM helper refused a call")]
    Helper,
}

impl LookupFunctionError {
    /// The error for a function return code, `None` for codes `btree_lookup` does not define.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            ERR_ARGS => Some(LookupFunctionError::Args),
            ERR_DATA => Some(LookupFunctionError::Data),
            ERR_STATE => Some(LookupFunctionError::State),
            ERR_CORRUPT => Some(LookupFunctionError::Corrupt),
            ERR_HELPER => Some(LookupFunctionError::Helper),
            _ => None,
        }
    }
}
