//! Cell-style B-tree with fixed-size versioned nodes in NAAM regions, with its NAAM lookup function (C, eBPF)
