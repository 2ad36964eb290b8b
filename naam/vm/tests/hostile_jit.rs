//! Hostile programs on the Cranelift JIT: the cases of `hostile/cases.rs`, every program
//! compiled to native code, with the same rejections, traps and isolation as the interpreter.
#![cfg(feature = "jit")]

mod common;

const BACKEND: naam_vm::Backend = naam_vm::Backend::Jit;

#[path = "hostile/cases.rs"]
mod cases;
