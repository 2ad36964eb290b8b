//! Where a message executes, and a value for each location.

use std::fmt;
use std::ops::{Index, IndexMut};

use serde::{Deserialize, Serialize};

/// Which eBPF execution backend a location loads its functions for (naam-vm's interpreter, the
/// reference, or its Cranelift JIT, which falls back to the interpreter when it is not built or
/// cannot compile a function).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmBackend {
    /// The interpreter.
    #[default]
    Interpreter,
    /// The JIT.
    Jit,
}

impl VmBackend {
    /// Every backend with its manifest name.
    pub const ALL: [(VmBackend, &'static str); 2] = [
        (VmBackend::Interpreter, "interpreter"),
        (VmBackend::Jit, "jit"),
    ];

    /// The manifest name.
    pub fn as_str(self) -> &'static str {
        match self {
            VmBackend::Interpreter => "interpreter",
            VmBackend::Jit => "jit",
        }
    }

    /// True for the default, which plans leave out of their serialised form (and so out of
    /// their configuration hash, which stays what it was before backends were chosen).
    pub fn is_interpreter(&self) -> bool {
        *self == VmBackend::Interpreter
    }
}

/// Where a message executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// Server host cores: plain loads from registered memory.
    Host,
    /// SmartNIC cores: DMA reads of host memory.
    Nic,
    /// The requesting client: one-sided remote reads.
    Client,
}

impl Location {
    /// Every location, in a fixed order (host, NIC, client).
    pub const ALL: [Location; 3] = [Location::Host, Location::Nic, Location::Client];

    /// The stable lower-case name used in results, logs and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Location::Host => "host",
            Location::Nic => "nic",
            Location::Client => "client",
        }
    }

    /// The `NAAM_LOC_*` value of `naam.h`, also the wire encoding.
    pub fn code(self) -> u8 {
        match self {
            Location::Host => 0,
            Location::Nic => 1,
            Location::Client => 2,
        }
    }

    /// Decodes a `NAAM_LOC_*` value.
    pub fn from_code(code: u8) -> Option<Location> {
        match code {
            0 => Some(Location::Host),
            1 => Some(Location::Nic),
            2 => Some(Location::Client),
            _ => None,
        }
    }

    /// Parses a stable name (`host`, `nic`, `client`).
    pub fn from_name(name: &str) -> Option<Location> {
        Location::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Position in [`Location::ALL`] (and in the `[T; 3]` form of a [`PerLocation`]).
    pub fn index(self) -> usize {
        usize::from(self.code())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One value per location, indexed by [`Location`]. Serialized as the array `[host, nic,
/// client]` (the form results files have always used).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "[T; 3]", into = "[T; 3]")]
#[serde(bound(
    serialize = "T: Clone + Serialize",
    deserialize = "T: Deserialize<'de>"
))]
pub struct PerLocation<T> {
    /// The host's value.
    pub host: T,
    /// The NIC's value.
    pub nic: T,
    /// The client's value.
    pub client: T,
}

impl<T> PerLocation<T> {
    /// The value `f(location)` at every location.
    pub fn from_fn(mut f: impl FnMut(Location) -> T) -> PerLocation<T> {
        PerLocation {
            host: f(Location::Host),
            nic: f(Location::Nic),
            client: f(Location::Client),
        }
    }

    /// `f` applied to every value.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerLocation<U> {
        PerLocation {
            host: f(self.host),
            nic: f(self.nic),
            client: f(self.client),
        }
    }

    /// Every location with its value, in [`Location::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Location, &T)> {
        Location::ALL.into_iter().map(move |l| (l, &self[l]))
    }
}

impl<T: Copy + std::iter::Sum<T>> PerLocation<T> {
    /// The sum over the locations.
    pub fn total(&self) -> T {
        [self.host, self.nic, self.client].into_iter().sum()
    }
}

impl<T> Index<Location> for PerLocation<T> {
    type Output = T;

    fn index(&self, location: Location) -> &T {
        match location {
            Location::Host => &self.host,
            Location::Nic => &self.nic,
            Location::Client => &self.client,
        }
    }
}

impl<T> IndexMut<Location> for PerLocation<T> {
    fn index_mut(&mut self, location: Location) -> &mut T {
        match location {
            Location::Host => &mut self.host,
            Location::Nic => &mut self.nic,
            Location::Client => &mut self.client,
        }
    }
}

impl<T> From<[T; 3]> for PerLocation<T> {
    fn from([host, nic, client]: [T; 3]) -> Self {
        PerLocation { host, nic, client }
    }
}

impl<T> From<PerLocation<T>> for [T; 3] {
    fn from(p: PerLocation<T>) -> Self {
        [p.host, p.nic, p.client]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_codes_and_indices_agree() {
        for (i, l) in Location::ALL.into_iter().enumerate() {
            assert_eq!(l.index(), i);
            assert_eq!(Location::from_code(l.code()), Some(l));
            assert_eq!(Location::from_name(l.name()), Some(l));
            assert_eq!(serde_json::to_string(&l).unwrap(), format!("\"{l}\""));
        }
        assert_eq!(Location::from_code(3), None);
    }

    #[test]
    fn per_location_values_serialize_as_host_nic_client_arrays() {
        let mut counts = PerLocation::<u64>::default();
        counts[Location::Nic] += 2;
        counts[Location::Client] = 5;
        assert_eq!(serde_json::to_string(&counts).unwrap(), "[0,2,5]");
        let back: PerLocation<u64> = serde_json::from_str("[0,2,5]").unwrap();
        assert_eq!(back, counts);
        assert_eq!(counts.total(), 7);
        assert_eq!(counts.map(|c| c * 2).nic, 4);
    }
}
