//! Helpers: numbered host functions a program calls with `call imm` (or `callx reg`), supplied by
//! the embedder with a typed signature the VM enforces before every call.

use core::fmt;

use crate::memory::{Memory, MemoryError};

/// Most helpers one registry may hold.
pub const HELPERS_MAX: usize = 256;
/// Arguments of a helper call: r1..=r5.
pub const HELPER_ARGS: usize = 5;

/// A helper: `ctx` is the embedder's per-invocation context, `mem` the invocation's memory (for
/// reading and writing through the program's pointer arguments), `args` are r1..=r5. The return
/// value goes to r0; an error ends the invocation with [`Trap::Helper`](crate::Trap::Helper).
pub type HelperFn<C> =
    fn(ctx: &mut C, mem: &mut Memory<'_>, args: [u64; HELPER_ARGS]) -> Result<u64, HelperError>;

/// A helper whose arguments are all scalars and that cannot fail (a refusal is a value it
/// returns): registered with [`Helpers::register_scalar`], it runs without the memory
/// check and the `Result` of a [`HelperFn`], and the JIT calls it without the trampoline
/// (directly, through the registry's direct table, when the registry a program runs with has
/// it at the position the verifier recorded; else through the trampoline, as any helper). Its
/// calls behave as those of the [`HelperFn`] `Ok(H::call(ctx, args))` with the
/// [`Signature`] of `ARG_COUNT` scalars: same r0, same traps, a panic re-raised by `Vm::run`
/// on both backends.
pub trait ScalarHelper<C>: 'static {
    /// Name, for errors and disassembly.
    const NAME: &'static str;
    /// How many of r1..=r5 it reads (its signature's first `ARG_COUNT` arguments are
    /// [`ArgKind::Scalar`], the others [`ArgKind::Unused`]); at most [`HELPER_ARGS`].
    const ARG_COUNT: usize;
    /// The helper: `ctx` is the embedder's per-invocation context, `args` are r1..=r5 (all
    /// passed, used or not); the value goes to r0.
    fn call(ctx: &mut C, args: [u64; HELPER_ARGS]) -> u64;
}

/// `H` as a [`HelperFn`] (what the interpreter and the trampoline call).
fn scalar_as_helper_fn<C, H: ScalarHelper<C>>(
    ctx: &mut C,
    _: &mut Memory<'_>,
    args: [u64; HELPER_ARGS],
) -> Result<u64, HelperError> {
    Ok(H::call(ctx, args))
}

/// A helper with pointer arguments whose JIT calls skip the trampoline: registered with
/// [`Helpers::register_direct`], it is stored as the ordinary [`HelperFn`] `H::call` with the
/// [`Signature`] `SIGNATURE` (the interpreter and the trampoline call it so), and, with `jit`,
/// also in the registry's direct table, as a [`ScalarHelper`] is: a `call imm` whose verifier
/// hint names its position calls an entry monomorphised for `H`, which checks the pointer
/// arguments exactly as every helper call does (the same bounds-only pass, the same first
/// refused argument and error on failure), then calls `H::call`. Same r0, same traps, a panic
/// re-raised by `Vm::run`, on both backends and through either JIT path.
pub trait DirectHelper<C>: 'static {
    /// Name, for errors and disassembly.
    const NAME: &'static str;
    /// What each argument register holds (checked at registration as any signature).
    const SIGNATURE: Signature;
    /// The helper: as a [`HelperFn`], called once its pointer arguments are granted.
    fn call(
        ctx: &mut C,
        mem: &mut Memory<'_>,
        args: [u64; HELPER_ARGS],
    ) -> Result<u64, HelperError>;
}

/// What one argument register holds. Pointer arguments are checked against the invocation's
/// memory before the helper runs, so a helper never sees a dangling pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ArgKind {
    /// Not used by the helper (its value is still passed).
    #[default]
    Unused,
    /// Any 64-bit value.
    Scalar,
    /// Points to `args[len_arg]` bytes that must be readable.
    ReadBytes {
        /// Index (0..5) of the argument holding the length; it must be a [`ArgKind::Scalar`].
        len_arg: u8,
    },
    /// Points to `args[len_arg]` bytes that must be writable.
    WriteBytes {
        /// Index (0..5) of the argument holding the length; it must be a [`ArgKind::Scalar`].
        len_arg: u8,
    },
}

