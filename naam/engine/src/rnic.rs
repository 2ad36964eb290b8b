//! The one-sided read server's logic (what an RNIC does for an RDMA READ): the region check every
//! location applies, then the bytes. The emulated RNIC thread of the host role, the virtual-clock
//! test world and the simulator answer reads through [`answer_read`]; only how the bytes are
//! copied is theirs.

use crate::ids::{Descriptor, RegionId};
use crate::region::{Denial, RegionTable};
use crate::wire::{ReadReply, ReadRequest};

/// Answers `read` into `data` (at least `read.len` bytes): denied with the check's
/// [`Denial::code`] if the tenant may not read those bytes, else filled by `copy(region, offset,
/// out)`, which returns `false` if it could not serve them (reported as out of bounds).
pub fn answer_read<'d>(
    read: &ReadRequest,
    table: &RegionTable,
    data: &'d mut [u8],
    copy: impl FnOnce(RegionId, u64, &mut [u8]) -> bool,
) -> ReadReply<'d> {
    let denied = |code| ReadReply {
        read_id: read.read_id,
        denial: code,
        data: &[],
    };
    let access = Descriptor::read(read.rkey, read.offset, read.len);
    let region = match table.check(read.tenant, &access) {
        Ok(region) => region,
        Err(denial) => return denied(denial.code()),
    };
    let len = read.len as usize;
    let Some(out) = data.get_mut(..len) else {
        return denied(out_of_bounds(region, read));
    };
    if !copy(region, read.offset, out) {
        return denied(out_of_bounds(region, read));
    }
    ReadReply {
        read_id: read.read_id,
        denial: 0,
        data: &data[..len],
    }
}

fn out_of_bounds(region: RegionId, read: &ReadRequest) -> u32 {
    Denial::OutOfBounds {
        region,
        offset: read.offset,
        len: read.len,
        region_len: 0,
    }
    .code()
}
