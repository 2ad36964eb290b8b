//! The NAAM helpers a function may call (`naam_read`, `naam_reply`, `naam_save_state`), and the
//! per-step context they write into.
//!
//! Helpers only record what the function asked for; the executor acts on it after the step
//! (checks and performs the reads, sends the reply, keeps the state). So a helper call is cheap,
//! cannot block, and cannot touch region memory.

use naam_vm::{ArgKind, DirectHelper, HelperError, Helpers, Memory, ScalarHelper, Signature};

use crate::abi::{
    ACCESS_BYTES_MAX, ACCESSES_PER_STEP_MAX, HELPER_READ, HELPER_REPLY, HELPER_SAVE_STATE,
    REPLY_BYTES_MAX, STATE_BYTES_MAX,
};
use crate::ids::{Descriptor, Rkey};
use crate::wire::Descriptors;

/// What one step of a function asked for. Reused across steps (no allocation).
#[derive(Debug)]
pub struct StepCtx {
    /// Reads declared with `naam_read`, for the next step.
    pub reads: Descriptors,
    /// Reply bytes appended with `naam_reply`.
    pub reply: Box<[u8; REPLY_BYTES_MAX]>,
    /// How many reply bytes are valid.
    pub reply_len: usize,
    /// State bytes to carry into the next step (`naam_save_state`), 0 if not called.
    pub saved_state_len: usize,
}

impl Default for StepCtx {
    fn default() -> Self {
        StepCtx {
            reads: Descriptors::new(),
            reply: Box::new([0; REPLY_BYTES_MAX]),
            reply_len: 0,
            saved_state_len: 0,
        }
    }
}

impl StepCtx {
    /// Forgets the previous step.
    pub fn reset(&mut self) {
        self.reads.clear();
        self.reply_len = 0;
        self.saved_state_len = 0;
    }

    /// The reply bytes so far.
    pub fn reply_bytes(&self) -> &[u8] {
        &self.reply[..self.reply_len]
    }
}

/// Value a helper returns to the function for a refused request (`< 0` as a C `long`).
const HELPER_REFUSED: u64 = u64::MAX; // -1

/// `naam_read(rkey, offset, len)`: declares a read for the next step; its index, or refused.
struct NaamRead;

impl ScalarHelper<StepCtx> for NaamRead {
    const NAME: &'static str = "naam_read";
    const ARG_COUNT: usize = 3;

    fn call(ctx: &mut StepCtx, args: [u64; 5]) -> u64 {
        let [rkey, offset, len, ..] = args;
        let len_ok = (1..=ACCESS_BYTES_MAX as u64).contains(&len);
        if !len_ok || ctx.reads.len() >= ACCESSES_PER_STEP_MAX {
            return HELPER_REFUSED;
        }
        let index = ctx.reads.len() as u64;
        // Cannot fail: capacity was checked above.
        let _ = ctx
            .reads
            .push(Descriptor::read(Rkey(rkey), offset, len as u32));
        index
    }
}

/// `naam_reply(src, len)`: appends `len` bytes at `src` to the reply; 0, or refused. A direct
/// helper (its pointer argument checked as any helper's, the JIT's call without the
/// trampoline): a MICA hit replies twice per GET.
struct NaamReply;

impl DirectHelper<StepCtx> for NaamReply {
    const NAME: &'static str = "naam_reply";
    const SIGNATURE: Signature = Signature {
        args: [
            ArgKind::ReadBytes { len_arg: 1 },
            ArgKind::Scalar,
            ArgKind::Unused,
            ArgKind::Unused,
            ArgKind::Unused,
        ],
    };

    fn call(ctx: &mut StepCtx, mem: &mut Memory<'_>, args: [u64; 5]) -> Result<u64, HelperError> {
        let [src, len, ..] = args;
        let end = ctx.reply_len as u64 + len;
        if end > REPLY_BYTES_MAX as u64 {
            return Ok(HELPER_REFUSED);
        }
        let bytes = mem.read(src, len)?;
        ctx.reply[ctx.reply_len..end as usize].copy_from_slice(bytes);
        ctx.reply_len = end as usize;
        Ok(0)
    }
}

/// `naam_save_state(len)`: carries the first `len` state bytes into the next step; 0, or
/// refused.
struct NaamSaveState;

impl ScalarHelper<StepCtx> for NaamSaveState {
    const NAME: &'static str = "naam_save_state";
    const ARG_COUNT: usize = 1;

    fn call(ctx: &mut StepCtx, args: [u64; 5]) -> u64 {
        let len = args[0];
        if len > STATE_BYTES_MAX as u64 {
            return HELPER_REFUSED;
        }
        ctx.saved_state_len = len as usize;
        0
    }
}

/// The helper registry every NAAM function is verified against and runs with. `naam_read` and
/// `naam_save_state` are scalar helpers, `naam_reply` a direct one (the JIT calls all three
/// without the trampoline).
pub fn naam_helpers() -> Helpers<StepCtx> {
    let mut helpers = Helpers::new();
    // The ids are distinct constants; registration of a fresh registry cannot fail.
    let registered = [
        helpers.register_scalar::<NaamRead>(HELPER_READ),
        helpers.register_direct::<NaamReply>(HELPER_REPLY),
        helpers.register_scalar::<NaamSaveState>(HELPER_SAVE_STATE),
    ];
    for result in registered {
        result.unwrap_or_else(|e| unreachable!("registering the NAAM helpers: {e}"));
    }
    helpers
}
