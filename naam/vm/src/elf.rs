//! Loading from ELF objects produced by `clang -O2 -target bpf` (parsed with the `object` crate).
//!
//! What clang-19 emits, and how each piece is linked:
//! - each function lives in its section (`naam/<name>` for `NAAM_FUNCTION`, `.text` otherwise);
//!   calls within a section are already resolved (`call` with `src = 1` and a relative `imm`);
//! - a call into another section (typically a `static __attribute__((noinline))` function in
//!   `.text`) carries an `R_BPF_64_32` relocation against the callee's section symbol (or
//!   function symbol) with the implicit addend in `imm`: the callee starts at byte
//!   `symbol + (imm + 1) * 8` of its section. The loader appends every section reachable this
//!   way after the program's own section and rewrites `imm` relative to the linked program;
//! - a reference to data (`.rodata`, `.rodata.str1.1`, `.data`, `.bss`...) is a `lddw` with an
//!   `R_BPF_64_64` relocation against the section symbol or the object symbol, the addend in the
//!   `lddw`'s low immediate. Read-only sections are concatenated into the program's constants
//!   image, writable ones into its globals image, and the `lddw` gets the VM address;
//! - `R_BPF_64_ABS64` inside data sections (tables of pointers) gets the VM address too.
//!
//! Anything else (maps, externs, TLS, other relocation types) is a typed [`ElfError`] that names
//! the section and the relocation.

use std::collections::{HashMap, HashSet};

use object::read::elf::ElfFile64;
use object::{
    LittleEndian, Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget,
};
use object::{SectionIndex, SectionKind, SymbolKind, SymbolSection};

use crate::memory::{CONSTANTS_SLOT, GLOBALS_SLOT, slot_base};
use crate::opcode::{CALL_SRC_LOCAL, CLASS_JMP, JMP_CALL, OP_LDDW, RawInsn, SLOT_BYTES};
use crate::program::{CONSTANTS_BYTES_MAX, GLOBALS_BYTES_MAX};

/// ELF machine number of eBPF.
const EM_BPF: u16 = 247;
const R_BPF_NONE: u32 = 0;
const R_BPF_64_64: u32 = 1;
const R_BPF_64_ABS64: u32 = 2;
const R_BPF_64_32: u32 = 10;
/// Alignment of each data section inside its image (the largest eBPF access).
const DATA_ALIGN_BYTES: usize = 8;

