//! The memory one invocation may touch: regions the embedder grants, plus the VM's own stack and
//! the program's data sections, all in one 64-bit VM address space.
//!
//! Slot `s` occupies VM addresses `(s + 1) << 32 .. (s + 1) << 32 + len`. An address decodes to
//! `(slot, offset)` with a shift and a mask; address 0 (and everything below `1 << 32`) is never
//! valid, and no host pointer is ever visible to a program. Slots 0–2 belong to the VM
//! ([`STACK_SLOT`], [`CONSTANTS_SLOT`], [`GLOBALS_SLOT`]) and are filled only while
//! [`Vm::run`](crate::Vm::run) executes; the embedder's regions take slots 3 onwards in the order
//! they are mapped. An embedder that builds the regions per invocation can map them into
//! [`Regions`] instead, whose VM slots stay unset until [`Vm::run_regions`](crate::Vm::run_regions)
//! installs them (a [`Memory`]'s are empty from the start, which costs the stores).

use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crate::MEMORY_REGIONS_MAX;

/// Slot of the VM stack (read-write, VM address `0x1_0000_0000`).
pub const STACK_SLOT: usize = 0;
/// Slot of the program's read-only data (`.rodata*` of an ELF object; VM address `0x2_0000_0000`).
pub const CONSTANTS_SLOT: usize = 1;
/// Slot of the program's writable globals (`.data`, `.bss`; VM address `0x3_0000_0000`), reset
/// from the program's image at the start of every invocation.
pub const GLOBALS_SLOT: usize = 2;
/// Slots reserved for the VM before the embedder's regions.
pub const VM_SLOTS: usize = 3;
/// All slots: the VM's and [`MEMORY_REGIONS_MAX`] embedder regions.
pub const SLOTS: usize = VM_SLOTS + MEMORY_REGIONS_MAX;
/// Largest region one slot can hold: offsets are the low 32 bits of an address.
pub const REGION_BYTES_MAX: u64 = u32::MAX as u64;

const SLOT_SHIFT: u32 = 32;
const OFFSET_MASK: u64 = (1 << SLOT_SHIFT) - 1;

/// VM address of byte 0 of slot `slot`.
pub const fn slot_base(slot: usize) -> u64 {
    ((slot as u64) + 1) << SLOT_SHIFT
}

/// Why the embedder could not map a region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// Every embedder slot is taken.
    #[error("cannot map more than {max} regions in one invocation")]
    TooManyRegions {
        /// [`MEMORY_REGIONS_MAX`].
        max: usize,
    },
    /// The region is longer than one slot can address.
    #[error("region of {len} bytes exceeds the {max}-byte limit of one slot")]
    TooLarge {
        /// Length of the rejected region in bytes.
        len: u64,
        /// [`REGION_BYTES_MAX`].
        max: u64,
    },
}

/// Why an access through [`Memory::read`] / [`Memory::write`] (or by a program) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// The bytes `addr .. addr + len` are not all inside one mapped region.
    #[error("{len} bytes at {addr:#x} are outside every mapped region")]
    OutOfBounds {
        /// First VM address of the access.
        addr: u64,
        /// Bytes accessed.
        len: u64,
    },
    /// The bytes are mapped, but only for reading.
    #[error("{len} bytes at {addr:#x} are mapped read-only")]
    ReadOnly {
        /// First VM address of the access.
        addr: u64,
        /// Bytes accessed.
        len: u64,
    },
}

/// One slot: a host range, how much of it may be read and how much written (0 for read-only).
/// `repr(C)`: JIT-compiled code reads it by field offset.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    pub ptr: *mut u8,
    pub read_len: u64,
    pub write_len: u64,
}

impl Region {
    const EMPTY: Region = Region {
        ptr: core::ptr::null_mut(),
        read_len: 0,
        write_len: 0,
    };

    /// `bytes`, readable.
    #[inline(always)]
    fn read(bytes: &[u8]) -> Result<Region, MapError> {
        let len = region_len(bytes.len())?;
        Ok(Region {
            ptr: bytes.as_ptr().cast_mut(),
            read_len: len,
            write_len: 0,
        })
    }

    /// `bytes`, readable and writable.
    #[inline(always)]
    fn write(bytes: &mut [u8]) -> Result<Region, MapError> {
        let len = region_len(bytes.len())?;
        Ok(Region {
            ptr: bytes.as_mut_ptr(),
            read_len: len,
            write_len: len,
        })
    }
}

