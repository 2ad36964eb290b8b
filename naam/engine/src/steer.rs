//! Steering: the rule table the eSwitch consults per message, and the per-message decision.
//!
//! A rule gives the shares (permille) of messages to run at the host, the NIC and the client.
//! Each message falls in one of 1000 buckets by a hash of its request id ([`steer_bucket`]);
//! buckets `[0, client)` run at the client, `[client, client + nic)` at the NIC, the rest at the
//! host. The client applies its share locally (it learns it from reply hints or its own policy),
//! so the server sees only buckets `≥ client` and splits them between host and NIC exactly as the
//! rule says. The same arithmetic is implemented by the kernel eSwitch program (C), so user-space
//! and kernel steering agree message by message.
//!
//! Rules are looked up most specific first: `(tenant, function, flow)`, `(tenant, function)`,
//! `(tenant)`, then the default.

use std::collections::HashMap;
use std::fmt;

use crate::ids::{FunctionId, Location, RequestId, TenantId};

/// Buckets a message can fall in.
pub const BUCKETS: u16 = 1000;
/// Rules one table may hold (besides the default).
pub const RULES_MAX: usize = 65_536;
/// Multiplier of [`steer_bucket`] (2^64 / φ, Knuth's multiplicative hashing).
pub const STEER_HASH_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// Shares of messages per location, in permille; always sum to 1000.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shares {
    host: u16,
    nic: u16,
    client: u16,
}

impl fmt::Debug for Shares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "host={} nic={} client={}",
            self.host, self.nic, self.client
        )
    }
}

/// Shares that do not sum to 1000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("shares host={host} nic={nic} client={client} must sum to {BUCKETS}")]
pub struct SharesError {
    /// Host permille given.
    pub host: u16,
    /// NIC permille given.
    pub nic: u16,
    /// Client permille given.
    pub client: u16,
}

impl Shares {
    /// Everything at the host.
    pub const HOST: Shares = Shares {
        host: BUCKETS,
        nic: 0,
        client: 0,
    };
    /// Everything at the NIC.
    pub const NIC: Shares = Shares {
        host: 0,
        nic: BUCKETS,
        client: 0,
    };
    /// Everything at the client.
    pub const CLIENT: Shares = Shares {
        host: 0,
        nic: 0,
        client: BUCKETS,
    };

    /// Shares in permille; they must sum to 1000.
    pub fn new(host: u16, nic: u16, client: u16) -> Result<Shares, SharesError> {
        let sum = u32::from(host) + u32::from(nic) + u32::from(client);
        if sum != u32::from(BUCKETS) {
            return Err(SharesError { host, nic, client });
        }
        Ok(Shares { host, nic, client })
    }

    /// Permille of one location.
    pub fn of(self, location: Location) -> u16 {
        match location {
            Location::Host => self.host,
            Location::Nic => self.nic,
            Location::Client => self.client,
        }
    }

    /// Where a message in `bucket` runs.
    pub fn location_of(self, bucket: u16) -> Location {
        if bucket < self.client {
            Location::Client
        } else if bucket < self.client + self.nic {
            Location::Nic
        } else {
            Location::Host
        }
    }

    /// Moves up to `permille` from `from` to `to` (less if `from` has less).
    pub fn shift(self, from: Location, to: Location, permille: u16) -> Shares {
        let moved = permille.min(self.of(from));
        let mut out = self;
        *out.slot(from) -= moved;
        *out.slot(to) += moved;
        out
    }

    fn slot(&mut self, location: Location) -> &mut u16 {
        match location {
            Location::Host => &mut self.host,
            Location::Nic => &mut self.nic,
            Location::Client => &mut self.client,
        }
    }
}

/// The bucket (0..1000) of a message: Knuth multiplicative hash of the request id, top 32 bits,
/// modulo 1000. Also computed by the kernel eSwitch program; keep the two in step.
pub fn steer_bucket(request_id: RequestId) -> u16 {
    ((request_id.0.wrapping_mul(STEER_HASH_MULTIPLIER) >> 32) % u64::from(BUCKETS)) as u16
}

