//! The SET message: its argument block, its acknowledgement and its error codes. SET runs where
//! the table's single writer is (MICA's EREW/CREW): natively at the NAAM host, or inside the
//! owning actor of a native offload framework such as iPipe. Both read this one definition.
//!
//! Argument block: key length (u8), a zero byte, value length (u16 LE), the key, the value.

/// SET reply: stored.
pub const SET_STORED: u8 = 1;
/// SET error: malformed arguments.
pub const SET_ERR_ARGS: u32 = 16;
/// SET error: the table refused the item.
pub const SET_ERR_TABLE: u32 = 17;
/// Bytes before the key in the argument block.
pub const SET_ARGS_HEADER_BYTES: usize = 4;

/// Writes a SET argument block for `key` and `value` into `out` (cleared first). Keys longer than
/// 255 bytes or values longer than 65535 do not fit and are the caller's error (MICA's own
/// bounds are far below).
pub fn encode_set(key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    debug_assert!(key.len() <= usize::from(u8::MAX) && value.len() <= usize::from(u16::MAX));
    out.clear();
    out.push(key.len() as u8);
    out.push(0);
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Reads a SET argument block: `(key, value)`, or `None` if the lengths disagree with the block.
pub fn decode_set(args: &[u8]) -> Option<(&[u8], &[u8])> {
    let key_len = usize::from(*args.first()?);
    let value_len = usize::from(u16::from_le_bytes(args.get(2..4)?.try_into().ok()?));
    let key_end = SET_ARGS_HEADER_BYTES + key_len;
    let key = args.get(SET_ARGS_HEADER_BYTES..key_end)?;
    let value = args.get(key_end..key_end + value_len)?;
    (args.len() == key_end + value_len).then_some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_args_round_trip_and_reject_wrong_lengths() {
        let mut out = Vec::new();
        encode_set(b"key-1", b"value", &mut out);
        assert_eq!(decode_set(&out), Some((&b"key-1"[..], &b"value"[..])));
        assert_eq!(decode_set(&out[..out.len() - 1]), None, "truncated value");
        out.push(0);
        assert_eq!(decode_set(&out), None, "trailing byte");
        assert_eq!(decode_set(&[]), None, "empty");
    }
}