/// The typed signature of a helper: one [`ArgKind`] per argument register r1..=r5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Signature {
    /// r1..=r5.
    pub args: [ArgKind; HELPER_ARGS],
}

impl Signature {
    /// Every argument is a scalar (no memory is checked).
    pub const SCALARS: Signature = Signature {
        args: [ArgKind::Scalar; HELPER_ARGS],
    };
}

/// One registered helper.
pub struct Helper<C> {
    /// Name, for errors and disassembly.
    pub name: &'static str,
    /// What each argument register holds.
    pub signature: Signature,
    /// The function.
    pub func: HelperFn<C>,
}

impl<C> Clone for Helper<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Helper<C> {}

impl<C> fmt::Debug for Helper<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Helper")
            .field("name", &self.name)
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

/// Why a helper failed; carried in [`Trap::Helper`](crate::Trap::Helper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    /// The helper touched memory the invocation does not grant.
    #[error("memory: {0}")]
    Memory(#[from] MemoryError),
    /// The helper refused its arguments or its work failed.
    #[error("{reason}")]
    Failed {
        /// What went wrong, for people.
        reason: &'static str,
    },
}

/// Why a helper could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Another helper already has this id.
    #[error("helper id {id} is already registered (as {existing:?})")]
    DuplicateId {
        /// The id.
        id: u32,
        /// Name of the helper registered first.
        existing: &'static str,
    },
    /// The registry is full.
    #[error("cannot register more than {max} helpers")]
    TooMany {
        /// [`HELPERS_MAX`].
        max: usize,
    },
    /// A pointer argument names a length argument that is out of range, itself, or not a scalar.
    #[error(
        "helper {name:?} (id {id}): argument {arg} names length argument {len_arg}, which is not a scalar argument"
    )]
    BadLengthArgument {
        /// Helper id.
        id: u32,
        /// Helper name.
        name: &'static str,
        /// Index of the pointer argument.
        arg: usize,
        /// The index it names.
        len_arg: u8,
    },
}

/// A registry of numbered helpers; `C` is the embedder's per-invocation context type.
pub struct Helpers<C> {
    /// Sorted by id.
    entries: Vec<(u32, Registered<C>)>,
    /// The JIT's direct table: at each position of `entries`, the direct entry of a scalar or
    /// direct helper, else nothing; [`HELPERS_MAX`] positions (always allocated, so an invocation
    /// hands its address to the code without a test).
    #[cfg(feature = "jit")]
    direct: Box<[crate::jit::DirectEntry; HELPERS_MAX]>,
}

/// A helper as the registry keeps it: with what its calls must check, worked out once at
/// registration instead of at every call.
pub(crate) struct Registered<C> {
    pub(crate) helper: Helper<C>,
    /// A scalar or direct helper's direct entry, which the JIT calls without the trampoline.
    #[cfg(feature = "jit")]
    direct: Option<crate::jit::DirectEntry>,
    /// The signature's pointer arguments, in argument order (the first `pointer_count`): a call
    /// checks these alone, without walking the scalar and unused arguments.
    pointers: [PointerArg; HELPER_ARGS],
    /// How many of `pointers` are the signature's (0 for all-scalar helpers, whose calls then
    /// skip the check).
    pointer_count: u8,
}

impl<C> Registered<C> {
    /// `helper`, with its pointer arguments listed from its (checked) signature.
    fn new(helper: Helper<C>) -> Self {
        let mut pointers = [PointerArg::default(); HELPER_ARGS];
        let mut pointer_count = 0;
        for (arg, kind) in helper.signature.args.iter().enumerate() {
            let (len_arg, write) = match *kind {
                ArgKind::ReadBytes { len_arg } => (len_arg, false),
                ArgKind::WriteBytes { len_arg } => (len_arg, true),
                ArgKind::Unused | ArgKind::Scalar => continue,
            };
            pointers[usize::from(pointer_count)] = PointerArg {
                arg: arg as u8,
                len_arg,
                write,
            };
            pointer_count += 1;
        }
        Registered {
            helper,
            #[cfg(feature = "jit")]
            direct: None,
            pointers,
            pointer_count,
        }
    }

