//! MICA lossy hash index and circular log laid out in NAAM regions, with its NAAM GET function (C, eBPF)