/// The steering key of one message: what the eSwitch decides on. A hardware eSwitch matches
/// packet headers, not payloads, so the client carries the key in a header it sets per message
/// (naam-net maps it to the UDP source port); every eSwitch implementation decides from the key
/// alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SteerKey {
    /// The message's bucket (`0..BUCKETS`, [`steer_bucket`] of its request id): it runs where
    /// the shares put that bucket.
    Bucket(u16),
    /// Pinned to the host whatever the shares: host-native functions (writes run where the data
    /// lives).
    Pinned,
}

impl SteerKey {
    /// The key of a message: pinned when it must run at the host, else its request's bucket.
    pub fn of(request_id: RequestId, host_only: bool) -> SteerKey {
        SteerKey::of_bucket(steer_bucket(request_id), host_only)
    }

    /// [`SteerKey::of`] for a caller that already holds the request's `bucket`
    /// ([`steer_bucket`]).
    #[inline]
    pub fn of_bucket(bucket: u16, host_only: bool) -> SteerKey {
        if host_only {
            SteerKey::Pinned
        } else {
            SteerKey::Bucket(bucket)
        }
    }

    /// Where a message with this key runs under `shares`.
    pub fn location(self, shares: Shares) -> Location {
        match self {
            SteerKey::Bucket(bucket) => shares.location_of(bucket),
            SteerKey::Pinned => Location::Host,
        }
    }
}

/// What a rule applies to; `None` fields are wildcards. A flow rule needs a function, and a
/// function rule needs a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleKey {
    /// Tenant, or every tenant.
    pub tenant: Option<TenantId>,
    /// Function, or every function of the tenant.
    pub function: Option<FunctionId>,
    /// Flow, or every flow of the function.
    pub flow: Option<u32>,
}

impl RuleKey {
    /// The default rule.
    pub const DEFAULT: RuleKey = RuleKey {
        tenant: None,
        function: None,
        flow: None,
    };

    /// A rule for one function of one tenant.
    pub fn function(tenant: TenantId, function: FunctionId) -> RuleKey {
        RuleKey {
            tenant: Some(tenant),
            function: Some(function),
            flow: None,
        }
    }

    fn is_well_formed(&self) -> bool {
        (self.flow.is_none() || self.function.is_some())
            && (self.function.is_none() || self.tenant.is_some())
    }
}

/// A rule key with a wildcard below a concrete field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// e.g. a flow without a function.
    #[error("rule key {key:?} has a wildcard above a concrete field")]
    MalformedKey {
        /// The key.
        key: RuleKey,
    },
    /// [`RULES_MAX`] rules already.
    #[error("rule table full ({max} rules)")]
    TableFull {
        /// [`RULES_MAX`].
        max: usize,
    },
}

/// The eSwitch's rule table.
#[derive(Clone, Debug)]
pub struct RuleTable {
    default: Shares,
    rules: HashMap<RuleKey, Shares>,
    version: u64,
}

impl RuleTable {
    /// A table whose default rule is `default`.
    pub fn new(default: Shares) -> RuleTable {
        RuleTable {
            default,
            rules: HashMap::new(),
            version: 0,
        }
    }

    /// The shares that apply to a message.
    pub fn lookup(&self, tenant: TenantId, function: FunctionId, flow: u32) -> Shares {
        if self.rules.is_empty() {
            return self.default;
        }
        let keys = [
            RuleKey {
                tenant: Some(tenant),
                function: Some(function),
                flow: Some(flow),
            },
            RuleKey::function(tenant, function),
            RuleKey {
                tenant: Some(tenant),
                function: None,
                flow: None,
            },
        ];
        keys.iter()
            .find_map(|k| self.rules.get(k))
            .copied()
            .unwrap_or(self.default)
    }

    /// Where a message runs.
    pub fn route(
        &self,
        tenant: TenantId,
        function: FunctionId,
        flow: u32,
        request_id: RequestId,
    ) -> Location {
        self.lookup(tenant, function, flow)
            .location_of(steer_bucket(request_id))
    }

