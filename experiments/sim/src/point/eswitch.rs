//! The eSwitch's decision, [`RuleTable::route`], with the rule lookup remembered per
//! `(tenant, function, flow)` until the table changes: the lookup hashes up to three keys per
//! datagram (≈ 3 % of a point's CPU time), while a point's datagrams carry a few dozen distinct
//! keys (flows are clients). Only the simulator's speed: the location is the table's.

use naam_engine::steer::steer_bucket;
use naam_engine::{FunctionId, Location, RequestId, RuleTable, Shares, TenantId};

/// Remembered lookups (direct-mapped: a key evicts the one in its slot).
const MEMO_SLOTS: usize = 1024;

/// One remembered lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Remembered {
    tenant: TenantId,
    function: FunctionId,
    flow: u32,
    shares: Shares,
}

/// The eSwitch's rule table and its remembered lookups.
#[derive(Debug)]
pub(super) struct Eswitch {
    rules: RuleTable,
    memo: Vec<Option<Remembered>>,
}

impl Eswitch {
    /// The eSwitch holding `rules`.
    pub(super) fn new(rules: RuleTable) -> Eswitch {
        Eswitch {
            rules,
            memo: vec![None; MEMO_SLOTS],
        }
    }

    /// Holds `rules` from now on (forgets every remembered lookup).
    pub(super) fn set(&mut self, rules: RuleTable) {
        self.rules = rules;
        self.memo.fill(None);
    }

    /// Where a message runs: [`RuleTable::route`] of the rules held.
    pub(super) fn route(
        &mut self,
        tenant: TenantId,
        function: FunctionId,
        flow: u32,
        request_id: RequestId,
    ) -> Location {
        let slot = (flow as usize)
            .wrapping_mul(31)
            .wrapping_add((function.0 as usize).wrapping_mul(7))
            .wrapping_add((tenant.0 as usize).wrapping_mul(131))
            % MEMO_SLOTS;
        let shares = match self.memo[slot] {
            Some(r) if r.tenant == tenant && r.function == function && r.flow == flow => r.shares,
            _ => {
                let shares = self.rules.lookup(tenant, function, flow);
                self.memo[slot] = Some(Remembered {
                    tenant,
                    function,
                    flow,
                    shares,
                });
                shares
            }
        };
        shares.location_of(steer_bucket(request_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use naam_engine::RuleKey;

    /// Seeded keys over a table with rules at every level, changed half-way: the remembered
    /// route is the table's.
    #[test]
    fn the_remembered_route_is_the_rule_tables() {
        let seed = 0xe5_u64;
        eprintln!("seed {seed}");
        let mut rng = crate::rng::SimRng::new(seed);
        let mut rules = RuleTable::new(Shares::HOST);
        let nic = Shares::NIC;
        let split = Shares::new(300, 500, 200).expect("shares");
        rules
            .set(RuleKey::function(TenantId(1), FunctionId(2)), nic)
            .expect("rule");
        let flow_key = RuleKey {
            tenant: Some(TenantId(2)),
            function: Some(FunctionId(1)),
            flow: Some(7),
        };
        rules.set(flow_key, split).expect("rule");
        let mut eswitch = Eswitch::new(rules.clone());
        for i in 0..200_000 {
            if i == 100_000 {
                rules
                    .set(RuleKey::function(TenantId(1), FunctionId(2)), split)
                    .expect("rule");
                eswitch.set(rules.clone());
            }
            let (tenant, function) = (
                TenantId((rng.next_u64() % 4) as u32),
                FunctionId((rng.next_u64() % 4) as u32),
            );
            let flow = (rng.next_u64() % 2048) as u32;
            let id = RequestId(rng.next_u64());
            assert_eq!(
                eswitch.route(tenant, function, flow, id),
                rules.route(tenant, function, flow, id),
                "{tenant:?} {function:?} flow {flow}"
            );
        }
    }
}