    /// True when the signature has a pointer argument ([`check_args`] has work to do).
    #[inline(always)]
    pub(crate) fn checks_pointers(&self) -> bool {
        self.pointer_count != 0
    }
}

/// One pointer argument as calls check it, worked out from the signature at registration.
#[derive(Clone, Copy, Debug, Default)]
struct PointerArg {
    /// Index of the pointer argument (below [`HELPER_ARGS`]).
    arg: u8,
    /// Index of its length argument (below [`HELPER_ARGS`]: `check_signature` refused others).
    len_arg: u8,
    /// Whether the bytes must be writable (else readable).
    write: bool,
}

impl<C> Clone for Registered<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Registered<C> {}

impl<C> fmt::Debug for Helpers<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(id, r)| (id, r.helper.name)))
            .finish()
    }
}

impl<C> Default for Helpers<C> {
    fn default() -> Self {
        Helpers::new()
    }
}

impl<C> Clone for Helpers<C> {
    fn clone(&self) -> Self {
        Helpers {
            entries: self.entries.clone(),
            #[cfg(feature = "jit")]
            direct: self.direct.clone(),
        }
    }
}

impl<C> Helpers<C> {
    /// An empty registry.
    pub fn new() -> Self {
        Helpers {
            entries: Vec::new(),
            #[cfg(feature = "jit")]
            direct: Box::new([crate::jit::DirectEntry::NONE; HELPERS_MAX]),
        }
    }

    /// Adds `helper` under `id` after checking its signature.
    pub fn register(&mut self, id: u32, helper: Helper<C>) -> Result<(), RegisterError> {
        check_signature(id, &helper)?;
        self.insert(id, Registered::new(helper))
    }

    /// Adds the scalar helper `H` under `id` (see [`ScalarHelper`]).
    pub fn register_scalar<H: ScalarHelper<C>>(&mut self, id: u32) -> Result<(), RegisterError> {
        const {
            assert!(
                H::ARG_COUNT <= HELPER_ARGS,
                "a helper reads at most r1..=r5"
            )
        };
        let mut args = [ArgKind::Unused; HELPER_ARGS];
        args[..H::ARG_COUNT].fill(ArgKind::Scalar);
        let helper = Helper {
            name: H::NAME,
            signature: Signature { args },
            func: scalar_as_helper_fn::<C, H>,
        };
        #[allow(unused_mut)] // without the JIT there is no direct entry to add
        let mut registered = Registered::new(helper);
        #[cfg(feature = "jit")]
        {
            registered.direct = Some(crate::jit::DirectEntry {
                key: crate::jit::direct_key(id),
                func: Some(crate::jit::direct::<C, H>),
            });
        }
        self.insert(id, registered)
    }

    /// Adds the direct helper `H` under `id` after checking its signature (see
    /// [`DirectHelper`]).
    pub fn register_direct<H: DirectHelper<C>>(&mut self, id: u32) -> Result<(), RegisterError> {
        let helper = Helper {
            name: H::NAME,
            signature: H::SIGNATURE,
            func: H::call,
        };
        check_signature(id, &helper)?;
        #[allow(unused_mut)] // without the JIT there is no direct entry to add
        let mut registered = Registered::new(helper);
        #[cfg(feature = "jit")]
        {
            registered.direct = Some(crate::jit::DirectEntry {
                key: crate::jit::direct_key(id),
                func: Some(crate::jit::direct_checked::<C, H>),
            });
        }
        self.insert(id, registered)
    }

    /// Inserts `registered` under `id`, keeping `entries` sorted (and the direct table in step).
    fn insert(&mut self, id: u32, registered: Registered<C>) -> Result<(), RegisterError> {
        let at = match self.entries.binary_search_by_key(&id, |(k, _)| *k) {
            Ok(at) => {
                let existing = self.entries[at].1.helper.name;
                return Err(RegisterError::DuplicateId { id, existing });
            }
            Err(at) => at,
        };
        if self.entries.len() >= HELPERS_MAX {
            return Err(RegisterError::TooMany { max: HELPERS_MAX });
        }
        self.entries.insert(at, (id, registered));
        #[cfg(feature = "jit")]
        self.fill_direct_table();
        Ok(())
    }

