//! Region memory shared between the host process and the emulated NIC process: one file per
//! region (e.g. under /dev/shm), mapped read-write by the host and read-only by the NIC — the
//! local stand-in for host memory that a BlueField-2 reaches by DMA.
//!
//! Like RDMA-registered memory, a region is read by other agents while the host writes it. Reads
//! therefore copy word by word with relaxed atomic loads (a reader sees each aligned 8-byte word
//! either before or after a concurrent write, never torn within the word), and torn multi-word
//! reads are detected by the workloads' version protocols (MICA bucket versions, B-tree node
//! versions), exactly as one-sided readers do. Writers (host-native functions such as MICA SET)
//! hold the host's write lock and use [`SharedRegion::bytes_mut`]; those writes race with other
//! agents' atomic reads as DMA would, which is outside Rust's memory model in the same way every
//! DMA buffer is, and confined to this module.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

/// Largest region this module maps.
pub const SHARED_REGION_BYTES_MAX: u64 = 1 << 34;
/// Smallest private region ([`SharedRegion::private`]) for which transparent huge pages are
/// asked: one 2 MiB page (x86-64's). A smaller region cannot hold an aligned huge page of its own,
/// and its few 4 KiB pages stay in the TLB anyway.
pub const HUGE_PAGE_REGION_BYTES_MIN: u64 = 2 << 20;
const WORD: usize = 8;

/// One mapped region.
#[derive(Debug)]
pub struct SharedRegion {
    map: MmapRaw,
    len: usize,
    path: PathBuf,
    remove_on_drop: bool,
    /// Mapped read-write by this process (created here), so [`SharedRegion::bytes_mut`] may
    /// write it.
    writable: bool,
}

// SAFETY: the mapping is process-wide memory; all access goes through atomic word operations or
// the documented `bytes_mut` contract.
unsafe impl Sync for SharedRegion {}
// SAFETY: as above; the mapping is not tied to a thread.
unsafe impl Send for SharedRegion {}

impl SharedRegion {
    /// Creates (or truncates) `path` with `len` zero bytes and maps it read-write. The file is
    /// removed when the region is dropped.
    pub fn create(path: &Path, len: u64) -> std::io::Result<SharedRegion> {
        check_len(len)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.set_len(len.next_multiple_of(WORD as u64))?;
        let map = MmapOptions::new().len(len as usize).map_raw(&file)?;
        Ok(SharedRegion {
            map,
            len: len as usize,
            path: path.to_path_buf(),
            remove_on_drop: true,
            writable: true,
        })
    }

