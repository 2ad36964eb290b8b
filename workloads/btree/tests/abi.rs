//! The C side (`bpf/btree_abi.h`, `bpf/btree_lookup.o`) agrees with the Rust side.

use naam_btree::{layout, lookup};
use naam_engine::abi::header_mismatches;

#[test]
fn abi_header_matches_layout() {
    let rust = [
        ("BTREE_NODE_BYTES_MIN", u64::from(layout::NODE_BYTES_MIN)),
        ("BTREE_NODE_BYTES_MAX", u64::from(layout::NODE_BYTES_MAX)),
        (
            "BTREE_NODE_BYTES_ALIGN",
            u64::from(layout::NODE_BYTES_ALIGN),
        ),
        (
            "BTREE_NODE_VERSION_OFFSET",
            layout::NODE_VERSION_OFFSET as u64,
        ),
        ("BTREE_NODE_LEVEL_OFFSET", layout::NODE_LEVEL_OFFSET as u64),
        ("BTREE_NODE_COUNT_OFFSET", layout::NODE_COUNT_OFFSET as u64),
        ("BTREE_NODE_LOW_OFFSET", layout::NODE_LOW_OFFSET as u64),
        ("BTREE_NODE_HIGH_OFFSET", layout::NODE_HIGH_OFFSET as u64),
        ("BTREE_NODE_NEXT_OFFSET", layout::NODE_NEXT_OFFSET as u64),
        ("BTREE_NODE_KEYS_OFFSET", layout::NODE_KEYS_OFFSET as u64),
        (
            "BTREE_NODE_OVERHEAD_BYTES",
            layout::NODE_OVERHEAD_BYTES as u64,
        ),
        (
            "BTREE_NODE_TRAILER_FROM_END",
            layout::NODE_TRAILER_FROM_END as u64,
        ),
        ("BTREE_HEIGHT_MAX", layout::HEIGHT_MAX as u64),
        ("BTREE_SEARCH_STEPS_MAX", layout::SEARCH_STEPS_MAX as u64),
        ("BTREE_ARGS_NODES_RKEY", lookup::ARGS_NODES_RKEY as u64),
        ("BTREE_ARGS_KEY", lookup::ARGS_KEY as u64),
        ("BTREE_ARGS_REGION_BYTES", lookup::ARGS_REGION_BYTES as u64),
        ("BTREE_ARGS_NODE_BYTES", lookup::ARGS_NODE_BYTES as u64),
        ("BTREE_ARGS_RESERVED", lookup::ARGS_RESERVED as u64),
        ("BTREE_ARGS_BYTES", lookup::ARGS_BYTES as u64),
        ("BTREE_REPLY_BYTES", lookup::REPLY_BYTES as u64),
        ("BTREE_REPLY_NOT_FOUND", u64::from(lookup::REPLY_NOT_FOUND)),
        ("BTREE_REPLY_FOUND", u64::from(lookup::REPLY_FOUND)),
        ("BTREE_ERR_ARGS", lookup::ERR_ARGS),
        ("BTREE_ERR_DATA", lookup::ERR_DATA),
        ("BTREE_ERR_STATE", lookup::ERR_STATE),
        ("BTREE_ERR_CORRUPT", lookup::ERR_CORRUPT),
        ("BTREE_ERR_HELPER", lookup::ERR_HELPER),
    ];
    let mismatches = header_mismatches(include_str!("../bpf/btree_abi.h"), &rust, true);
    assert!(
        mismatches.is_empty(),
        "the header and the Rust side disagree: {mismatches:#?}"
    );
}

#[test]
fn committed_object_holds_the_function_section() {
    let object = lookup::LOOKUP_OBJECT;
    assert_eq!(&object[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([object[18], object[19]]), 247, "EM_BPF");
    let name = lookup::LOOKUP_FUNCTION_SECTION.as_bytes();
    assert!(object.windows(name.len()).any(|w| w == name));
}