    /// Rewrites the direct table from `entries` (positions move when an id is inserted).
    #[cfg(feature = "jit")]
    fn fill_direct_table(&mut self) {
        use crate::jit::DirectEntry;
        self.direct.fill(DirectEntry::NONE);
        for (entry, (_, registered)) in self.direct.iter_mut().zip(&self.entries) {
            *entry = registered.direct.unwrap_or(DirectEntry::NONE);
        }
    }

    /// The direct table the JIT's `call imm`s read: [`HELPERS_MAX`] positions, live as long as
    /// `self` is borrowed.
    #[cfg(feature = "jit")]
    #[inline(always)]
    pub(crate) fn direct_table(&self) -> *const crate::jit::DirectEntry {
        self.direct.as_ptr()
    }

    /// The helper registered under `id`.
    pub fn get(&self, id: u32) -> Option<&Helper<C>> {
        self.find(id).map(|r| &r.helper)
    }

    /// The registry's entry for `id` (for calls).
    pub(crate) fn find(&self, id: u32) -> Option<&Registered<C>> {
        self.index_of(id).map(|at| &self.entries[at].1)
    }

    /// Number of registered helpers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no helper is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Position of `id` in the registry (what the verifier records as a lookup hint).
    pub(crate) fn index_of(&self, id: u32) -> Option<usize> {
        self.entries.binary_search_by_key(&id, |(k, _)| *k).ok()
    }

    /// Looks `id` up, trying the load-time position `hint` first (O(1) when the program runs
    /// with the registry it was verified against).
    #[inline]
    pub(crate) fn lookup(&self, id: u32, hint: usize) -> Option<&Registered<C>> {
        match self.entries.get(hint) {
            Some((k, registered)) if *k == id => Some(registered),
            _ => self.find(id),
        }
    }
}

fn check_signature<C>(id: u32, helper: &Helper<C>) -> Result<(), RegisterError> {
    let args = &helper.signature.args;
    for (arg, kind) in args.iter().enumerate() {
        let len_arg = match kind {
            ArgKind::ReadBytes { len_arg } | ArgKind::WriteBytes { len_arg } => *len_arg,
            ArgKind::Unused | ArgKind::Scalar => continue,
        };
        let names_scalar = args.get(usize::from(len_arg)) == Some(&ArgKind::Scalar);
        if !names_scalar {
            return Err(RegisterError::BadLengthArgument {
                id,
                name: helper.name,
                arg,
                len_arg,
            });
        }
    }
    Ok(())
}

/// Checks every pointer argument of `registered` against `mem`; returns the first bad argument.
/// The pass that succeeds (every call that runs) visits the pointer arguments alone and only
/// compares bounds; the exact error of a refused argument is worked out afterwards, on the cold
/// path. Inlined into the out-of-line path of the helpers it concerns (calls of all-scalar
/// helpers, most of the engine's, skip it), so its values never live across a call.
#[inline(always)]
pub(crate) fn check_args<C>(
    registered: &Registered<C>,
    mem: &mut Memory<'_>,
    args: &[u64; HELPER_ARGS],
) -> Result<(), (u8, MemoryError)> {
    let count = usize::from(registered.pointer_count).min(HELPER_ARGS);
    let mut granted = true;
    for pointer in &registered.pointers[..count] {
        // Both indexes are below HELPER_ARGS by construction; the clamp keeps the indexing
        // free of a bounds check.
        let addr = args[usize::from(pointer.arg).min(HELPER_ARGS - 1)];
        let len = args[usize::from(pointer.len_arg).min(HELPER_ARGS - 1)];
        granted &= if pointer.write {
            mem.grants_write(addr, len)
        } else {
            mem.grants_read(addr, len)
        };
    }
    if granted {
        Ok(())
    } else {
        Err(first_refused_arg(&registered.helper.signature, mem, args))
    }
}

