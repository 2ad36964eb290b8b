//! # naam-sim — the simulation testbed
//!
//! The production NAAM engine (client endpoints, server workers, the eSwitch rule table, the
//! controller and its policies, the VM executing every step over real bytes) driven on a
//! **virtual clock**: only time is modelled. A run is single-threaded and deterministic: the same
//! seed and cost profile give the same events in the same order, hence byte-identical results.
//!
//! - [`des`]: the discrete-event core — an event queue ordered by `(time_ns, seq)`.
//! - [`rng`]: the seeded random source (ChaCha8), whose seed is recorded with every result.
//! - [`cores`]: a pool of identical cores serving a FIFO queue (host cores, NIC cores); the
//!   queueing-theory tests check it against the closed forms of M/D/1 and M/M/c.
//! - [`queueing`]: textbook queues built from the two above, and their closed forms.
//!
//! Why a small own event queue rather than NeXosim: NeXosim is built around asynchronous models
//! exchanging messages through mailboxes on a multi-threaded executor; our models are the
//! engine's sans-IO state machines, which want one `&mut` owner and synchronous calls. A 1-ns
//! wheel over the next microseconds and a radix heap beyond (FIFO among events due at one time)
//! are a few hundred lines, have no scheduler non-determinism to rule out, and pop without
//! comparing events.

pub mod cores;
pub mod des;
pub mod point;
pub mod profile;
pub mod queueing;
pub mod rng;