/// Why an ELF object could not be turned into a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    /// The bytes are not a well-formed 64-bit little-endian ELF object.
    #[error("malformed or non-64-bit-little-endian ELF object: {reason}")]
    Parse {
        /// What the parser reported.
        reason: String,
    },
    /// The object is for another machine.
    #[error("ELF machine {machine} is not eBPF ({EM_BPF})")]
    NotBpf {
        /// `e_machine`.
        machine: u16,
    },
    /// No executable section and no function symbol has this name.
    #[error("no section or function named {name:?}")]
    ProgramNotFound {
        /// The name asked for.
        name: String,
    },
    /// Several function symbols have this name.
    #[error("{count} functions are named {name:?}; pick one by section name")]
    AmbiguousName {
        /// The name asked for.
        name: String,
        /// How many functions carry it.
        count: usize,
    },
    /// The named section or symbol is not executable code.
    #[error("{name:?} is not code (section {section:?})")]
    NotExecutable {
        /// The name asked for.
        name: String,
        /// The section it lives in.
        section: String,
    },
    /// A code section's size is not a whole number of instructions.
    #[error("section {section:?} has {size} bytes, not a whole number of 8-byte instructions")]
    MisalignedSection {
        /// Section name.
        section: String,
        /// Its size in bytes.
        size: u64,
    },
    /// A relocation type the loader does not handle.
    #[error("section {section:?} offset {offset:#x}: unsupported relocation type {r_type}")]
    UnsupportedRelocation {
        /// Section being relocated.
        section: String,
        /// Byte offset in that section.
        offset: u64,
        /// ELF `r_type`.
        r_type: u32,
    },
    /// A relocation sits on an instruction it does not fit (e.g. `R_BPF_64_64` not on a `lddw`).
    #[error(
        "section {section:?} offset {offset:#x}: relocation type {r_type} on opcode {opcode:#04x}"
    )]
    RelocationMismatch {
        /// Section being relocated.
        section: String,
        /// Byte offset in that section.
        offset: u64,
        /// ELF `r_type`.
        r_type: u32,
        /// Opcode found at the offset.
        opcode: u8,
    },
    /// A relocation refers to a symbol no section of the object defines (an extern, a kfunc...).
    #[error("section {section:?} offset {offset:#x}: undefined symbol {symbol:?}")]
    UndefinedSymbol {
        /// Section being relocated.
        section: String,
        /// Byte offset in that section.
        offset: u64,
        /// Symbol name.
        symbol: String,
    },
    /// A relocation points somewhere a program cannot use (a map, a function's address, beyond
    /// its section, TLS...).
    #[error("section {section:?} offset {offset:#x}: cannot refer to {target}: {reason}")]
    UnsupportedTarget {
        /// Section being relocated.
        section: String,
        /// Byte offset in that section.
        offset: u64,
        /// What the relocation points to (symbol or section name).
        target: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The object's data sections exceed the limit of their image.
    #[error("{image} image of {len} bytes exceeds the limit of {max}")]
    DataTooLarge {
        /// `"constants"` or `"globals"`.
        image: &'static str,
        /// Bytes needed.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl From<object::Error> for ElfError {
    fn from(error: object::Error) -> Self {
        ElfError::Parse {
            reason: error.to_string(),
        }
    }
}

/// A program linked out of an object: bytecode ready for the verifier, plus its data images.
#[derive(Debug)]
pub(crate) struct Linked {
    pub bytecode: Vec<u8>,
    pub entry_slot: usize,
    pub constants: Box<[u8]>,
    pub globals: Box<[u8]>,
}

type Elf<'data> = ElfFile64<'data, LittleEndian>;
type Sym<'data, 'file> = object::read::elf::ElfSymbol64<'data, 'file, LittleEndian>;

/// Where a data section landed: its image's slot and its offset inside the image.
#[derive(Clone, Copy)]
struct Placed {
    slot: usize,
    offset: usize,
}

/// Links the program `name` (section or function symbol) of `object`.
pub(crate) fn link(object: &[u8], name: &str) -> Result<Linked, ElfError> {
    let file = Elf::parse(object)?;
    let machine = file.elf_header().e_machine.get(LittleEndian).0;
    if machine != EM_BPF {
        return Err(ElfError::NotBpf { machine });
    }
    let (entry_section, entry_offset) = find_entry(&file, name)?;
    let code_sections = reachable_code(&file, entry_section)?;
    let mut bytecode = Vec::new();
    let mut code_base = HashMap::new();
    for &index in &code_sections {
        let section = file.section_by_index(index)?;
        code_base.insert(index, bytecode.len() / SLOT_BYTES);
        bytecode.extend_from_slice(section.data()?);
    }
    let (mut constants, mut globals, placed) = layout_data(&file)?;
    let linker = Linker {
        file: &file,
        code_base: &code_base,
        placed: &placed,
    };
    for &index in &code_sections {
        linker.relocate_code(index, &mut bytecode)?;
    }
    linker.relocate_data(&mut constants, &mut globals)?;
    let entry_slot = code_base[&entry_section] + entry_offset / SLOT_BYTES;
    Ok(Linked {
        bytecode,
        entry_slot,
        constants: constants.into_boxed_slice(),
        globals: globals.into_boxed_slice(),
    })
}

/// The section and byte offset where `name` starts.
fn find_entry(file: &Elf<'_>, name: &str) -> Result<(SectionIndex, usize), ElfError> {
    if let Some(section) = file.sections().find(|s| s.name() == Ok(name)) {
        if section.kind() != SectionKind::Text {
            let section = name.to_string();
            return Err(ElfError::NotExecutable {
                name: name.to_string(),
                section,
            });
        }
        return Ok((section.index(), 0));
    }
    let matches: Vec<_> = file
        .symbols()
        .filter(|s| s.name() == Ok(name) && matches!(s.kind(), SymbolKind::Text | SymbolKind::Data))
        .collect();
    let symbol = match matches.as_slice() {
        [] => {
            return Err(ElfError::ProgramNotFound {
                name: name.to_string(),
            });
        }
        [symbol] => symbol,
        more => {
            return Err(ElfError::AmbiguousName {
                name: name.to_string(),
                count: more.len(),
            });
        }
    };
    let section = match symbol.section() {
        SymbolSection::Section(index) => file.section_by_index(index)?,
        _ => {
            return Err(ElfError::ProgramNotFound {
                name: name.to_string(),
            });
        }
    };
    if symbol.kind() != SymbolKind::Text || section.kind() != SectionKind::Text {
        let section = section.name().unwrap_or("?").to_string();
        return Err(ElfError::NotExecutable {
            name: name.to_string(),
            section,
        });
    }
    Ok((section.index(), symbol.address() as usize))
}

/// The entry section first, then every code section reachable through call relocations.
fn reachable_code(file: &Elf<'_>, entry: SectionIndex) -> Result<Vec<SectionIndex>, ElfError> {
    let mut order = vec![entry];
    let mut seen = HashSet::from([entry]);
    let mut next = 0;
    while let Some(&index) = order.get(next) {
        next += 1;
        let section = file.section_by_index(index)?;
        let section_name = section.name().unwrap_or("?");
        if section.size() % SLOT_BYTES as u64 != 0 {
            let size = section.size();
            return Err(ElfError::MisalignedSection {
                section: section_name.to_string(),
                size,
            });
        }
        for (offset, relocation) in section.relocations() {
            if r_type(&relocation) != Some(R_BPF_64_32) {
                continue;
            }
            let at = At {
                section: section_name,
                offset,
            };
            let symbol = at.symbol(file, relocation.target())?;
            let target = match symbol.section() {
                SymbolSection::Section(target) => target,
                _ => return Err(at.undefined(&symbol)),
            };
            if file.section_by_index(target)?.kind() != SectionKind::Text {
                return Err(at.unsupported(file, &symbol, "a call target must be code"));
            }
            if seen.insert(target) {
                order.push(target);
            }
        }
    }
    Ok(order)
}

/// The constants image, the globals image, and where each data section landed.
type DataImages = (Vec<u8>, Vec<u8>, HashMap<SectionIndex, Placed>);

/// Concatenates the object's data sections into the constants and globals images.
fn layout_data(file: &Elf<'_>) -> Result<DataImages, ElfError> {
    let mut constants = Vec::new();
    let mut globals = Vec::new();
    let mut placed = HashMap::new();
    for section in file.sections() {
        let name = section.name().unwrap_or("?");
        if is_unsupported_data(name) {
            continue; // an error only if a relocation refers to it
        }
        let (image, slot) = match section.kind() {
            SectionKind::ReadOnlyData | SectionKind::ReadOnlyString => {
                (&mut constants, CONSTANTS_SLOT)
            }
            SectionKind::Data | SectionKind::UninitializedData => (&mut globals, GLOBALS_SLOT),
            _ => continue,
        };
        image.resize(image.len().next_multiple_of(DATA_ALIGN_BYTES), 0);
        placed.insert(
            section.index(),
            Placed {
                slot,
                offset: image.len(),
            },
        );
        if section.kind() == SectionKind::UninitializedData {
            let size = usize::try_from(section.size()).unwrap_or(usize::MAX);
            check_image_len(slot, image.len().saturating_add(size))?;
            image.resize(image.len() + size, 0);
        } else {
            let data = section.data()?;
            check_image_len(slot, image.len().saturating_add(data.len()))?;
            image.extend_from_slice(data);
        }
    }
    Ok((constants, globals, placed))
}

fn check_image_len(slot: usize, len: usize) -> Result<(), ElfError> {
    let (image, max) = if slot == CONSTANTS_SLOT {
        ("constants", CONSTANTS_BYTES_MAX)
    } else {
        ("globals", GLOBALS_BYTES_MAX)
    };
    if len > max {
        return Err(ElfError::DataTooLarge { image, len, max });
    }
    Ok(())
}

/// Data sections with kernel-only meaning (maps, kernel config, license, BTF).
fn is_unsupported_data(name: &str) -> bool {
    name == "maps" || name.starts_with(".maps") || name.starts_with(".kconfig") || name == "license"
}

fn r_type(relocation: &object::Relocation) -> Option<u32> {
    match relocation.flags() {
        RelocationFlags::Elf { r_type } => Some(r_type.0),
        _ => None,
    }
}

/// The place a relocation applies to, for error reports.
struct At<'a> {
    section: &'a str,
    offset: u64,
}

