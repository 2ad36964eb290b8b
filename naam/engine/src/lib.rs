//! NAAM sans-IO engine: wire format, regions, functions, continuation-style execution, steering
