//! UDP transport for NAAM frames: batched send/receive, busy-poll or blocking
