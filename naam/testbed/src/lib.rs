//! Local testbed: spawns role processes on loopback or in network namespaces, tracked by PID
