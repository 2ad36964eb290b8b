//! The function registry: eBPF programs (verified once, at registration, by naam-vm) and
//! host-native functions, per tenant.
//!
//! Lookup is one hash probe on `(tenant, function)`, whatever the number of live functions, and
//! each entry carries a dense `slot` so executors keep per-function counters in a plain vector.

use std::sync::Arc;

use naam_vm::{Backend, Helpers, JitCache, JitCacheStats, LoadError, Program};

use crate::helpers::{StepCtx, naam_helpers};
use crate::ids::{FunctionId, IdMap, TenantId};

/// Live functions in one table.
pub const FUNCTIONS_MAX: usize = 1 << 20;
/// Live functions of one tenant.
pub const FUNCTIONS_PER_TENANT_MAX: usize = 16_384;
/// Bytes of a function's name.
pub const FUNCTION_NAME_BYTES_MAX: usize = 64;

/// What runs when a message names the function.
#[derive(Debug)]
pub enum FunctionBody {
    /// Verified eBPF: runs at every location.
    Ebpf(Program),
    /// Native code of the host role (e.g. MICA SET, which allocates in the log). Runs only at the
    /// host, where the data's owner is; the executor hands such messages to the role
    /// ([`crate::exec::NativeRequest`]).
    HostNative,
}

/// A registered function.
#[derive(Debug)]
pub struct FunctionEntry {
    /// Owner.
    pub tenant: TenantId,
    /// Id within the tenant.
    pub id: FunctionId,
    /// Name (for logs and results).
    pub name: String,
    /// Code.
    pub body: FunctionBody,
    /// Dense index for per-function counters (never reused while the table lives).
    pub slot: u32,
}

/// Why a function cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The bytecode failed to load or verify.
    #[error("function {name:?} of tenant {tenant:?}: {source}")]
    Load {
        /// The tenant.
        tenant: TenantId,
        /// The function's name.
        name: String,
        /// What naam-vm said.
        #[source]
        source: LoadError,
    },
    /// `(tenant, id)` is already registered.
    #[error("tenant {tenant:?} already has function {id:?}")]
    Duplicate {
        /// The tenant.
        tenant: TenantId,
        /// The id.
        id: FunctionId,
    },
    /// A limit was reached.
    #[error("too many functions: {what} limit {max}")]
    TooMany {
        /// Which limit.
        what: &'static str,
        /// Its value.
        max: usize,
    },
    /// Name empty or longer than [`FUNCTION_NAME_BYTES_MAX`].
    #[error("function name {name:?} must be 1..={max} bytes")]
    BadName {
        /// The name.
        name: String,
        /// [`FUNCTION_NAME_BYTES_MAX`].
        max: usize,
    },
    /// No such function.
    #[error("tenant {tenant:?} has no function {id:?}")]
    NotFound {
        /// The tenant.
        tenant: TenantId,
        /// The id.
        id: FunctionId,
    },
}

/// Where a function's bytecode comes from.
#[derive(Debug, Clone, Copy)]
pub enum Code<'a> {
    /// Raw instructions (8 bytes each).
    Raw(&'a [u8]),
    /// An ELF object from `clang -target bpf`, and the section or symbol name to load.
    Elf {
        /// The object file's bytes.
        object: &'a [u8],
        /// Section (`naam/mica_get`) or symbol (`mica_get`).
        name: &'a str,
    },
}

/// The functions of every tenant on one server (shared by its executors through an `Arc`).
/// Cloning is cheap: entries are shared (`Arc`), only the maps are copied.
#[derive(Debug, Clone)]
pub struct FunctionTable {
    helpers: Arc<Helpers<StepCtx>>,
    /// The backend eBPF functions are loaded for (per table, so per location).
    backend: Backend,
    entries: IdMap<(TenantId, FunctionId), Arc<FunctionEntry>>,
    per_tenant: IdMap<TenantId, usize>,
    next_slot: u32,
    /// Native code shared by every function of equal ops and entry (one compile for a function
    /// registered by hundreds of tenants); weak, so unregistering the last holder frees it.
    jit_cache: JitCache,
}

impl Default for FunctionTable {
    fn default() -> Self {
        FunctionTable::new()
    }
}

impl FunctionTable {
    /// An empty table with the NAAM helpers.
    pub fn new() -> FunctionTable {
        FunctionTable {
            helpers: Arc::new(naam_helpers()),
            backend: Backend::Interpreter,
            entries: IdMap::default(),
            per_tenant: IdMap::default(),
            next_slot: 0,
            jit_cache: JitCache::new(),
        }
    }

    /// The same table loading its eBPF functions for `backend` from now on (a location's
    /// choice: `interpreter` or `jit`). A function that cannot run on the JIT runs interpreted;
    /// [`Program::jit_error`] says why.
    pub fn with_backend(mut self, backend: Backend) -> FunctionTable {
        self.backend = backend;
        self
    }

    /// The backend eBPF functions are loaded for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The helpers functions run with.
    pub fn helpers(&self) -> &Arc<Helpers<StepCtx>> {
        &self.helpers
    }

