//! The GET function's argument block, initial access and reply, as bytes.

use expect_test::expect;
use naam_mica::get::{ERR_ITEM_TRUNCATED, GET_ARGS_BYTES_MAX};
use naam_mica::hash::key_hash;
use naam_mica::layout::bucket_index;
use naam_mica::{
    Access, ArgsError, GetArgs, GetFunctionError, GetReply, MicaConfig, MicaRkeys, ReplyError,
    Slots,
};

fn config() -> MicaConfig {
    MicaConfig {
        buckets: 1024,
        slots: Slots::Seven,
        extra_buckets: 3,
        log_bytes: 1 << 20,
        item_bytes_max: 256,
        ..MicaConfig::new()
    }
}

const RKEYS: MicaRkeys = MicaRkeys {
    index: 0x11,
    log: 0x22,
    meta: 0x33,
};

fn words(bytes: &[u8]) -> String {
    bytes
        .chunks(8)
        .map(|w| w.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn argument_block_layout() {
    let mut out = Vec::new();
    let len = GetArgs::new(config(), RKEYS, b"user42")
        .encode(&mut out)
        .expect("encode");
    assert_eq!(len, out.len());
    assert_eq!(
        key_hash(b"user42"),
        u64::from_le_bytes(out[24..32].try_into().unwrap_or_default())
    );
    expect![[r#"
        1100000000000000
        2200000000000000
        3300000000000000
        32c4b02b900eaa29
        0000100000000000
        0004000003000000
        0001070600000000
        7573657234320000"#]]
    .assert_eq(&words(&out));
}

#[test]
fn hashed_forms_match_encode_and_initial_access() {
    for key in [&b"user42"[..], &[7u8; 8], &[1u8; 24]] {
        let args = GetArgs::new(config(), RKEYS, key);
        let (mut plain, mut hashed) = (Vec::new(), Vec::new());
        let plain_len = args.encode(&mut plain);
        let hashed_len = args.encode_hashed(key_hash(key), &mut hashed);
        assert_eq!(plain_len, hashed_len);
        assert_eq!(plain, hashed);
        assert_eq!(
            args.initial_access(),
            args.initial_access_hashed(key_hash(key))
        );
    }
}

#[test]
fn every_key_length_is_written_whole_and_zero_padded() {
    // `encode` copies the key in 8-byte words, the last one padded: check each length's block
    // byte for byte against one built the plain way, over a buffer left dirty by a longer one.
    let mut out = vec![0xee; GET_ARGS_BYTES_MAX + 9];
    for key_len in 0..=naam_mica::layout::KEY_BYTES_MAX {
        let key: Vec<u8> = (1..=key_len).map(|b| b as u8).collect();
        let config = MicaConfig {
            item_bytes_max: naam_mica::layout::ITEM_BYTES_LIMIT as u32,
            ..config()
        };
        let args = GetArgs::new(config, RKEYS, &key);
        let first = args.encode_with_access(&mut out).expect("encode");
        let mut plain = out[..naam_mica::get::ARGS_KEY].to_vec();
        plain.extend_from_slice(&key);
        plain.resize(naam_mica::get::ARGS_KEY + key_len.next_multiple_of(8), 0);
        assert_eq!(out, plain, "key of {key_len} bytes");
        assert_eq!(first, args.initial_access(), "key of {key_len} bytes");
    }
}

#[test]
fn encode_with_access_refuses_what_encode_refuses() {
    let mut out = Vec::new();
    for args in [
        GetArgs::new(config(), RKEYS, &[0; 193]),
        GetArgs {
            item_read_bytes: 16,
            ..GetArgs::new(config(), RKEYS, &[1; 17])
        },
    ] {
        assert_eq!(
            args.encode_with_access(&mut out).map(|_| ()),
            args.encode(&mut out).map(|_| ())
        );
        assert!(args.encode(&mut out).is_err());
    }
}

#[test]
fn initial_access_is_the_primary_bucket() {
    let args = GetArgs::new(config(), RKEYS, b"user42");
    let bucket = u64::from(bucket_index(key_hash(b"user42"), 1024));
    assert_eq!(
        args.initial_access(),
        Access {
            rkey: 0x11,
            offset: bucket * 64,
            len: 64
        }
    );
}

#[test]
fn longest_key_fits_and_bounds_are_checked() {
    let mut out = Vec::new();
    let key = [9u8; 192];
    assert_eq!(
        GetArgs::new(config(), RKEYS, &key).encode(&mut out),
        Ok(GET_ARGS_BYTES_MAX)
    );
    assert_eq!(
        GetArgs::new(config(), RKEYS, &[0; 193]).encode(&mut out),
        Err(ArgsError::KeyTooLong { key_bytes: 193 })
    );
    let short = GetArgs {
        item_read_bytes: 40,
        ..GetArgs::new(config(), RKEYS, &[1; 17])
    };
    assert_eq!(
        short.encode(&mut out),
        Err(ArgsError::ItemReadBytes {
            item_read_bytes: 40,
            min: 48,
            max: 256
        })
    );
    let long = GetArgs {
        item_read_bytes: 264,
        ..GetArgs::new(config(), RKEYS, b"k")
    };
    assert_eq!(
        long.encode(&mut out),
        Err(ArgsError::ItemReadBytes {
            item_read_bytes: 264,
            min: 32,
            max: 256
        })
    );
}

#[test]
fn replies_decode() {
    assert_eq!(GetReply::decode(&[0]), Ok(GetReply::Miss));
    assert_eq!(GetReply::decode(&[1]), Ok(GetReply::Hit(&[])));
    assert_eq!(GetReply::decode(&[1, 7, 8]), Ok(GetReply::Hit(&[7, 8])));
    assert_eq!(GetReply::decode(&[]), Err(ReplyError::Empty));
    assert_eq!(
        GetReply::decode(&[0, 1]),
        Err(ReplyError::MissWithPayload { extra_bytes: 1 })
    );
    assert_eq!(
        GetReply::decode(&[2]),
        Err(ReplyError::UnknownStatus { status: 2 })
    );
    assert_eq!(
        GetReply::decode(&[1; 1018]),
        Err(ReplyError::ValueTooLong { value_bytes: 1017 })
    );
    assert_eq!(
        GetFunctionError::from_code(ERR_ITEM_TRUNCATED),
        Some(GetFunctionError::ItemTruncated)
    );
    assert_eq!(GetFunctionError::from_code(2), None);
}

#[test]
fn a_native_server_reads_the_block_the_client_wrote() {
    use naam_mica::{GetRequest, ParseError};
    let key = b"user1234567";
    let mut block = Vec::new();
    GetArgs::new(config(), RKEYS, key)
        .encode(&mut block)
        .unwrap();
    let parsed = GetRequest::parse(&block).unwrap();
    assert_eq!(parsed.rkeys, RKEYS);
    assert_eq!(parsed.key, key);
    assert_eq!(parsed.key_hash, key_hash(key));
    assert_eq!(
        GetRequest::parse(&block[..block.len() - 1]),
        Err(ParseError::Short {
            len: block.len() - 1,
            need: block.len()
        })
    );
    let mut long = block.clone();
    long[naam_mica::get::ARGS_KEY_LEN] = 200;
    assert_eq!(
        GetRequest::parse(&long),
        Err(ParseError::KeyTooLong { key_bytes: 200 })
    );
    let mut reply = Vec::new();
    GetReply::Hit(b"v1").encode(&mut reply);
    assert_eq!(GetReply::decode(&reply), Ok(GetReply::Hit(&b"v1"[..])));
    GetReply::Miss.encode(&mut reply);
    assert_eq!(reply, [naam_mica::get::REPLY_MISS]);
}
