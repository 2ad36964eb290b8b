//! The applications actors run: native code over the actor's objects, answering the same wire
//! requests (`naam_engine::wire::Invoke`: function, argument block, descriptors) with the same
//! reply bytes as NAAM's eBPF functions, so clients, answer verification and analysis are shared.
//!
//! - [`mica`]: a MICA table (index, log and meta objects) — GET with MICA's native reader, SET
//!   with its single writer (the actor owns the table, as MICA's EREW partitions do);
//! - [`btree`]: a Cell-style B-tree (one nodes object) — lookups with the native reader;
//! - [`App::Echo`]: replies with its argument block (a minimal actor for scheduler tests).
//!
//! Capabilities: a request names its regions by rkey, as a NAAM client does. An actor accepts
//! only the rkeys it was bound to at installation (the regions its objects stand for) and denies
//! others with NAAM's unknown-rkey code, so a tenant cannot reach another tenant's actor's data
//! by naming it.

pub mod btree;
pub mod mica;

use naam_engine::Rkey;
use naam_engine::region::Denial;
use naam_engine::wire::{Descriptors, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::memory::ObjectTable;

pub use btree::BtreeApp;
pub use mica::MicaApp;

/// The operation a function id stands for, per actor (the embedder maps its function ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// MICA GET (the `mica_get` request).
    MicaGet,
    /// MICA SET (the host-native SET request).
    MicaSet,
    /// B-tree lookup (the `btree_lookup` request).
    BtreeLookup,
    /// Reply with the argument block.
    Echo,
}

/// An actor's application: its code and the ids of the objects it works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum App {
    /// Installed but not yet given its objects: every request fails.
    Unset,
    /// Replies with its argument block.
    Echo,
    /// A MICA table.
    Mica(MicaApp),
    /// A B-tree.
    Btree(BtreeApp),
}

/// Why a request failed inside an actor; becomes a NAAM error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// The actor does not implement this operation (or has no application yet).
    #[error("the actor does not serve {op:?}")]
    Unsupported {
        /// The operation.
        op: Op,
    },
    /// The request names a region the actor was not bound to.
    #[error("rkey {rkey:#018x} does not name this actor's objects")]
    UnknownRkey {
        /// The rkey presented.
        rkey: u64,
    },
    /// The application's own error code (the same codes as its eBPF or host-native twin).
    #[error("application error {code}")]
    Function {
        /// The code.
        code: u32,
    },
    /// A read kept seeing a writer at work (cannot happen while the actor owns its objects).
    #[error("retries exhausted")]
    Retries,
}

impl HandlerError {
    /// The NAAM error reply's kind and detail.
    pub fn to_error(self) -> (ErrorKind, u32) {
        match self {
            HandlerError::Unsupported { .. } => (ErrorKind::UnknownFunction, 0),
            HandlerError::UnknownRkey { rkey } => (
                ErrorKind::AccessDenied,
                Denial::UnknownRkey { rkey: Rkey(rkey) }.code(),
            ),
            HandlerError::Function { code } => (ErrorKind::FunctionError, code),
            HandlerError::Retries => (ErrorKind::RetriesExceeded, 0),
        }
    }
}

/// One request as the actor sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The operation.
    pub op: Op,
    /// The argument block.
    pub args: &'a [u8],
    /// The first step's access descriptors (their rkeys are checked like the arguments').
    pub descriptors: &'a Descriptors,
}

impl App {
    /// Runs `request` over `objects`, writing the reply payload into `reply` (cleared first).
    pub fn handle(
        &self,
        request: &Request<'_>,
        objects: &mut ObjectTable,
        reply: &mut Vec<u8>,
    ) -> Result<(), HandlerError> {
        reply.clear();
        match (self, request.op) {
            (App::Echo, Op::Echo) => {
                reply.extend_from_slice(request.args);
                Ok(())
            }
            (App::Mica(app), Op::MicaGet) => app.get(request, objects, reply),
            (App::Mica(app), Op::MicaSet) => app.set(request, objects, reply),
            (App::Btree(app), Op::BtreeLookup) => app.lookup(request, objects, reply),
            (_, op) => Err(HandlerError::Unsupported { op }),
        }
    }
}
