//! Fuzzes the wire decoder: any byte string decodes or is refused, never panics, and whatever
//! decodes re-encodes to a frame that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use naam_engine::wire::Frame;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(frame) = Frame::decode(bytes) {
        let mut again = Vec::new();
        frame.encode(&mut again).expect("a decoded frame re-encodes");
        assert_eq!(Frame::decode(&again), Ok(frame));
    }
});