impl At<'_> {
    fn symbol<'data, 'file>(
        &self,
        file: &'file Elf<'data>,
        target: RelocationTarget,
    ) -> Result<Sym<'data, 'file>, ElfError> {
        match target {
            RelocationTarget::Symbol(index) => Ok(file.symbol_by_index(index)?),
            _ => Err(ElfError::UnsupportedTarget {
                section: self.section.to_string(),
                offset: self.offset,
                target: "an absolute address".to_string(),
                reason: "relocations must name a symbol",
            }),
        }
    }

    fn undefined(&self, symbol: &Sym<'_, '_>) -> ElfError {
        ElfError::UndefinedSymbol {
            section: self.section.to_string(),
            offset: self.offset,
            symbol: symbol.name().unwrap_or("?").to_string(),
        }
    }

    fn unsupported(&self, file: &Elf<'_>, symbol: &Sym<'_, '_>, reason: &'static str) -> ElfError {
        ElfError::UnsupportedTarget {
            section: self.section.to_string(),
            offset: self.offset,
            target: symbol_label(file, symbol),
            reason,
        }
    }

    fn mismatch(&self, r_type: u32, opcode: u8) -> ElfError {
        ElfError::RelocationMismatch {
            section: self.section.to_string(),
            offset: self.offset,
            r_type,
            opcode,
        }
    }

    fn unsupported_type(&self, r_type: u32) -> ElfError {
        ElfError::UnsupportedRelocation {
            section: self.section.to_string(),
            offset: self.offset,
            r_type,
        }
    }
}

