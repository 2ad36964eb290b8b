//! Hostile programs on the interpreter (the cases are in `hostile/cases.rs`).

mod common;

const BACKEND: naam_vm::Backend = naam_vm::Backend::Interpreter;

#[path = "hostile/cases.rs"]
mod cases;
