//! Loads, verifies and runs arbitrary bytes as raw bytecode and as an ELF object.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::load_and_run(data);
});
