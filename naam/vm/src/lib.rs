//! eBPF virtual machine for NAAM functions: ELF loading, verifier, interpreter, helpers