/// A symbol's name, or its section's name for section symbols.
fn symbol_label(file: &Elf<'_>, symbol: &Sym<'_, '_>) -> String {
    match (symbol.name(), symbol.section_index()) {
        (Ok(name), _) if !name.is_empty() => name.to_string(),
        (_, Some(index)) => file
            .section_by_index(index)
            .ok()
            .and_then(|s| s.name().ok().map(str::to_string))
            .unwrap_or_else(|| format!("section {}", index.0)),
        _ => "?".to_string(),
    }
}

struct Linker<'a, 'data> {
    file: &'a Elf<'data>,
    code_base: &'a HashMap<SectionIndex, usize>,
    placed: &'a HashMap<SectionIndex, Placed>,
}

impl Linker<'_, '_> {
    fn relocate_code(&self, index: SectionIndex, bytecode: &mut [u8]) -> Result<(), ElfError> {
        let section = self.file.section_by_index(index)?;
        let section_name = section.name().unwrap_or("?");
        let base = self.code_base[&index];
        for (offset, relocation) in section.relocations() {
            let at = At {
                section: section_name,
                offset,
            };
            let Some(r_type) = r_type(&relocation) else {
                return Err(at.unsupported_type(u32::MAX));
            };
            if r_type == R_BPF_NONE {
                continue;
            }
            if offset % SLOT_BYTES as u64 != 0 || offset >= section.size() {
                return Err(at.mismatch(r_type, 0));
            }
            let pc = base + (offset as usize) / SLOT_BYTES;
            let symbol = at.symbol(self.file, relocation.target())?;
            match r_type {
                R_BPF_64_32 => self.relocate_call(&at, pc, &symbol, bytecode)?,
                R_BPF_64_64 => self.relocate_lddw(&at, pc, &symbol, bytecode)?,
                other => return Err(at.unsupported_type(other)),
            }
        }
        Ok(())
    }

    fn relocate_call(
        &self,
        at: &At<'_>,
        pc: usize,
        symbol: &Sym<'_, '_>,
        bytecode: &mut [u8],
    ) -> Result<(), ElfError> {
        let mut insn = read_slot(bytecode, pc);
        if insn.opcode != CLASS_JMP | JMP_CALL || insn.src != CALL_SRC_LOCAL {
            return Err(at.mismatch(R_BPF_64_32, insn.opcode));
        }
        let (Some(target_section), false) = (symbol.section_index(), symbol.is_undefined()) else {
            return Err(at.undefined(symbol));
        };
        let Some(&target_base) = self.code_base.get(&target_section) else {
            return Err(at.unsupported(self.file, symbol, "a call target must be code"));
        };
        let size = self.file.section_by_index(target_section)?.size();
        let outside = || at.unsupported(self.file, symbol, "the call lands outside its section");
        let byte = i64::try_from(symbol.address())
            .ok()
            .and_then(|address| address.checked_add((i64::from(insn.imm) + 1) * SLOT_BYTES as i64))
            .and_then(|byte| u64::try_from(byte).ok())
            .filter(|byte| *byte < size && byte.is_multiple_of(SLOT_BYTES as u64))
            .ok_or_else(outside)? as i64;
        let target = target_base as i64 + byte / SLOT_BYTES as i64;
        let relative = target - (pc as i64 + 1);
        insn.imm = i32::try_from(relative)
            .map_err(|_| at.unsupported(self.file, symbol, "the call is too far"))?;
        write_slot(bytecode, pc, insn);
        Ok(())
    }

