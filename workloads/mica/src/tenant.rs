//! Per-tenant GET programs: `bpf/mica_get_tenant.o` is `mica_get.c` compiled with a placeholder
//! salt that every reply ends with ([`TENANT_SALT_BYTES`] little-endian bytes after the status
//! and value). [`tenant_get_object`] writes a tenant's salt over each `lddw` immediate that
//! holds the placeholder, so N tenants register N distinct programs (distinct bytecode, each
//! verified, stored and, with the JIT, compiled apart), and [`split_salt`] lets a client check
//! that an answer came from its own tenant's program.
//!
//! Why a patched constant rather than N compiled objects: one committed object, checked against
//! its C source by `scripts/build-bpf.sh --check` like the others, yields any number of
//! variants; the patch changes data the program computes with (the reply's last bytes), not
//! its control flow, and a test runs every patched program and checks its salt.

use crate::get::{GET_FUNCTION_SECTION, GetReply, ReplyError};

/// The compiled per-tenant function: `bpf/mica_get_tenant.o`, built by `scripts/build-bpf.sh`
/// from `mica_get_tenant.c` (which includes `mica_get.c`). Its section is [`GET_FUNCTION_SECTION`].
pub const TENANT_GET_OBJECT: &[u8] = include_bytes!("../bpf/mica_get_tenant.o");
/// The section to load from [`TENANT_GET_OBJECT`].
pub const TENANT_GET_SECTION: &str = GET_FUNCTION_SECTION;
/// The salt the object is compiled with (`MICA_TENANT_SALT_PLACEHOLDER` in `mica_abi.h`).
pub const TENANT_SALT_PLACEHOLDER: u64 = 0x5a17_c0de_7e4a_11e5;
/// Bytes of the salt at the end of every reply (`MICA_TENANT_SALT_BYTES`).
pub const TENANT_SALT_BYTES: usize = 8;
/// `lddw` sites holding the placeholder in the committed object (one per inlined reply path of
/// the compiled object; a rebuild that changes this fails the patch loudly).
pub const TENANT_SALT_SITES: usize = 3;
/// Mixed into the tenant index to derive salts (an arbitrary constant: salts only need to differ
/// between tenants and from the placeholder).
const TENANT_SALT_KEY: u64 = 0x6e61_616d_7361_6c74;

/// eBPF `lddw` opcode (`BPF_LD | BPF_IMM | BPF_DW`).
const LDDW_OPCODE: u8 = 0x18;
/// Bytes of an `lddw` (two instruction slots).
const LDDW_BYTES: usize = 16;

/// Why a per-tenant object could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantError {
    /// The object holds the placeholder at another number of `lddw` sites than expected.
    #[error(
        "mica_get_tenant.o holds the salt placeholder at {found} lddw sites, expected {expected}: rebuild and update TENANT_SALT_SITES"
    )]
    Sites {
        /// Sites found.
        found: usize,
        /// [`TENANT_SALT_SITES`].
        expected: usize,
    },
    /// The salt asked for is the placeholder itself (it could not be told apart).
    #[error("salt {salt:#x} is the placeholder")]
    PlaceholderSalt {
        /// The salt.
        salt: u64,
    },
}

/// A reply that does not end with the expected tenant's salt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaltError {
    /// Too short to hold a salt.
    #[error("reply of {reply_bytes} bytes has no {TENANT_SALT_BYTES}-byte tenant salt")]
    Missing {
        /// The reply's length.
        reply_bytes: usize,
    },
    /// Another tenant's program answered.
    #[error(
        "answer from another tenant's program: salt {found:#018x}, this tenant's is {expected:#018x}"
    )]
    OtherTenant {
        /// The salt in the reply.
        found: u64,
        /// This tenant's salt.
        expected: u64,
    },
    /// The bytes before the salt are not a GET reply.
    #[error(transparent)]
    Reply(#[from] ReplyError),
}

/// Tenant `tenant_index`'s salt: SplitMix64's finaliser of the index mixed with a fixed key
/// (a bijection on u64, so distinct tenants get distinct salts; never the placeholder for the
/// 2^32 indices, checked by [`tenant_get_object`] anyway).
pub fn tenant_salt(tenant_index: u32) -> u64 {
    let mut z = TENANT_SALT_KEY.wrapping_add(u64::from(tenant_index));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Byte offsets of every `lddw` in `object` whose immediate is `imm` (any offset: the 64-bit
/// immediate is split over two slots, so a match elsewhere in the ELF is vanishingly unlikely,
/// and the site count is checked).
fn lddw_sites(object: &[u8], imm: u64) -> Vec<usize> {
    let (lo, hi) = (
        (imm as u32).to_le_bytes(),
        ((imm >> 32) as u32).to_le_bytes(),
    );
    object
        .windows(LDDW_BYTES)
        .enumerate()
        .filter(|(_, w)| {
            w[0] == LDDW_OPCODE && w[4..8] == lo && w[8..12] == [0; 4] && w[12..16] == hi
        })
        .map(|(at, _)| at)
        .collect()
}

/// [`TENANT_GET_OBJECT`] with `salt` in place of the placeholder: a distinct program per salt.
pub fn tenant_get_object(salt: u64) -> Result<Vec<u8>, VariantError> {
    if salt == TENANT_SALT_PLACEHOLDER {
        return Err(VariantError::PlaceholderSalt { salt });
    }
    let sites = lddw_sites(TENANT_GET_OBJECT, TENANT_SALT_PLACEHOLDER);
    if sites.len() != TENANT_SALT_SITES {
        return Err(VariantError::Sites {
            found: sites.len(),
            expected: TENANT_SALT_SITES,
        });
    }
    let mut object = TENANT_GET_OBJECT.to_vec();
    for at in sites {
        object[at + 4..at + 8].copy_from_slice(&(salt as u32).to_le_bytes());
        object[at + 12..at + 16].copy_from_slice(&((salt >> 32) as u32).to_le_bytes());
    }
    Ok(object)
}

/// Checks that `payload` ends with `expected_salt` and decodes the GET reply before it.
pub fn split_salt(payload: &[u8], expected_salt: u64) -> Result<GetReply<'_>, SaltError> {
    let reply_bytes = payload.len();
    let split = reply_bytes
        .checked_sub(TENANT_SALT_BYTES)
        .ok_or(SaltError::Missing { reply_bytes })?;
    let (reply, salt) = payload.split_at(split);
    let mut word = [0u8; TENANT_SALT_BYTES];
    word.copy_from_slice(salt);
    let found = u64::from_le_bytes(word);
    if found != expected_salt {
        return Err(SaltError::OtherTenant {
            found,
            expected: expected_salt,
        });
    }
    Ok(GetReply::decode(reply)?)
}

/// Appends `salt` to a GET reply, as the per-tenant program does (native implementations of a
/// tenant's program, e.g. the iPipe baseline's actors, answer alike).
pub fn append_salt(reply: &mut Vec<u8>, salt: u64) {
    reply.extend_from_slice(&salt.to_le_bytes());
}
