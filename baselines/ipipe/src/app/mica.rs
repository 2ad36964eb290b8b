//! The MICA actor: a MICA table in three objects (index, log, meta) laid out byte for byte by
//! naam-mica, read by MICA's native GET and written by its single writer.

use naam_mica::get::{ERR_ARGS, ERR_DATA};
use naam_mica::set::{SET_ERR_ARGS, SET_ERR_TABLE, SET_STORED, decode_set};
use naam_mica::{
    GetOutcome, GetReply, GetRequest, MicaConfig, MicaReader, MicaRegions, MicaRegionsMut,
    MicaRkeys, MicaTable, OpError,
};
use serde::{Deserialize, Serialize};

use super::{HandlerError, Request};
use crate::ids::ObjectId;
use crate::memory::{DmoError, ObjectTable};

/// A MICA table owned by an actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicaApp {
    /// The index object.
    pub index: ObjectId,
    /// The log object.
    pub log: ObjectId,
    /// The meta object.
    pub meta: ObjectId,
    /// The rkeys clients name the three regions by.
    pub rkeys: [u64; 3],
    /// The tenant's salt when each tenant runs its own GET program (NAAM's
    /// `tenant_programs = "distinct"`): every GET reply ends with it, as the tenant's eBPF
    /// program's replies do (`naam_mica::tenant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_salt: Option<u64>,
}

impl MicaApp {
    /// Allocates the three objects for `config` in `objects` and formats an empty table.
    pub fn install(
        objects: &mut ObjectTable,
        allocator: &mut crate::memory::Allocator,
        config: MicaConfig,
        rkeys: MicaRkeys,
    ) -> Result<MicaApp, InstallError> {
        let sizes = config
            .validate()
            .map_err(|e| InstallError::Mica(e.to_string()))?;
        let index = objects.malloc(allocator, sizes.index_bytes as u64)?;
        let log = objects.malloc(allocator, sizes.log_bytes as u64)?;
        let meta = objects.malloc(allocator, sizes.meta_bytes as u64)?;
        let app = MicaApp {
            index,
            log,
            meta,
            rkeys: [rkeys.index, rkeys.log, rkeys.meta],
            tenant_salt: None,
        };
        MicaTable::format(config, app.regions_mut(objects)?)
            .map_err(|e| InstallError::Mica(e.to_string()))?;
        Ok(app)
    }

    /// Allocates the three objects and copies a formatted table into them (the regions a NAAM
    /// host loaded: the actor serves the very bytes NAAM's functions read).
    pub fn adopt(
        objects: &mut ObjectTable,
        allocator: &mut crate::memory::Allocator,
        regions: MicaRegions<'_>,
        rkeys: MicaRkeys,
    ) -> Result<MicaApp, InstallError> {
        MicaReader::open(regions).map_err(|e| InstallError::Mica(e.to_string()))?;
        let mut copy = |bytes: &[u8]| -> Result<ObjectId, InstallError> {
            let id = objects.malloc(allocator, bytes.len() as u64)?;
            objects.get_mut(id)?.copy_from_slice(bytes);
            Ok(id)
        };
        let (index, log, meta) = (
            copy(regions.index)?,
            copy(regions.log)?,
            copy(regions.meta)?,
        );
        let rkeys = [rkeys.index, rkeys.log, rkeys.meta];
        Ok(MicaApp {
            index,
            log,
            meta,
            rkeys,
            tenant_salt: None,
        })
    }

    /// The same table answering as the tenant's own program with `salt` (see
    /// [`MicaApp::tenant_salt`]).
    pub fn with_tenant_salt(self, salt: Option<u64>) -> MicaApp {
        MicaApp {
            tenant_salt: salt,
            ..self
        }
    }

    /// The table's three objects, writable (for loading and SET).
    pub fn regions_mut<'a>(
        &self,
        objects: &'a mut ObjectTable,
    ) -> Result<MicaRegionsMut<'a>, DmoError> {
        let [index, log, meta] = objects.get_many_mut([self.index, self.log, self.meta])?;
        Ok(MicaRegionsMut { index, log, meta })
    }

    fn check_rkeys(&self, rkeys: MicaRkeys) -> Result<(), HandlerError> {
        let given = [rkeys.index, rkeys.log, rkeys.meta];
        match given.iter().zip(&self.rkeys).find(|(g, mine)| g != mine) {
            Some((&rkey, _)) => Err(HandlerError::UnknownRkey { rkey }),
            None => Ok(()),
        }
    }

    /// GET: the reply `mica_get` gives (status byte, then the value on a hit).
    pub fn get(
        &self,
        request: &Request<'_>,
        objects: &mut ObjectTable,
        reply: &mut Vec<u8>,
    ) -> Result<(), HandlerError> {
        let args = GetRequest::parse(request.args).map_err(|_| HandlerError::Function {
            code: ERR_ARGS as u32,
        })?;
        self.check_rkeys(args.rkeys)?;
        let data_error = HandlerError::Function {
            code: ERR_DATA as u32,
        };
        let regions = MicaRegions {
            index: objects.get(self.index).map_err(|_| data_error)?,
            log: objects.get(self.log).map_err(|_| data_error)?,
            meta: objects.get(self.meta).map_err(|_| data_error)?,
        };
        let reader = MicaReader::open(regions).map_err(|_| data_error)?;
        let mut value = Vec::new();
        match reader.get_hashed_into(args.key, args.key_hash, &mut value) {
            Ok(GetOutcome::Hit) => GetReply::Hit(&value).encode(reply),
            Ok(GetOutcome::Miss) => GetReply::Miss.encode(reply),
            Err(OpError::RetriesExhausted { .. }) => return Err(HandlerError::Retries),
            Err(_) => return Err(data_error),
        }
        if let Some(salt) = self.tenant_salt {
            naam_mica::tenant::append_salt(reply, salt);
        }
        Ok(())
    }

    /// SET: stores the pair and acknowledges as the host-native SET does.
    pub fn set(
        &self,
        request: &Request<'_>,
        objects: &mut ObjectTable,
        reply: &mut Vec<u8>,
    ) -> Result<(), HandlerError> {
        if let Some(d) = request
            .descriptors
            .as_slice()
            .iter()
            .find(|d| d.rkey.0 != self.rkeys[0])
        {
            return Err(HandlerError::UnknownRkey { rkey: d.rkey.0 });
        }
        let args_error = HandlerError::Function { code: SET_ERR_ARGS };
        let table_error = HandlerError::Function {
            code: SET_ERR_TABLE,
        };
        let (key, value) = decode_set(request.args).ok_or(args_error)?;
        let regions = self.regions_mut(objects).map_err(|_| table_error)?;
        let mut table = MicaTable::reattach(regions).map_err(|_| table_error)?;
        table.set(key, value).map_err(|_| table_error)?;
        reply.push(SET_STORED);
        Ok(())
    }
}

/// Why an application could not be installed in an actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// Allocating its objects failed.
    #[error(transparent)]
    Dmo(#[from] DmoError),
    /// The MICA configuration or table.
    #[error("MICA: {0}")]
    Mica(String),
    /// The B-tree configuration or bulk load.
    #[error("B-tree: {0}")]
    Btree(String),
}