/// A direct helper's call from its JIT entry: `check_args` with the pointer arguments read off
/// `H::SIGNATURE` (a constant, so the pass is unrolled to them), then `H::call`; what the
/// trampoline's `call_checking_pointers` does for the same helper, failure for failure.
#[cfg(feature = "jit")]
#[inline(always)]
pub(crate) fn call_direct_checked<C, H: DirectHelper<C>>(
    ctx: &mut C,
    mem: &mut Memory<'_>,
    args: [u64; HELPER_ARGS],
) -> Result<u64, crate::interp::CallFailure> {
    use crate::interp::CallFailure;
    let signature = &H::SIGNATURE;
    let mut granted = true;
    for (arg, kind) in signature.args.iter().enumerate() {
        // `len_arg` is below HELPER_ARGS (`check_signature` refused others at registration);
        // the clamp keeps the indexing free of a bounds check, as in `check_args`.
        granted &= match *kind {
            ArgKind::ReadBytes { len_arg } => {
                let (addr, len) = (args[arg], args[usize::from(len_arg).min(HELPER_ARGS - 1)]);
                mem.grants_read(addr, len)
            }
            ArgKind::WriteBytes { len_arg } => {
                let (addr, len) = (args[arg], args[usize::from(len_arg).min(HELPER_ARGS - 1)]);
                mem.grants_write(addr, len)
            }
            ArgKind::Unused | ArgKind::Scalar => true,
        };
    }
    if !granted {
        let [r1, r2, r3, r4, r5] = args;
        return Err(refused_argument(signature, mem, r1, r2, r3, r4, r5));
    }
    H::call(ctx, mem, args).map_err(CallFailure::Helper)
}

/// `call_direct_checked`'s refusal (cold). The arguments as five scalars: an array (passed by
/// address) made a direct helper's JIT entry copy r1..=r5 to memory before every check.
#[cfg(feature = "jit")]
#[cold]
#[inline(never)]
fn refused_argument(
    signature: &Signature,
    mem: &mut Memory<'_>,
    r1: u64,
    r2: u64,
    r3: u64,
    r4: u64,
    r5: u64,
) -> crate::interp::CallFailure {
    let (arg, error) = first_refused_arg(signature, mem, &[r1, r2, r3, r4, r5]);
    crate::interp::CallFailure::Argument { arg, error }
}

