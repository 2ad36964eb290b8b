//! MICA GETs in flight together through one `LocalHost` (`LocalHost::call_batch_into`, each
//! access prefetched at hand-out): every GET of a batch answers exactly as it does alone
//! (status, payload, steps, attempts, instructions), hits, misses and a mix, on the interpreter
//! and the JIT, for a batch of one up to `CALL_BATCH_MAX`.

mod common;

use naam_engine::local::{CALL_BATCH_MAX, CallReply, LocalHost};
use naam_engine::wire::Descriptors;
use naam_engine::{
    Backend, Code, Descriptor, FunctionId, Invoke, Perms, RequestId, Rkey, RkeySecret, Status,
    TenantId,
};
use naam_mica::get::{GET_FUNCTION_SECTION, GET_OBJECT, GetArgs, GetReply};
use naam_mica::{MicaConfig, MicaRkeys};

const TENANT: TenantId = TenantId(1);
const GET: FunctionId = FunctionId(1);
/// Keys stored (the keys from here to twice it are absent).
const STORED: u64 = 200;

/// A host holding a table of `STORED` records, `mica_get` loaded for `backend`.
fn host(backend: Backend) -> (LocalHost, MicaConfig, MicaRkeys) {
    let config = common::small_config(64);
    let mut regions = common::Regions::new(&config);
    let mut table = regions.format(config);
    for k in 0..STORED {
        table.set(&k.to_le_bytes(), &[k as u8; 24]).expect("set");
    }
    let mut host = LocalHost::new(RkeySecret([6; 16]));
    host.set_backend(backend);
    let mut add = |bytes: &Vec<u8>| {
        let info = host.add_region(TENANT, bytes.clone(), Perms::READ);
        info.expect("region").rkey.0
    };
    let rkeys = MicaRkeys {
        index: add(&regions.index),
        log: add(&regions.log),
        meta: add(&regions.meta),
    };
    let code = Code::Elf {
        object: GET_OBJECT,
        name: GET_FUNCTION_SECTION,
    };
    host.register(TENANT, GET, "mica_get", code)
        .expect("register");
    (host, config, rkeys)
}

/// The GET messages of `keys`: argument blocks, then the invokes borrowing them.
fn gets(config: MicaConfig, rkeys: MicaRkeys, keys: &[u64]) -> (Vec<Vec<u8>>, Vec<Descriptors>) {
    keys.iter()
        .map(|k| {
            let mut args = Vec::new();
            let first = GetArgs::new(config, rkeys, &k.to_le_bytes())
                .encode_with_access(&mut args)
                .expect("args");
            let read = Descriptor::read(Rkey(first.rkey), first.offset, first.len);
            (args, Descriptors::from_slice(&[read]).expect("one"))
        })
        .unzip()
}

#[test]
fn a_batch_of_gets_answers_as_each_get_alone() {
    for backend in Backend::ALL {
        let (mut host, config, rkeys) = host(backend);
        for size in [1, 8, 31, CALL_BATCH_MAX] {
            // Hits only, misses only, and every third key absent.
            let mixes: [&dyn Fn(u64) -> u64; 3] = [&|i| i % STORED, &|i| STORED + i, &|i| {
                if i % 3 == 2 { STORED + i } else { i }
            }];
            for key_of in mixes {
                let keys: Vec<u64> = (0..size as u64).map(|i| key_of(i * 7 + 3)).collect();
                let (args, descriptors) = gets(config, rkeys, &keys);
                let invokes: Vec<Invoke<'_>> = (args.iter().zip(&descriptors).enumerate())
                    .map(|(i, (a, d))| Invoke::new_message(TENANT, GET, RequestId(i as u64), a, *d))
                    .collect();
                let alone: Vec<CallReply> = invokes
                    .iter()
                    .map(|m| host.call(m).expect("call"))
                    .collect();
                let mut batch: Vec<CallReply> = (0..size).map(|_| CallReply::empty()).collect();
                host.call_batch_into(&invokes, &mut batch).expect("batch");
                assert_eq!(alone, batch, "{backend}: a batch of {size}");
                for (key, reply) in keys.iter().zip(&batch) {
                    assert_eq!(reply.status, Status::Ok);
                    let answer = GetReply::decode(&reply.payload).expect("a reply");
                    let expected = (*key < STORED).then(|| vec![*key as u8; 24]);
                    let got = match answer {
                        GetReply::Hit(value) => Some(value.to_vec()),
                        GetReply::Miss => None,
                    };
                    assert_eq!(got, expected, "{backend}: key {key}");
                }
            }
        }
    }
}
