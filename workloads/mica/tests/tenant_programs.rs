//! Per-tenant GET programs (`naam_mica::tenant`): every tenant's patched object is its own
//! program, each answers with its tenant's salt through the engine, and an answer computed by
//! another tenant's program fails the asking tenant's check.

mod common;

use naam_engine::local::LocalHost;
use naam_engine::wire::Descriptors;
use naam_engine::{Code, Descriptor, FunctionId, Invoke, Perms, RequestId, Rkey, Status, TenantId};
use naam_mica::get::{GetArgs, GetReply, MicaRkeys};
use naam_mica::tenant::{
    SaltError, TENANT_GET_OBJECT, TENANT_GET_SECTION, TENANT_SALT_PLACEHOLDER, split_salt,
    tenant_get_object, tenant_salt,
};
use naam_vm::Program;

/// Tenants in the tests: enough that every pair must differ.
const TENANTS: u32 = 8;
const GET: FunctionId = FunctionId(1);

fn program(object: &[u8]) -> Program {
    let helpers = naam_engine::helpers::naam_helpers();
    Program::from_elf(object, TENANT_GET_SECTION, &helpers).expect("the patched object verifies")
}

#[test]
fn every_tenant_gets_its_own_program() {
    let salts: Vec<u64> = (0..TENANTS).map(tenant_salt).collect();
    for (i, a) in salts.iter().enumerate() {
        assert_ne!(*a, TENANT_SALT_PLACEHOLDER);
        assert!(
            salts[i + 1..].iter().all(|b| b != a),
            "salts differ: {salts:x?}"
        );
    }
    let objects: Vec<Vec<u8>> = salts
        .iter()
        .map(|&s| tenant_get_object(s).unwrap())
        .collect();
    let programs: Vec<Program> = objects.iter().map(|o| program(o)).collect();
    for (i, p) in programs.iter().enumerate() {
        for (j, q) in programs.iter().enumerate().skip(i + 1) {
            assert!(!p.same_code(q), "tenants {i} and {j} run the same code");
        }
        assert!(
            p.same_code(&program(&objects[i])),
            "loading is deterministic"
        );
        let placeholder = TENANT_SALT_PLACEHOLDER.to_le_bytes();
        let hi = &placeholder[4..];
        assert!(
            !objects[i].windows(4).any(|w| w == hi),
            "no placeholder word is left in tenant {i}'s object"
        );
    }
    assert_eq!(
        objects[0].len(),
        TENANT_GET_OBJECT.len(),
        "only immediates change"
    );
}

/// One table (the same records for every tenant) and a host holding every tenant's regions.
struct World {
    host: LocalHost,
    rkeys: Vec<MicaRkeys>,
    config: naam_mica::MicaConfig,
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
}

fn world(programs_of: impl Fn(u32) -> u32) -> World {
    let config = common::small_config(256);
    let mut regions = common::Regions::new(&config);
    let mut table = regions.format(config);
    let keys: Vec<Vec<u8>> = (0..32u64).map(|k| k.to_le_bytes().to_vec()).collect();
    let values: Vec<Vec<u8>> = (0..32u64).map(|k| vec![k as u8; 16]).collect();
    for (k, v) in keys.iter().zip(&values) {
        table.set(k, v).expect("set");
    }
    let mut host = LocalHost::new(naam_engine::RkeySecret([5; 16]));
    let mut rkeys = Vec::new();
    for t in 0..TENANTS {
        let tenant = TenantId(t + 1);
        let mut add = |bytes: &Vec<u8>| {
            host.add_region(tenant, bytes.clone(), Perms::READ)
                .expect("region")
                .rkey
                .0
        };
        rkeys.push(MicaRkeys {
            index: add(&regions.index),
            log: add(&regions.log),
            meta: add(&regions.meta),
        });
        let object = tenant_get_object(tenant_salt(programs_of(t))).unwrap();
        let code = Code::Elf {
            object: &object,
            name: TENANT_GET_SECTION,
        };
        host.register(tenant, GET, "mica_get", code)
            .expect("register");
    }
    World {
        host,
        rkeys,
        config,
        keys,
        values,
    }
}

impl World {
    /// GET `key` as tenant index `t`: the reply payload.
    fn get(&mut self, t: u32, key: &[u8]) -> Vec<u8> {
        let get = GetArgs::new(self.config, self.rkeys[t as usize], key);
        let mut args = Vec::new();
        get.encode(&mut args).expect("args");
        let first = get.initial_access();
        let read = Descriptor::read(Rkey(first.rkey), first.offset, first.len);
        let descriptors = Descriptors::from_slice(&[read]).expect("one");
        let invoke = Invoke::new_message(TenantId(t + 1), GET, RequestId(0), &args, descriptors);
        let reply = self.host.call(&invoke).expect("call");
        assert_eq!(reply.status, Status::Ok, "{reply:?}");
        reply.payload
    }
}

#[test]
fn each_program_answers_with_its_tenants_salt() {
    let mut w = world(|t| t);
    for t in 0..TENANTS {
        let (key, value) = (w.keys[t as usize].clone(), w.values[t as usize].clone());
        let hit = w.get(t, &key);
        assert_eq!(split_salt(&hit, tenant_salt(t)), Ok(GetReply::Hit(&value)));
        let miss = w.get(t, &999u64.to_le_bytes());
        assert_eq!(split_salt(&miss, tenant_salt(t)), Ok(GetReply::Miss));
        let other = tenant_salt((t + 1) % TENANTS);
        assert!(matches!(
            split_salt(&hit, other),
            Err(SaltError::OtherTenant { .. })
        ));
    }
}

#[test]
fn an_answer_from_another_tenants_program_is_detected() {
    // Tenant t's function slot holds tenant t+1's program (a mis-registration or mis-dispatch):
    // the data and rkeys are tenant t's, so only the salt can tell.
    let mut w = world(|t| (t + 1) % TENANTS);
    for t in 0..TENANTS {
        let key = w.keys[t as usize].clone();
        let reply = w.get(t, &key);
        let err = split_salt(&reply, tenant_salt(t)).unwrap_err();
        assert_eq!(
            err,
            SaltError::OtherTenant {
                found: tenant_salt((t + 1) % TENANTS),
                expected: tenant_salt(t),
            }
        );
        assert!(
            err.to_string().contains("another tenant's program"),
            "{err}"
        );
    }
}