/// The regions one invocation may touch. Built by the embedder per invocation (no allocation,
/// and only the VM's slots written: the embedder's are written as they are mapped), passed to
/// [`Vm::run`](crate::Vm::run) and to every helper.
///
/// `repr(C)`: JIT-compiled code reads `live` right after the slot table ([`LIVE_OFFSET`]).
#[repr(C)]
#[derive(Debug)]
pub struct Memory<'a> {
    /// The VM's slots (always initialised, except in a [`Regions`] before its run), then the
    /// embedder's, initialised below `live`.
    slots: [MaybeUninit<Region>; SLOTS],
    /// Initialised slots: [`VM_SLOTS`] plus the embedder regions mapped so far.
    live: u64,
    /// The first byte of entry `s` is set by a write to slot `s` through a register (either
    /// backend) or by a helper ([`Memory::write`]); only the stack's is read, by `Vm::run`,
    /// which clears it at the start of an invocation and scrubs whole frames afterwards when
    /// it is set. Entries as wide as the slot table's, so the JIT's write miss marks one at a
    /// fixed offset from the table entry it already addresses (one store; the rest stays
    /// uninitialised). A `Memory` no `Vm::run` has set up has the stack's set (a `Regions`' has it
    /// unset until its run installs the VM's slots, which writes it), so one a helper
    /// swapped in mid-run (or a nested run's end) never hides a stack write from the scrub.
    written: [[MaybeUninit<u8>; size_of::<Region>()]; SLOTS],
    _borrows: PhantomData<&'a mut [u8]>,
}