    /// Loads, verifies and registers an eBPF function.
    pub fn register_ebpf(
        &mut self,
        tenant: TenantId,
        id: FunctionId,
        name: &str,
        code: Code<'_>,
    ) -> Result<(), FunctionError> {
        self.check_room(tenant, id, name)?;
        let (helpers, backend, cache) = (&self.helpers, self.backend, &mut self.jit_cache);
        let loaded = match code {
            Code::Raw(bytes) => Program::from_raw_cached(bytes, helpers, backend, cache),
            Code::Elf {
                object,
                name: section,
            } => Program::from_elf_cached(object, section, helpers, backend, cache),
        };
        let program = loaded.map_err(|source| FunctionError::Load {
            tenant,
            name: name.to_string(),
            source,
        })?;
        self.insert(tenant, id, name, FunctionBody::Ebpf(program));
        Ok(())
    }

    /// Registers a host-native function (its code lives in the host role).
    pub fn register_host_native(
        &mut self,
        tenant: TenantId,
        id: FunctionId,
        name: &str,
    ) -> Result<(), FunctionError> {
        self.check_room(tenant, id, name)?;
        self.insert(tenant, id, name, FunctionBody::HostNative);
        Ok(())
    }

    /// Removes a function; messages already running keep their `Arc` and finish.
    pub fn unregister(&mut self, tenant: TenantId, id: FunctionId) -> Result<(), FunctionError> {
        self.entries
            .remove(&(tenant, id))
            .ok_or(FunctionError::NotFound { tenant, id })?;
        if let Some(count) = self.per_tenant.get_mut(&tenant) {
            *count = count.saturating_sub(1);
        }
        Ok(())
    }

    /// The function `(tenant, id)`.
    pub fn get(&self, tenant: TenantId, id: FunctionId) -> Option<&Arc<FunctionEntry>> {
        self.entries.get(&(tenant, id))
    }

    /// Live functions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no function is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Slots handed out so far (size of per-function counter vectors).
    pub fn slot_count(&self) -> usize {
        self.next_slot as usize
    }

    /// Every live function.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<FunctionEntry>> {
        self.entries.values()
    }

    /// JIT compiles this table ran and the registrations that reused earlier code instead (all
    /// zero unless functions were registered for [`Backend::Jit`] with the JIT built).
    pub fn jit_cache_stats(&self) -> JitCacheStats {
        self.jit_cache.stats()
    }

    /// What the table's eBPF functions run on, in words: `jit`, `interpreter`, or
    /// `interpreter (jit requested: <why not>)`, with the number of functions on each tier when
    /// they differ.
    pub fn describe_tiers(&self) -> String {
        let (mut jit, mut interpreted, mut why_not) = (0usize, 0usize, None);
        for entry in self.iter() {
            if let FunctionBody::Ebpf(program) = &entry.body {
                if program.tier() == naam_vm::Tier::Jit {
                    jit += 1;
                } else {
                    interpreted += 1;
                }
                if why_not.is_none() {
                    why_not = program.jit_error().map(|e| e.to_string());
                }
            }
        }
        match (jit, interpreted, why_not) {
            (0, _, Some(why)) => format!("interpreter (jit requested: {why})"),
            (0, _, None) => "interpreter".to_string(),
            (_, 0, _) => "jit".to_string(),
            (jit, interpreted, why) => format!(
                "jit for {jit} functions, interpreter for {interpreted} ({})",
                why.unwrap_or_default()
            ),
        }
    }

    fn check_room(
        &self,
        tenant: TenantId,
        id: FunctionId,
        name: &str,
    ) -> Result<(), FunctionError> {
        if name.is_empty() || name.len() > FUNCTION_NAME_BYTES_MAX {
            return Err(FunctionError::BadName {
                name: name.to_string(),
                max: FUNCTION_NAME_BYTES_MAX,
            });
        }
        if self.entries.contains_key(&(tenant, id)) {
            return Err(FunctionError::Duplicate { tenant, id });
        }
        if self.entries.len() >= FUNCTIONS_MAX || self.next_slot as usize >= FUNCTIONS_MAX {
            return Err(FunctionError::TooMany {
                what: "functions per table",
                max: FUNCTIONS_MAX,
            });
        }
        if self.per_tenant.get(&tenant).copied().unwrap_or(0) >= FUNCTIONS_PER_TENANT_MAX {
            return Err(FunctionError::TooMany {
                what: "functions per tenant",
                max: FUNCTIONS_PER_TENANT_MAX,
            });
        }
        Ok(())
    }

    fn insert(&mut self, tenant: TenantId, id: FunctionId, name: &str, body: FunctionBody) {
        let slot = self.next_slot;
        self.next_slot += 1;
        let entry = FunctionEntry {
            tenant,
            id,
            name: name.to_string(),
            body,
            slot,
        };
        self.entries.insert((tenant, id), Arc::new(entry));
        *self.per_tenant.entry(tenant).or_insert(0) += 1;
    }
}
