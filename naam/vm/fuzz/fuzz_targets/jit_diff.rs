//! Differential fuzzing: arbitrary bytecode on the JIT and on the interpreter must end alike.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::jit_matches_interpreter(data);
});
