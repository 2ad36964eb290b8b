//! Results store: run folders, provenance, atomic writes, resume, interval-log I/O