/// The first argument `check_args` refused, with its error (cold).
#[cold]
#[inline(never)]
fn first_refused_arg(
    signature: &Signature,
    mem: &mut Memory<'_>,
    args: &[u64; HELPER_ARGS],
) -> (u8, MemoryError) {
    for (arg, kind) in signature.args.iter().enumerate() {
        let checked = match *kind {
            ArgKind::ReadBytes { len_arg } => mem
                .read(args[arg], args[usize::from(len_arg) % HELPER_ARGS])
                .map(|_| ()),
            ArgKind::WriteBytes { len_arg } => mem
                .write(args[arg], args[usize::from(len_arg) % HELPER_ARGS])
                .map(|_| ()),
            ArgKind::Unused | ArgKind::Scalar => Ok(()),
        };
        if let Err(error) = checked {
            return (arg as u8, error);
        }
    }
    unreachable!("the fast check refused an argument the exact check grants")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(
        _: &mut (),
        _: &mut Memory<'_>,
        args: [u64; HELPER_ARGS],
    ) -> Result<u64, HelperError> {
        Ok(args[0])
    }

    fn helper(signature: Signature) -> Helper<()> {
        Helper {
            name: "identity",
            signature,
            func: identity,
        }
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let mut helpers = Helpers::new();
        helpers.register(5, helper(Signature::SCALARS)).unwrap();
        assert_eq!(
            helpers.register(5, helper(Signature::SCALARS)),
            Err(RegisterError::DuplicateId {
                id: 5,
                existing: "identity"
            })
        );
    }

    #[test]
    fn pointer_arguments_must_name_a_scalar_length() {
        let mut args = [ArgKind::Unused; HELPER_ARGS];
        args[0] = ArgKind::ReadBytes { len_arg: 0 };
        let err = Helpers::new()
            .register(1, helper(Signature { args }))
            .unwrap_err();
        assert_eq!(
            err,
            RegisterError::BadLengthArgument {
                id: 1,
                name: "identity",
                arg: 0,
                len_arg: 0
            }
        );
        args[1] = ArgKind::Scalar;
        args[0] = ArgKind::WriteBytes { len_arg: 7 };
        assert!(matches!(
            Helpers::new().register(1, helper(Signature { args })),
            Err(RegisterError::BadLengthArgument { len_arg: 7, .. })
        ));
        args[0] = ArgKind::ReadBytes { len_arg: 1 };
        assert_eq!(
            Helpers::new().register(1, helper(Signature { args })),
            Ok(())
        );
    }

    #[test]
    fn only_signatures_with_a_pointer_argument_are_checked_at_calls() {
        let mut helpers = Helpers::new();
        let mut args = [ArgKind::Unused; HELPER_ARGS];
        args[1] = ArgKind::Scalar;
        helpers.register(1, helper(Signature::SCALARS)).unwrap();
        for (id, kind) in [
            (2, ArgKind::ReadBytes { len_arg: 1 }),
            (3, ArgKind::WriteBytes { len_arg: 1 }),
        ] {
            args[0] = kind;
            helpers.register(id, helper(Signature { args })).unwrap();
        }
        let checks = |id| helpers.find(id).map(|r| r.checks_pointers());
        assert_eq!(checks(1), Some(false));
        assert_eq!(checks(2), Some(true));
        assert_eq!(checks(3), Some(true));
    }

    struct Second;

    impl ScalarHelper<()> for Second {
        const NAME: &'static str = "second";
        const ARG_COUNT: usize = 2;

        fn call(_: &mut (), args: [u64; HELPER_ARGS]) -> u64 {
            args[1]
        }
    }

    #[test]
    fn a_scalar_helper_has_a_scalar_signature_and_runs_as_a_helper_fn() {
        let mut helpers = Helpers::new();
        helpers.register_scalar::<Second>(4).unwrap();
        let helper = helpers.get(4).unwrap();
        assert_eq!(helper.name, "second");
        use ArgKind::{Scalar, Unused};
        let args = [Scalar, Scalar, Unused, Unused, Unused];
        assert_eq!(helper.signature, Signature { args });
        assert!(!helpers.find(4).unwrap().checks_pointers());
        let result = (helper.func)(&mut (), &mut Memory::new(), [1, 2, 3, 4, 5]);
        assert_eq!(result, Ok(2));
        assert_eq!(
            helpers.register_scalar::<Second>(4),
            Err(RegisterError::DuplicateId {
                id: 4,
                existing: "second"
            })
        );
    }

    #[cfg(feature = "jit")]
    #[test]
    fn the_direct_table_follows_the_registry_positions() {
        use crate::jit::direct_key;
        let mut helpers = Helpers::new();
        // SAFETY: the table has HELPERS_MAX positions and lives while `helpers` does.
        let empty = unsafe { core::slice::from_raw_parts(helpers.direct_table(), HELPERS_MAX) };
        assert!(
            empty
                .iter()
                .all(|entry| entry.key == 0 && entry.func.is_none())
        );
        helpers.register_scalar::<Second>(9).unwrap();
        helpers.register(3, helper(Signature::SCALARS)).unwrap();
        helpers.register_scalar::<Second>(5).unwrap();
        // SAFETY: as above.
        let table = unsafe { core::slice::from_raw_parts(helpers.direct_table(), HELPERS_MAX) };
        let keys: Vec<u64> = table.iter().map(|entry| entry.key).collect();
        assert_eq!(keys[..3], [0, direct_key(5), direct_key(9)]);
        assert!(keys[3..].iter().all(|key| *key == 0));
        assert!(table[0].func.is_none() && table[1].func.is_some() && table[2].func.is_some());
        assert_ne!(direct_key(0), 0);
        assert_eq!(direct_key(u32::MAX), 1 << 32);
    }

    #[test]
    fn lookup_uses_the_hint_and_falls_back_to_search() {
        let mut helpers = Helpers::new();
        for id in [9, 3, 7] {
            helpers.register(id, helper(Signature::SCALARS)).unwrap();
        }
        assert_eq!(helpers.index_of(7), Some(1));
        assert!(helpers.lookup(7, 1).is_some());
        assert!(helpers.lookup(7, 0).is_some());
        assert!(helpers.lookup(8, 1).is_none());
        assert!(helpers.lookup(8, 99).is_none());
    }
}
