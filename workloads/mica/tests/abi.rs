//! The C side (`bpf/mica_abi.h`, `bpf/mica_get.o`) agrees with the Rust side.

use naam_engine::abi::header_mismatches;
use naam_mica::{get, layout};

#[test]
fn abi_header_matches_layout() {
    let rust = [
        (
            "MICA_BUCKET_HEADER_BYTES",
            layout::BUCKET_HEADER_BYTES as u64,
        ),
        (
            "MICA_BUCKET_VERSION_OFFSET",
            layout::BUCKET_VERSION_OFFSET as u64,
        ),
        (
            "MICA_BUCKET_NEXT_EXTRA_OFFSET",
            layout::BUCKET_NEXT_EXTRA_OFFSET as u64,
        ),
        ("MICA_ENTRY_BYTES", layout::ENTRY_BYTES as u64),
        ("MICA_SLOTS_SMALL", naam_mica::Slots::Seven.count() as u64),
        ("MICA_SLOTS_LARGE", naam_mica::Slots::Fifteen.count() as u64),
        ("MICA_TAG_SHIFT", u64::from(layout::TAG_SHIFT)),
        ("MICA_OFFSET_BITS", u64::from(layout::OFFSET_BITS)),
        (
            "MICA_BUCKET_HASH_SHIFT",
            u64::from(layout::BUCKET_HASH_SHIFT),
        ),
        ("MICA_CHAIN_HOPS_MAX", layout::CHAIN_HOPS_MAX as u64),
        ("MICA_ITEM_HEADER_BYTES", layout::ITEM_HEADER_BYTES as u64),
        ("MICA_ITEM_SIZE_OFFSET", layout::ITEM_SIZE_OFFSET as u64),
        (
            "MICA_ITEM_KV_LENGTH_OFFSET",
            layout::ITEM_KV_LENGTH_OFFSET as u64,
        ),
        ("MICA_ITEM_EXPIRE_OFFSET", layout::ITEM_EXPIRE_OFFSET as u64),
        (
            "MICA_ITEM_KEY_HASH_OFFSET",
            layout::ITEM_KEY_HASH_OFFSET as u64,
        ),
        ("MICA_KEY_LENGTH_SHIFT", u64::from(layout::KEY_LENGTH_SHIFT)),
        (
            "MICA_VALUE_LENGTH_MASK",
            u64::from(layout::VALUE_LENGTH_MASK),
        ),
        ("MICA_KEY_BYTES_MAX", layout::KEY_BYTES_MAX as u64),
        ("MICA_VALUE_BYTES_MAX", layout::VALUE_BYTES_MAX as u64),
        ("MICA_LOG_BYTES_MAX", naam_mica::config::LOG_BYTES_MAX),
        ("MICA_META_TAIL_OFFSET", layout::META_TAIL_OFFSET as u64),
        (
            "MICA_TENANT_SALT_PLACEHOLDER",
            naam_mica::tenant::TENANT_SALT_PLACEHOLDER,
        ),
        (
            "MICA_TENANT_SALT_BYTES",
            naam_mica::tenant::TENANT_SALT_BYTES as u64,
        ),
        ("MICA_ARGS_INDEX_RKEY", get::ARGS_INDEX_RKEY as u64),
        ("MICA_ARGS_LOG_RKEY", get::ARGS_LOG_RKEY as u64),
        ("MICA_ARGS_META_RKEY", get::ARGS_META_RKEY as u64),
        ("MICA_ARGS_KEY_HASH", get::ARGS_KEY_HASH as u64),
        ("MICA_ARGS_LOG_BYTES", get::ARGS_LOG_BYTES as u64),
        ("MICA_ARGS_BUCKETS", get::ARGS_BUCKETS as u64),
        ("MICA_ARGS_EXTRA_BUCKETS", get::ARGS_EXTRA_BUCKETS as u64),
        (
            "MICA_ARGS_ITEM_READ_BYTES",
            get::ARGS_ITEM_READ_BYTES as u64,
        ),
        ("MICA_ARGS_SLOTS", get::ARGS_SLOTS as u64),
        ("MICA_ARGS_KEY_LEN", get::ARGS_KEY_LEN as u64),
        ("MICA_ARGS_RESERVED", get::ARGS_RESERVED as u64),
        ("MICA_ARGS_KEY", get::ARGS_KEY as u64),
        ("MICA_REPLY_MISS", u64::from(get::REPLY_MISS)),
        ("MICA_REPLY_HIT", u64::from(get::REPLY_HIT)),
        ("MICA_ERR_ARGS", get::ERR_ARGS),
        ("MICA_ERR_DATA", get::ERR_DATA),
        ("MICA_ERR_STATE", get::ERR_STATE),
        ("MICA_ERR_ITEM_TRUNCATED", get::ERR_ITEM_TRUNCATED),
        ("MICA_ERR_HELPER", get::ERR_HELPER),
    ];
    let mismatches = header_mismatches(include_str!("../bpf/mica_abi.h"), &rust, true);
    assert!(
        mismatches.is_empty(),
        "the header and the Rust side disagree: {mismatches:#?}"
    );
}

#[test]
fn committed_object_holds_the_function_section() {
    let object = get::GET_OBJECT;
    assert_eq!(&object[..4], b"\x7fELF", "an ELF object");
    assert_eq!(object[4], 2, "64-bit");
    let e_machine = u16::from_le_bytes([object[18], object[19]]);
    assert_eq!(e_machine, 247, "EM_BPF");
    let name = get::GET_FUNCTION_SECTION.as_bytes();
    assert!(
        object.windows(name.len()).any(|w| w == name),
        "section {}",
        get::GET_FUNCTION_SECTION
    );
}