    fn relocate_lddw(
        &self,
        at: &At<'_>,
        pc: usize,
        symbol: &Sym<'_, '_>,
        bytecode: &mut [u8],
    ) -> Result<(), ElfError> {
        let mut low = read_slot(bytecode, pc);
        if low.opcode != OP_LDDW || low.src != 0 || pc + 1 >= bytecode.len() / SLOT_BYTES {
            return Err(at.mismatch(R_BPF_64_64, low.opcode));
        }
        let address = self.data_address(at, symbol, i64::from(low.imm))?;
        let mut high = read_slot(bytecode, pc + 1);
        low.imm = address as u32 as i32;
        high.imm = (address >> 32) as u32 as i32;
        write_slot(bytecode, pc, low);
        write_slot(bytecode, pc + 1, high);
        Ok(())
    }

    /// VM address of `symbol + addend` inside the data images.
    fn data_address(
        &self,
        at: &At<'_>,
        symbol: &Sym<'_, '_>,
        addend: i64,
    ) -> Result<u64, ElfError> {
        let Some(section_index) = symbol.section_index() else {
            return Err(at.undefined(symbol));
        };
        let section = self.file.section_by_index(section_index)?;
        let Some(placed) = self.placed.get(&section_index) else {
            let reason = match section.kind() {
                SectionKind::Text => "the address of code cannot be taken",
                _ if is_unsupported_data(section.name().unwrap_or("")) => {
                    "BPF maps and kernel sections are not supported"
                }
                _ => "only .rodata, .data and .bss sections can be referenced",
            };
            return Err(at.unsupported(self.file, symbol, reason));
        };
        let outside =
            || at.unsupported(self.file, symbol, "the reference lands outside its section");
        let offset = i64::try_from(symbol.address())
            .ok()
            .and_then(|address| address.checked_add(addend))
            .and_then(|offset| u64::try_from(offset).ok())
            .filter(|offset| *offset <= section.size())
            .ok_or_else(outside)?;
        Ok(slot_base(placed.slot) + placed.offset as u64 + offset)
    }

    /// Resolves `R_BPF_64_ABS64` relocations inside data sections (tables of pointers).
    fn relocate_data(&self, constants: &mut [u8], globals: &mut [u8]) -> Result<(), ElfError> {
        for section in self.file.sections() {
            let Some(placed) = self.placed.get(&section.index()) else {
                continue;
            };
            let section_name = section.name().unwrap_or("?");
            for (offset, relocation) in section.relocations() {
                let at = At {
                    section: section_name,
                    offset,
                };
                match r_type(&relocation) {
                    Some(R_BPF_NONE) => continue,
                    Some(R_BPF_64_ABS64) => {}
                    other => return Err(at.unsupported_type(other.unwrap_or(u32::MAX))),
                }
                let image: &mut [u8] = if placed.slot == CONSTANTS_SLOT {
                    constants
                } else {
                    globals
                };
                // The 8-byte field must lie inside its own section (hostile offsets overflow).
                let inside_section = offset
                    .checked_add(8)
                    .is_some_and(|end| end <= section.size());
                let start = usize::try_from(offset)
                    .ok()
                    .and_then(|offset| placed.offset.checked_add(offset));
                let field = start
                    .filter(|_| inside_section)
                    .and_then(|start| image.get_mut(start..start.checked_add(8)?));
                let Some(field) = field else {
                    return Err(at.mismatch(R_BPF_64_ABS64, 0));
                };
                let addend = i64::from_le_bytes(field.try_into().unwrap_or_default());
                let symbol = at.symbol(self.file, relocation.target())?;
                let address = self.data_address(&at, &symbol, addend)?;
                field.copy_from_slice(&address.to_le_bytes());
            }
        }
        Ok(())
    }
}

fn read_slot(bytecode: &[u8], pc: usize) -> RawInsn {
    let mut slot = [0u8; SLOT_BYTES];
    if let Some(bytes) = bytecode.get(pc * SLOT_BYTES..(pc + 1) * SLOT_BYTES) {
        slot.copy_from_slice(bytes);
    }
    RawInsn::from_bytes(slot)
}

fn write_slot(bytecode: &mut [u8], pc: usize, insn: RawInsn) {
    if let Some(bytes) = bytecode.get_mut(pc * SLOT_BYTES..(pc + 1) * SLOT_BYTES) {
        bytes.copy_from_slice(&insn.to_bytes());
    }
}