    /// Sets a rule (the default for [`RuleKey::DEFAULT`]); returns the shares it replaces.
    pub fn set(&mut self, key: RuleKey, shares: Shares) -> Result<Shares, RuleError> {
        if !key.is_well_formed() {
            return Err(RuleError::MalformedKey { key });
        }
        self.version += 1;
        if key == RuleKey::DEFAULT {
            return Ok(std::mem::replace(&mut self.default, shares));
        }
        if self.rules.len() >= RULES_MAX && !self.rules.contains_key(&key) {
            return Err(RuleError::TableFull { max: RULES_MAX });
        }
        Ok(self.rules.insert(key, shares).unwrap_or(self.default))
    }

    /// The current default shares.
    pub fn default_shares(&self) -> Shares {
        self.default
    }

    /// Every non-default rule.
    pub fn rules(&self) -> impl Iterator<Item = (&RuleKey, &Shares)> {
        self.rules.iter()
    }

    /// Bumped by every change; lets a mirror (kernel map, NIC) know it is stale.
    pub fn version(&self) -> u64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    /// Routes 10,000 consecutive request ids and renders the count per location.
    fn check_route(table: &RuleTable, tenant: u32, function: u32, flow: u32, expect: Expect) {
        let mut counts = [0u32; 3];
        for id in 0..10_000u64 {
            let at = table.route(TenantId(tenant), FunctionId(function), flow, RequestId(id));
            counts[at.index()] += 1;
        }
        expect.assert_eq(&format!(
            "host={} nic={} client={}",
            counts[0], counts[1], counts[2]
        ));
    }

    #[test]
    fn buckets_are_uniform_enough() {
        let mut hist = [0u32; BUCKETS as usize];
        for id in 0..1_000_000u64 {
            hist[usize::from(steer_bucket(RequestId(id)))] += 1;
        }
        let (min, max) = (hist.iter().min().unwrap(), hist.iter().max().unwrap());
        // 1000 per bucket expected; a fair hash stays within a few standard deviations (~32).
        assert!(*min > 850 && *max < 1150, "bucket counts {min}..{max}");
    }

    #[test]
    fn most_specific_rule_wins() {
        let mut t = RuleTable::new(Shares::HOST);
        t.set(
            RuleKey {
                tenant: Some(TenantId(1)),
                function: None,
                flow: None,
            },
            Shares::new(500, 500, 0).unwrap(),
        )
        .unwrap();
        t.set(RuleKey::function(TenantId(1), FunctionId(7)), Shares::NIC)
            .unwrap();
        t.set(
            RuleKey {
                tenant: Some(TenantId(1)),
                function: Some(FunctionId(7)),
                flow: Some(3),
            },
            Shares::new(0, 300, 700).unwrap(),
        )
        .unwrap();
        check_route(&t, 2, 7, 3, expect!["host=10000 nic=0 client=0"]);
        check_route(&t, 1, 8, 0, expect!["host=5002 nic=4998 client=0"]);
        check_route(&t, 1, 7, 0, expect!["host=0 nic=10000 client=0"]);
        check_route(&t, 1, 7, 3, expect!["host=0 nic=3001 client=6999"]);
    }

    #[test]
    fn steer_keys_follow_the_bucket_unless_pinned() {
        let shares = Shares::new(0, 1000, 0).unwrap();
        let id = RequestId(42);
        assert_eq!(SteerKey::of(id, false), SteerKey::Bucket(steer_bucket(id)));
        assert_eq!(SteerKey::of(id, false).location(shares), Location::Nic);
        assert_eq!(SteerKey::of(id, true), SteerKey::Pinned);
        assert_eq!(SteerKey::Pinned.location(shares), Location::Host);
    }

    #[test]
    fn malformed_keys_are_refused() {
        let mut t = RuleTable::new(Shares::HOST);
        let key = RuleKey {
            tenant: None,
            function: Some(FunctionId(1)),
            flow: None,
        };
        assert_eq!(
            t.set(key, Shares::NIC),
            Err(RuleError::MalformedKey { key })
        );
    }

    #[test]
    fn shares_must_sum_to_1000_and_shift_saturates() {
        assert!(Shares::new(500, 499, 0).is_err());
        let s = Shares::HOST.shift(Location::Host, Location::Nic, 300);
        assert_eq!(s, Shares::new(700, 300, 0).unwrap());
        assert_eq!(
            s.shift(Location::Nic, Location::Client, 999),
            Shares::new(700, 0, 300).unwrap()
        );
    }
}
