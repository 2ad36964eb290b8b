//! `JitCache`: programs with equal ops and entry share one native code, whatever their constants
//! and globals, and each still computes with its own data; programs that differ in one op do not
//! share; code lives as long as some program holds it.

use naam_vm::{Backend, Helpers, JitCache, JitCacheStats, Program, Tier};

const FEATURES: &[u8] = include_bytes!("bpf/elf_features.o");

#[cfg(feature = "jit")]
mod shared {
    use naam_vm::{Backend, Helpers, JitCache, Memory, Program, Tier, Vm, VmConfig};
    use object::{Object, ObjectSection};

    use super::FEATURES;

    /// `primes` of `elf_features.c` (its `.rodata`), as the object stores them.
    const PRIMES: [u64; 8] = [2, 3, 5, 7, 11, 13, 17, 19];
    /// `counter`'s initial value in `elf_features.c` (its `.data`).
    const COUNTER_INITIAL: u64 = 40;

    /// `mov r0, imm; exit`.
    fn return_imm(imm: u8) -> [u8; 16] {
        [0xb7, 0, 0, 0, imm, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]
    }

    fn words_le(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// The object with `from` (found exactly once in `section`) replaced by `to`.
    fn patched(section: &str, from: &[u8], to: &[u8]) -> Vec<u8> {
        let file = object::File::parse(FEATURES).expect("parses");
        let range = file
            .section_by_name(section)
            .and_then(|s| s.file_range())
            .expect("section in the file");
        let (start, len) = (range.0 as usize, range.1 as usize);
        let bytes = &FEATURES[start..start + len];
        let at: Vec<usize> = (0..bytes.len().saturating_sub(from.len() - 1))
            .filter(|&i| bytes[i..].starts_with(from))
            .collect();
        assert_eq!(at.len(), 1, "{from:x?} once in {section}");
        let mut object = FEATURES.to_vec();
        object[start + at[0]..start + at[0] + to.len()].copy_from_slice(to);
        object
    }

    fn run(program: &Program, word: u64) -> u64 {
        let input = word.to_le_bytes();
        let mut mem = Memory::new();
        let addr = mem.map_read(&input).expect("maps");
        let mut vm = Vm::new(VmConfig::default());
        vm.run(program, &mut mem, &Helpers::<()>::new(), &mut (), addr, 8)
            .unwrap_or_else(|trap| panic!("trap: {trap}"))
            .r0
    }

    fn cached(object: &[u8], name: &str, cache: &mut JitCache) -> Program {
        Program::from_elf_cached(object, name, &Helpers::<()>::new(), Backend::Jit, cache)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn interpreted(object: &[u8], name: &str) -> Program {
        Program::from_elf(object, name, &Helpers::<()>::new()).expect("loads")
    }

    #[test]
    fn programs_differing_only_in_rodata_or_data_share_code_and_keep_their_answers() {
        let mut primes = PRIMES;
        primes[0] = 23;
        let other_rodata = patched(".rodata", &words_le(&PRIMES), &words_le(&primes));
        let other_data = patched(".data", &words_le(&[COUNTER_INITIAL]), &words_le(&[41]));
        let mut cache = JitCache::new();
        for (name, other, input, answers) in [
            ("naam/sum_primes", &other_rodata, 3, [10, 31]),
            ("naam/bump", &other_data, 2, [4201, 4301]),
        ] {
            let mine = cached(FEATURES, name, &mut cache);
            let theirs = cached(other, name, &mut cache);
            assert!(!mine.same_code(&theirs), "{name}: the data differ");
            assert!(mine.shares_jit_code(&theirs), "{name}: one native code");
            assert_eq!(mine.tier(), Tier::Jit);
            for (program, object, answer) in
                [(&mine, FEATURES, answers[0]), (&theirs, other, answers[1])]
            {
                assert_eq!(run(program, input), answer, "{name} on the JIT");
                assert_eq!(
                    run(&interpreted(object, name), input),
                    answer,
                    "{name} interpreted"
                );
            }
        }
        // One compile per function, reused by its patched twin; both pairs are dropped by now.
        let stats = cache.stats();
        assert_eq!((stats.compiles, stats.reuses, stats.live_codes), (2, 2, 0));
    }

    #[test]
    fn programs_differing_in_one_op_do_not_share() {
        let (mut cache, helpers) = (JitCache::new(), Helpers::<()>::new());
        let load = |imm, cache: &mut JitCache| {
            Program::from_raw_cached(&return_imm(imm), &helpers, Backend::Jit, cache)
                .expect("loads")
        };
        let (one, two) = (load(1, &mut cache), load(2, &mut cache));
        assert!(!one.shares_jit_code(&two));
        assert_eq!((run(&one, 0), run(&two, 0)), (1, 2));
        let one_again = load(1, &mut cache);
        assert!(one.shares_jit_code(&one_again));
        let stats = cache.stats();
        assert_eq!((stats.compiles, stats.reuses, stats.live_codes), (2, 1, 2));
    }

    #[test]
    fn code_is_freed_with_its_last_holder_and_compiled_again_after() {
        let mut cache = JitCache::new();
        let first = cached(FEATURES, "naam/sum_primes", &mut cache);
        let second = cached(FEATURES, "naam/sum_primes", &mut cache);
        drop(first);
        assert_eq!(
            cache.stats().live_codes,
            1,
            "the second program still holds it"
        );
        drop(second);
        assert_eq!(cache.stats().live_codes, 0, "no holder left");
        assert_eq!(cache.prune(), 1, "the dead entry goes");
        let third = cached(FEATURES, "naam/sum_primes", &mut cache);
        assert_eq!(run(&third, 2), 5);
        let stats = cache.stats();
        assert_eq!((stats.compiles, stats.reuses, stats.live_codes), (2, 1, 1));
    }
}

#[test]
fn the_interpreter_backend_leaves_the_cache_alone() {
    let mut cache = JitCache::new();
    let helpers = Helpers::<()>::new();
    let program = Program::from_elf_cached(
        FEATURES,
        "naam/sum_primes",
        &helpers,
        Backend::Interpreter,
        &mut cache,
    )
    .expect("loads");
    assert_eq!(program.tier(), Tier::Interpreter);
    assert!(
        !program.shares_jit_code(&program),
        "no native code to share"
    );
    assert_eq!(cache.stats(), JitCacheStats::default());
}
