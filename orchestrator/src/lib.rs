//! SSH orchestrator for real testbeds (clients, hosts, BlueField-2 NICs; CloudLab)
