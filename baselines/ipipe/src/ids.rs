//! Identifiers of the iPipe runtime.

use serde::{Deserialize, Serialize};

/// An actor: one offloaded application's unit of execution and state. The same id names the
/// actor on the NIC and on the host, so it survives migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActorId(pub u32);

/// A distributed memory object, named by id (never by pointer) and scoped by its actor: its
/// address changes when the actor migrates, its id does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(pub u32);

/// A core of the runtime's side (core 0 is the NIC's management core).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CoreId(pub u16);

/// Which side of the server a runtime runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The SmartNIC's cores: actors start here; the management core migrates them.
    Nic,
    /// The server host: migrated actors run here until they are pulled back.
    Host,
}

impl Side {
    /// The NAAM location a reply from this side reports (`Reply::location`).
    pub fn location(self) -> naam_engine::Location {
        match self {
            Side::Nic => naam_engine::Location::Nic,
            Side::Host => naam_engine::Location::Host,
        }
    }

    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Nic => Side::Host,
            Side::Host => Side::Nic,
        }
    }
}