    /// Maps `len` zero bytes of this process's private memory read-write, for a process that is
    /// its regions' only user (the simulator: no NIC process maps them). No file: [`path`] is
    /// empty. From [`HUGE_PAGE_REGION_BYTES_MIN`] on, transparent huge pages are asked for
    /// (`MADV_HUGEPAGE`): random reads over a large region (a MICA log, a B-tree) otherwise miss
    /// the TLB on most accesses with 4 KiB pages, and files in `/dev/shm` get no huge pages
    /// unless tmpfs is set up for them. The advice is a hint: where the kernel gives no huge
    /// pages the region is the same memory in 4 KiB pages, and its bytes never depend on it.
    ///
    /// [`path`]: SharedRegion::path
    pub fn private(len: u64) -> std::io::Result<SharedRegion> {
        check_len(len)?;
        // Whole words, as `create` sizes its file: `read_into` loads the last word whole.
        let map_len = (len as usize).next_multiple_of(WORD);
        let map = MmapRaw::from(MmapOptions::new().len(map_len).map_anon()?);
        if len >= HUGE_PAGE_REGION_BYTES_MIN {
            // A refusal (no THP in this kernel) leaves the mapping as it is: ignored.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Ok(SharedRegion {
            map,
            len: len as usize,
            path: PathBuf::new(),
            remove_on_drop: false,
            writable: true,
        })
    }

    /// Maps an existing region file read-only (the NIC's view).
    pub fn open_read_only(path: &Path, len: u64) -> std::io::Result<SharedRegion> {
        check_len(len)?;
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        if file_len < len {
            return Err(std::io::Error::other(format!(
                "{} has {file_len} bytes, expected {len}",
                path.display()
            )));
        }
        let map = MmapOptions::new()
            .len(len as usize)
            .map_raw_read_only(&file)?;
        Ok(SharedRegion {
            map,
            len: len as usize,
            path: path.to_path_buf(),
            remove_on_drop: false,
            writable: false,
        })
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty region.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapping's first byte (for registering it with an RDMA device: the RNIC then reads
    /// it without this process).
    pub fn as_ptr(&self) -> *const u8 {
        self.map.as_ptr()
    }

    /// The backing file (empty for a [`SharedRegion::private`] region).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies `dst.len()` bytes at `offset` into `dst`, word by word with atomic loads.
    /// Returns false (copying nothing) when the range is outside the region.
    ///
    /// Inlined: an access path calls it once per access, from inside the executor's fill.
    #[inline]
    pub fn read_into(&self, offset: u64, dst: &mut [u8]) -> bool {
        let Some(end) = (offset as usize)
            .checked_add(dst.len())
            .filter(|&e| e <= self.len)
        else {
            return false;
        };
        let start = offset as usize;
        // A partial first word, then whole words, then a partial last word: the whole words
        // are fixed-size copies (no `memcpy` call per word; an access is read once per
        // request on the NIC's path).
        let from = start % WORD;
        let head = if from == 0 {
            0
        } else {
            (WORD - from).min(dst.len())
        };
        let (first, rest) = dst.split_at_mut(head);
        if head > 0 {
            first.copy_from_slice(&self.load_word(start / WORD)[from..from + head]);
        }
        let mut word_index = (start + head) / WORD;
        let mut words = rest.chunks_exact_mut(WORD);
        for chunk in &mut words {
            chunk.copy_from_slice(&self.load_word(word_index));
            word_index += 1;
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            tail.copy_from_slice(&self.load_word(word_index)[..tail.len()]);
        }
        debug_assert!(word_index * WORD <= end);
        true
    }

    /// Word `index`'s bytes, read with one atomic load.
    #[inline]
    fn load_word(&self, index: usize) -> [u8; WORD] {
        self.word(index).load(Ordering::Relaxed).to_le_bytes()
    }

    /// The region as a mutable byte slice, for host-native writers and the initial load.
    ///
    /// # Safety
    /// The caller must hold the host's write lock for this region (no other writer), and must
    /// accept that concurrent readers may observe the bytes mid-update (they validate versions).
    /// The region must have been created read-write ([`SharedRegion::create`],
    /// [`SharedRegion::private`]).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn bytes_mut(&self) -> &mut [u8] {
        debug_assert!(
            self.writable,
            "only the creating (read-write) mapping may be written"
        );
        // SAFETY: the mapping is `len` bytes of read-write memory alive as long as `self`;
        // exclusivity among writers is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr(), self.len) }
    }

    fn word(&self, index: usize) -> &AtomicU64 {
        debug_assert!(index * WORD < self.len.next_multiple_of(WORD));
        // SAFETY: the mapping is page-aligned and its file (or private mapping) is sized to a
        // whole number of words, so every word index below len/8 (rounded up) is an aligned,
        // live u64 in the mapping; AtomicU64 has the layout of u64.
        unsafe { &*(self.map.as_ptr().add(index * WORD) as *const AtomicU64) }
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Bytes an unprivileged writer can still put into the file system holding `dir` (for
/// `/dev/shm`, tmpfs's size limit minus what is in it): creating regions larger than this would
/// end in SIGBUS when the host first writes them.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other(format!("{}: NUL in path", dir.display())))?;
    // SAFETY: `statvfs` is plain data; zeroed is a valid value, and the kernel fills it.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `stats` a valid out-pointer.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

fn check_len(len: u64) -> std::io::Result<()> {
    if len == 0 || len > SHARED_REGION_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "region length {len} outside 1..={SHARED_REGION_BYTES_MAX}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_bytes_of_a_temporary_directory_is_known_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn reads_any_unaligned_range_through_a_second_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r0");
        let region = SharedRegion::create(&path, 61).unwrap();
        // SAFETY: single-threaded test, one writer.
        let bytes = unsafe { region.bytes_mut() };
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let nic = SharedRegion::open_read_only(&path, 61).unwrap();
        // Every range: heads, whole words and tails in every combination.
        for offset in 0..61 {
            for len in 0..=61 - offset {
                let mut dst = vec![0xeeu8; len];
                assert!(nic.read_into(offset as u64, &mut dst));
                let expected: Vec<u8> = (offset..offset + len).map(|i| i as u8).collect();
                assert_eq!(dst, expected, "offset {offset} len {len}");
            }
        }
        assert!(!nic.read_into(60, &mut [0u8; 2]), "past the end");
        assert!(!nic.read_into(u64::MAX, &mut [0u8; 1]), "wrapping offset");
        drop(nic);
        drop(region);
        assert!(!path.exists(), "the host removes its region files");
    }

    #[test]
    fn a_private_region_is_zero_writable_and_read_back_at_any_range() {
        for len in [61, HUGE_PAGE_REGION_BYTES_MIN + 3] {
            let region = SharedRegion::private(len).unwrap();
            assert_eq!(region.len() as u64, len);
            assert_eq!(region.path(), Path::new(""), "no file");
            let mut last = [0xeeu8; 3];
            assert!(region.read_into(len - 3, &mut last));
            assert_eq!(last, [0; 3], "fresh memory is zero up to the last byte");
            // SAFETY: single-threaded test, one writer.
            let bytes = unsafe { region.bytes_mut() };
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
            for offset in (0..len - 20).step_by(4_093).chain(len - 20..len) {
                let n = (len - offset).min(20) as usize;
                let mut dst = vec![0xeeu8; n];
                assert!(region.read_into(offset, &mut dst));
                let expected: Vec<u8> = (offset..offset + n as u64)
                    .map(|i| (i % 251) as u8)
                    .collect();
                assert_eq!(dst, expected, "len {len} offset {offset}");
            }
            assert!(!region.read_into(len - 1, &mut [0u8; 2]), "past the end");
        }
        assert!(SharedRegion::private(0).is_err());
        assert!(SharedRegion::private(SHARED_REGION_BYTES_MAX + 1).is_err());
    }
}
