//! The lookup function's argument block, initial access and reply, as bytes.

use expect_test::expect;
use naam_btree::lookup::ERR_CORRUPT;
use naam_btree::{
    Access, ArgsError, BTree, BTreeConfig, LookupArgs, LookupFunctionError, LookupReply, ReplyError,
};

#[test]
fn arguments_and_first_access_come_from_the_tree() {
    let config = BTreeConfig {
        node_bytes: 256,
        nodes_max: 8,
    };
    let mut region = vec![0u8; 256 * 8];
    let pairs: Vec<(u64, u64)> = (0..30).map(|i| (i, i * i)).collect();
    let tree = BTree::bulk_load(config, &mut region, &pairs, 100).expect("load");
    let args = LookupArgs::for_tree(&tree.reader(), 0xabc, 17);
    assert_eq!(
        args.initial_access(),
        Access {
            rkey: 0xabc,
            offset: tree.superblock().root_offset,
            len: 256
        }
    );
    let bytes = args.encode().expect("encode");
    let words: Vec<String> = bytes
        .chunks(8)
        .map(|w| w.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    expect!["bc0a000000000000 1100000000000000 0008000000000000 0001000000000000"]
        .assert_eq(&words.join(" "));
}

#[test]
fn impossible_arguments_are_refused() {
    let args = LookupArgs {
        nodes_rkey: 1,
        key: 2,
        region_bytes: 4096,
        node_bytes: 1024,
        root_offset: 1024,
    };
    assert!(args.encode().is_ok());
    assert_eq!(
        LookupArgs {
            node_bytes: 64,
            ..args
        }
        .encode(),
        Err(ArgsError::NodeBytes { node_bytes: 64 })
    );
    assert_eq!(
        LookupArgs {
            root_offset: 3072 + 8,
            ..args
        }
        .encode(),
        Err(ArgsError::Region {
            root_offset: 3080,
            region_bytes: 4096
        })
    );
    assert_eq!(
        LookupArgs {
            root_offset: 0,
            ..args
        }
        .encode(),
        Err(ArgsError::Region {
            root_offset: 0,
            region_bytes: 4096
        })
    );
}

#[test]
fn replies_decode() {
    let mut found = [0u8; 16];
    found[0] = 1;
    found[8..].copy_from_slice(&42u64.to_le_bytes());
    assert_eq!(LookupReply::decode(&found), Ok(LookupReply::Found(42)));
    assert_eq!(LookupReply::decode(&[0; 16]), Ok(LookupReply::NotFound));
    assert_eq!(
        LookupReply::decode(&[0; 9]),
        Err(ReplyError::Length { len: 9 })
    );
    let mut bad = [0u8; 16];
    bad[0] = 2;
    assert!(matches!(
        LookupReply::decode(&bad),
        Err(ReplyError::Malformed {
            reason: "unknown status"
        })
    ));
    bad[0] = 0;
    bad[8] = 1;
    assert!(matches!(
        LookupReply::decode(&bad),
        Err(ReplyError::Malformed { .. })
    ));
    // Each padding byte is checked, whatever the status.
    for status in [0, 1] {
        for at in 1..8 {
            let mut padded = [0u8; 16];
            padded[0] = status;
            padded[at] = 0x80;
            assert_eq!(
                LookupReply::decode(&padded),
                Err(ReplyError::Malformed {
                    reason: "padding bytes are not zero"
                }),
                "status {status}, padding byte {at}"
            );
        }
    }
    assert_eq!(
        LookupFunctionError::from_code(ERR_CORRUPT),
        Some(LookupFunctionError::Corrupt)
    );
    assert_eq!(LookupFunctionError::from_code(1), None);
}

#[test]
fn a_native_server_reads_the_block_the_client_wrote() {
    use naam_btree::{LookupRequest, ParseError};
    let args = LookupArgs {
        nodes_rkey: 0xabc,
        key: 17,
        region_bytes: 1 << 16,
        node_bytes: 256,
        root_offset: 256,
    };
    let block = args.encode().unwrap();
    let parsed = LookupRequest::parse(&block).unwrap();
    assert_eq!(
        (
            parsed.nodes_rkey,
            parsed.key,
            parsed.region_bytes,
            parsed.node_bytes
        ),
        (0xabc, 17, 1 << 16, 256)
    );
    assert_eq!(
        LookupRequest::parse(&block[..31]),
        Err(ParseError::Short { len: 31 })
    );
    let mut odd = block;
    odd[24..28].copy_from_slice(&300u32.to_le_bytes());
    assert_eq!(
        LookupRequest::parse(&odd),
        Err(ParseError::NodeBytes { node_bytes: 300 })
    );
    for reply in [LookupReply::Found(42), LookupReply::NotFound] {
        assert_eq!(LookupReply::decode(&reply.encode()), Ok(reply));
    }
}