/// Byte offset of `Memory::live` from the start of the slot table.
#[cfg(feature = "jit")]
pub(crate) const LIVE_OFFSET: usize = core::mem::offset_of!(Memory<'static>, live);
/// Byte offset of `Memory::written` from the start of the slot table (and of slot `s`'s mark
/// from slot `s`'s table entry).
#[cfg(feature = "jit")]
pub(crate) const WRITTEN_OFFSET: usize = core::mem::offset_of!(Memory<'static>, written);
const _: () = assert!(
    core::mem::offset_of!(Memory<'static>, live) == SLOTS * size_of::<Region>(),
    "`live` follows the slot table"
);

// SAFETY: a `Memory` only holds pointers derived from `&'a [u8]` / `&'a mut [u8]` (both `Send`),
// and the VM's own slots are filled and cleared within one `Vm::run` call on one thread.
unsafe impl Send for Memory<'_> {}

impl Default for Memory<'_> {
    fn default() -> Self {
        Memory::new()
    }
}

impl<'a> Memory<'a> {
    /// No regions mapped.
    pub fn new() -> Self {
        let mut slots = [const { MaybeUninit::uninit() }; SLOTS];
        for entry in &mut slots[..VM_SLOTS] {
            entry.write(Region::EMPTY);
        }
        Memory::with_slots(slots)
    }

    /// No regions mapped, and the VM's slots unset: only for [`Regions`], which no code can
    /// read before `Vm::run_regions` installs them.
    #[inline(always)]
    fn without_vm_slots() -> Self {
        // Nothing written in the table: a write there (the first embedder slot emptied, so the
        // JIT's entry could read it without testing `live`) made the compiler build the table
        // aside and copy all of it in. Nor the stack mark: `install_vm_slots` writes it with
        // the VM's slots, before anything reads it (the compiler kept both stores).
        Memory {
            slots: [const { MaybeUninit::uninit() }; SLOTS],
            live: VM_SLOTS as u64,
            written: [[const { MaybeUninit::uninit() }; size_of::<Region>()]; SLOTS],
            _borrows: PhantomData,
        }
    }

    /// A `Memory` over the slot table `slots` (the VM's slots written), no region mapped.
    #[inline(always)]
    fn with_slots(slots: [MaybeUninit<Region>; SLOTS]) -> Self {
        let mut written = [[const { MaybeUninit::uninit() }; size_of::<Region>()]; SLOTS];
        written[STACK_SLOT][0].write(1);
        Memory {
            slots,
            live: VM_SLOTS as u64,
            written,
            _borrows: PhantomData,
        }
    }

    /// Grants read access to `bytes`; returns the VM address of `bytes[0]`.
    // Inlined across crates (an embedder's per-invocation set-up), as it was before it
    // shared `Region::read` / `Region::write` with `Regions`.
    #[inline]
    pub fn map_read(&mut self, bytes: &'a [u8]) -> Result<u64, MapError> {
        self.push(Region::read(bytes)?)
    }

    /// Grants read and write access to `bytes`; returns the VM address of `bytes[0]`.
    // Inlined across crates (an embedder's per-invocation set-up), as it was before it
    // shared `Region::read` / `Region::write` with `Regions`.
    #[inline]
    pub fn map_write(&mut self, bytes: &'a mut [u8]) -> Result<u64, MapError> {
        self.push(Region::write(bytes)?)
    }

    /// Number of embedder regions mapped.
    pub fn regions_mapped(&self) -> usize {
        self.live as usize - VM_SLOTS
    }

    /// Slot `slot`'s region, if that slot is initialised (mapped, or one of the VM's).
    #[inline(always)]
    pub(crate) fn slot(&self, slot: u64) -> Option<&Region> {
        if slot < self.live {
            // SAFETY: `live <= SLOTS`, and every slot below `live` has been written.
            Some(unsafe { self.slots.get_unchecked(slot as usize).assume_init_ref() })
        } else {
            None
        }
    }

    /// True when the `len` bytes at VM address `addr` are all readable: `read`'s check without
    /// building the slice or the error (a helper call's argument check).
    #[inline(always)]
    pub(crate) fn grants_read(&self, addr: u64, len: u64) -> bool {
        self.grants(addr, len, |r| r.read_len)
    }

    /// True when the `len` bytes at VM address `addr` are all writable (as `grants_read`).
    #[inline(always)]
    pub(crate) fn grants_write(&self, addr: u64, len: u64) -> bool {
        self.grants(addr, len, |r| r.write_len)
    }

    #[inline(always)]
    fn grants(&self, addr: u64, len: u64, limit: impl Fn(&Region) -> u64) -> bool {
        let (slot, offset) = split(addr);
        match self.slot(slot) {
            // An empty slot (null) maps not even zero bytes, as in `locate`.
            Some(region) => {
                !region.ptr.is_null()
                    && offset
                        .checked_add(len)
                        .is_some_and(|end| end <= limit(region))
            }
            None => false,
        }
    }

    /// The `len` bytes at VM address `addr`, if they are all readable (for helpers).
    #[inline]
    pub fn read(&self, addr: u64, len: u64) -> Result<&[u8], MemoryError> {
        let (region, offset) = self.locate(addr, len, |r| r.read_len)?;
        let len = usize::try_from(len).map_err(|_| MemoryError::OutOfBounds { addr, len })?;
        // SAFETY: `locate` proved `offset + len <= read_len`, the length of the live host
        // range the region was created from; `&self` keeps writers away for the borrow.
        Ok(unsafe { core::slice::from_raw_parts(region.ptr.add(offset), len) })
    }

    /// The `len` bytes at VM address `addr`, if they are all writable (for helpers).
    #[inline]
    pub fn write(&mut self, addr: u64, len: u64) -> Result<&mut [u8], MemoryError> {
        let (region, offset) =
            self.locate(addr, len, |r| r.write_len).map_err(|error| {
                match self.locate(addr, len, |r| r.read_len) {
                    Ok(_) => MemoryError::ReadOnly { addr, len },
                    Err(_) => error,
                }
            })?;
        let len = usize::try_from(len).map_err(|_| MemoryError::OutOfBounds { addr, len })?;
        // A helper may write any stack byte it is handed: the scrub then clears whole frames.
        self.note_write(split(addr).0);
        // SAFETY: as in `read`, and the region came from a `&'a mut [u8]` (or the VM's stack or
        // globals), borrowed exclusively through `&mut self`.
        Ok(unsafe { core::slice::from_raw_parts_mut(region.ptr.add(offset), len) })
    }

    /// Classifies a failed access of `len` bytes at `addr` that the interpreter's fast check
    /// refused (cold path).
    pub(crate) fn classify_write_fault(&self, addr: u64, len: u64) -> MemoryError {
        match self.locate(addr, len, |r| r.read_len) {
            Ok(_) => MemoryError::ReadOnly { addr, len },
            Err(error) => error,
        }
    }

    /// The slot table of the `Memory` at `mem`, for native code that reads (and, for the stack
    /// slot, writes) it while the invocation runs: `mem` itself, as the table is the first
    /// field, so a helper's entry can read the `Memory` back from it (same provenance, no
    /// intermediate borrow).
    #[cfg(feature = "jit")]
    #[inline(always)]
    pub(crate) fn slots_of(mem: *mut Memory<'_>) -> *mut Region {
        const { assert!(core::mem::offset_of!(Memory<'static>, slots) == 0) };
        mem.cast()
    }

    /// Installs the VM's own slots (stack, constants, globals) and starts an invocation with no
    /// write to the stack through a register or a helper seen.
    #[inline(always)]
    pub(crate) fn install_vm_slots(&mut self, vm_slots: [Region; VM_SLOTS]) {
        for (entry, region) in self.slots[..VM_SLOTS].iter_mut().zip(vm_slots) {
            entry.write(region);
        }
        self.written[STACK_SLOT][0].write(0);
    }

    /// (Re)installs the stack slot: the `len` bytes below `frame_top` (the host address r10
    /// stands for), i.e. the frames visible at the current call depth. The pointer is set again
    /// every time, so a slot emptied meanwhile (a helper that ran another VM over this `Memory`)
    /// never pairs a null pointer with a length.
    #[inline(always)]
    pub(crate) fn set_stack(&mut self, frame_top: *mut u8, len: u64) {
        let base = frame_top.wrapping_sub(len as usize);
        self.slots[STACK_SLOT].write(Region {
            ptr: base,
            read_len: len,
            write_len: len,
        });
    }

    /// Empties the VM's slots so no pointer to VM-owned memory outlives `Vm::run`, and marks
    /// the stack written: an outer run over this `Memory` (a helper's nested run ends here)
    /// cannot tell what happened to its stack meanwhile.
    pub(crate) fn clear_vm_slots(&mut self) {
        for entry in &mut self.slots[..VM_SLOTS] {
            entry.write(Region::EMPTY);
        }
        self.written[STACK_SLOT][0].write(1);
    }

    /// Whether the stack slot was written through a register or by a helper (see `written`).
    #[inline(always)]
    pub(crate) fn stack_written(&self) -> bool {
        // SAFETY: every `Memory` code can read has this byte initialised: `Memory::new` writes
        // it, and a `Regions`' is written by `install_vm_slots` before its run reads anything.
        unsafe { self.written[STACK_SLOT][0].assume_init() != 0 }
    }

    /// `split` for a store through a register, noting the write (a store that then faults
    /// only widens the scrub of an invocation that traps).
    #[inline(always)]
    pub(crate) fn split_for_write(&mut self, addr: u64) -> (u64, u64) {
        let (slot, offset) = split(addr);
        self.note_write(slot);
        (slot, offset)
    }

    /// Records a write through a register or by a helper to slot `slot` (in the table).
    #[inline(always)]
    pub(crate) fn note_write(&mut self, slot: u64) {
        if let Some(entry) = self.written.get_mut(slot as usize) {
            entry[0].write(1);
        }
    }

    fn push(&mut self, region: Region) -> Result<u64, MapError> {
        let slot = self.live as usize;
        let Some(entry) = self.slots.get_mut(slot) else {
            return Err(MapError::TooManyRegions {
                max: MEMORY_REGIONS_MAX,
            });
        };
        entry.write(region);
        self.live += 1;
        Ok(slot_base(slot))
    }

    fn locate(
        &self,
        addr: u64,
        len: u64,
        limit: impl Fn(&Region) -> u64,
    ) -> Result<(Region, usize), MemoryError> {
        let fault = MemoryError::OutOfBounds { addr, len };
        let slot = (addr >> SLOT_SHIFT).wrapping_sub(1);
        let offset = addr & OFFSET_MASK;
        let region = self.slot(slot).ok_or(fault)?;
        if region.ptr.is_null() {
            return Err(fault); // an empty slot: not even zero bytes are mapped there
        }
        let end = offset.checked_add(len).ok_or(fault)?;
        if end > limit(region) {
            return Err(fault);
        }
        Ok((*region, offset as usize))
    }
}

/// The embedder's regions for one invocation, mapped as into a [`Memory`], but with the VM's slots
/// left unset: [`Vm::run_regions`](crate::Vm::run_regions) installs them, and runs over the
/// `Memory` this then is. For an embedder that builds its regions per invocation (the engine's
/// step): `Memory::new` empties the VM's slots, stores the compiler does not drop although the
/// run overwrites them. A separate type, so no code can read those slots before the install: a
/// helper gets the run's `Memory`, and can only swap in one that `Memory::new` built.
#[derive(Debug)]
pub struct Regions<'a> {
    memory: Memory<'a>,
    /// The first embedder region (slot [`VM_SLOTS`]) as the JIT's caches start with it, kept
    /// when it is mapped (empty before): the JIT's entry would otherwise read it back from the
    /// slot table, after the stores of later mappings through a run-time slot index, which the
    /// compiler cannot tell apart from it.
    #[cfg(feature = "jit")]
    entry: EntryRegion,
}

/// The first embedder region as the JIT's caches start with it (`jit::EntryRegion`); nothing
/// without the `jit` feature.
#[cfg(feature = "jit")]
pub(crate) type EntryRegion = crate::jit::EntryRegion;
/// Without the `jit` feature, no native code starts with a region.
#[cfg(not(feature = "jit"))]
pub(crate) type EntryRegion = core::convert::Infallible;

impl Default for Regions<'_> {
    fn default() -> Self {
        Regions::new()
    }
}

impl<'a> Regions<'a> {
    /// No regions mapped.
    #[inline(always)]
    pub fn new() -> Self {
        Regions {
            memory: Memory::without_vm_slots(),
            #[cfg(feature = "jit")]
            entry: (core::ptr::null_mut(), 0, 0),
        }
    }

    /// As [`Memory::map_read`].
    #[inline(always)]
    pub fn map_read(&mut self, bytes: &'a [u8]) -> Result<u64, MapError> {
        self.map(Region::read(bytes)?)
    }

    /// As [`Memory::map_write`].
    #[inline(always)]
    pub fn map_write(&mut self, bytes: &'a mut [u8]) -> Result<u64, MapError> {
        self.map(Region::write(bytes)?)
    }

    /// Maps `region`, and keeps it as the JIT's caches start with it if it is the first
    /// embedder region (a test the compiler folds where it knows the slot).
    #[inline(always)]
    fn map(&mut self, region: Region) -> Result<u64, MapError> {
        let addr = self.memory.push(region)?;
        #[cfg(feature = "jit")]
        if addr == slot_base(VM_SLOTS) {
            self.entry = crate::jit::entry_region(&region);
        }
        Ok(addr)
    }

    /// Number of embedder regions mapped.
    pub fn regions_mapped(&self) -> usize {
        self.memory.regions_mapped()
    }

    /// The `Memory` to run over, for `Vm::run_regions` only: its VM slots may be unset, so the
    /// caller installs them before anything reads it; and the first embedder region as the
    /// JIT's caches start with it.
    #[inline(always)]
    pub(crate) fn memory_to_install(&mut self) -> (&mut Memory<'a>, Option<EntryRegion>) {
        #[cfg(feature = "jit")]
        let entry = Some(self.entry);
        #[cfg(not(feature = "jit"))]
        let entry = None;
        (&mut self.memory, entry)
    }
}

fn region_len(len: usize) -> Result<u64, MapError> {
    let len = len as u64;
    if len > REGION_BYTES_MAX {
        return Err(MapError::TooLarge {
            len,
            max: REGION_BYTES_MAX,
        });
    }
    Ok(len)
}

/// Splits a VM address into its slot index (possibly out of range) and offset.
#[inline(always)]
pub(crate) fn split(addr: u64) -> (u64, u64) {
    ((addr >> SLOT_SHIFT).wrapping_sub(1), addr & OFFSET_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_get_consecutive_slots_after_the_vm_slots() {
        let a = [1u8; 4];
        let mut b = [2u8; 8];
        let mut mem = Memory::new();
        assert_eq!(mem.map_read(&a), Ok(slot_base(VM_SLOTS)));
        assert_eq!(mem.map_write(&mut b), Ok(slot_base(VM_SLOTS + 1)));
        assert_eq!(mem.read(slot_base(VM_SLOTS) + 1, 3), Ok(&[1u8, 1, 1][..]));
        assert_eq!(
            mem.read(slot_base(VM_SLOTS) + 1, 4),
            Err(MemoryError::OutOfBounds {
                addr: slot_base(VM_SLOTS) + 1,
                len: 4
            })
        );
        let addr = slot_base(VM_SLOTS);
        assert_eq!(
            mem.write(addr, 1),
            Err(MemoryError::ReadOnly { addr, len: 1 })
        );
        mem.write(slot_base(VM_SLOTS + 1) + 7, 1).unwrap()[0] = 9;
        assert_eq!(mem.read(slot_base(VM_SLOTS + 1), 8).unwrap()[7], 9);
    }

    #[test]
    fn address_zero_and_unmapped_slots_fault() {
        let mem = Memory::new();
        for addr in [0, 1, slot_base(STACK_SLOT), slot_base(SLOTS), u64::MAX] {
            assert_eq!(
                mem.read(addr, 1),
                Err(MemoryError::OutOfBounds { addr, len: 1 })
            );
        }
    }

    #[test]
    fn mapping_more_than_the_limit_is_refused() {
        let bytes = [0u8; 1];
        let mut mem = Memory::new();
        for _ in 0..MEMORY_REGIONS_MAX {
            mem.map_read(&bytes).unwrap();
        }
        assert_eq!(
            mem.map_read(&bytes),
            Err(MapError::TooManyRegions {
                max: MEMORY_REGIONS_MAX
            })
        );
    }
}
