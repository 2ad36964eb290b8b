//! The NAAM functions of both workloads (and the benchmark kernels) under the JIT: each loads
//! onto the JIT tier on this machine and compiles for aarch64 (a BlueField-2's Arm cores) and
//! x86-64. aarch64 code is compiled only: this machine cannot run it.
#![cfg(feature = "jit")]

use naam_vm::{Backend, Helper, HelperError, Helpers, JitTarget, Memory, Program, Signature, Tier};

/// Helper ids of the NAAM ABI (`naam/engine/src/abi.rs`: naam_read, naam_reply,
/// naam_save_state); the functions are verified against them.
const NAAM_HELPER_IDS: [u32; 3] = [0x4e01, 0x4e02, 0x4e03];

/// (name, clang object, section) of every program checked.
const PROGRAMS: [(&str, &[u8], &str); 4] = [
    (
        "mica_get",
        include_bytes!("../../../workloads/mica/bpf/mica_get.o"),
        "naam/mica_get",
    ),
    (
        "btree_lookup",
        include_bytes!("../../../workloads/btree/bpf/btree_lookup.o"),
        "naam/btree_lookup",
    ),
    (
        "mica_probe",
        include_bytes!("../benches/bpf/mica_probe.o"),
        "naam/mica_probe",
    ),
    (
        "btree_search",
        include_bytes!("../benches/bpf/btree_search.o"),
        "naam/btree_search",
    ),
];

fn refuse(_: &mut (), _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Err(HelperError::Failed {
        reason: "stand-in for a NAAM helper",
    })
}

fn naam_helpers() -> Helpers<()> {
    let mut helpers = Helpers::new();
    for id in NAAM_HELPER_IDS {
        let helper = Helper {
            name: "naam stand-in",
            signature: Signature::SCALARS,
            func: refuse,
        };
        helpers.register(id, helper).expect("stand-in registers");
    }
    helpers
}

#[test]
fn naam_functions_run_on_the_jit_and_compile_for_aarch64() {
    let helpers = naam_helpers();
    for (name, object, section) in PROGRAMS {
        let program = Program::from_elf_with(object, section, &helpers, Backend::Jit)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            program.tier(),
            Tier::Jit,
            "{name}: {:?}",
            program.jit_error()
        );
        assert!(program.jit_code_bytes().is_some_and(|bytes| bytes > 0));
        for target in [JitTarget::Aarch64, JitTarget::X86_64] {
            let bytes = program
                .compile_for(target)
                .unwrap_or_else(|e| panic!("{name} for {target:?}: {e}"));
            assert!(bytes > 0, "{name} for {target:?}: no code");
        }
    }
}

#[test]
fn an_interpreter_program_reports_no_jit() {
    let helpers = naam_helpers();
    let (_, object, section) = PROGRAMS[2];
    let program = Program::from_elf(object, section, &helpers).expect("loads");
    assert_eq!(program.tier(), Tier::Interpreter);
    assert_eq!(program.jit_code_bytes(), None);
    assert_eq!(program.jit_error(), None);
}

fn panic_helper(_: &mut (), _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    panic!("helper panics on purpose")
}

/// A helper's panic unwinds out of `Vm::run` as on the interpreter (the native frames are
/// crossed as a status, not unwound), and the machine stays usable.
#[test]
fn a_panicking_helper_unwinds_out_of_run_and_the_vm_stays_usable() {
    let mut helpers = Helpers::<()>::new();
    let helper = Helper {
        name: "panics",
        signature: Signature::SCALARS,
        func: panic_helper,
    };
    helpers.register(9, helper).expect("registers");
    // r0 = 7; call 9; exit
    let calls: Vec<u8> = [
        [0xb7, 0x00, 0, 0, 7, 0, 0, 0],
        [0x85, 0x00, 0, 0, 9, 0, 0, 0],
        [0x95, 0, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    let program = Program::from_raw_with(&calls, &helpers, Backend::Jit).expect("loads");
    assert_eq!(program.tier(), Tier::Jit);
    let mut vm = naam_vm::Vm::new(naam_vm::VmConfig::default());
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        vm.run(&program, &mut Memory::new(), &helpers, &mut (), 0, 0)
    }));
    let message = unwound.expect_err("the panic reaches the caller");
    assert_eq!(
        message.downcast_ref::<&str>(),
        Some(&"helper panics on purpose")
    );
    let exits: Vec<u8> = [[0xb7, 0x00, 0, 0, 5, 0, 0, 0], [0x95, 0, 0, 0, 0, 0, 0, 0]].concat();
    let program = Program::from_raw_with(&exits, &helpers, Backend::Jit).expect("loads");
    let exit = vm
        .run(&program, &mut Memory::new(), &helpers, &mut (), 0, 0)
        .expect("runs");
    assert_eq!((exit.r0, exit.insn_count), (5, 2));
}
