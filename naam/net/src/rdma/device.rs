//! Devices, protection domains and registered regions.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use ibverbs_sys as ffi;

use super::qp::{self, PreparedQp};
use super::{PORT_NUM, REGION_BYTES_MAX, RdmaError};

/// An open device with its protection domain. Destroyed after every object made from it (they
/// hold an `Arc`).
pub(super) struct Device {
    pub(super) ctx: NonNull<ffi::ibv_context>,
    pub(super) pd: NonNull<ffi::ibv_pd>,
    pub(super) name: String,
    pub(super) lid: u16,
    pub(super) gid: [u8; 16],
    pub(super) gid_index: u8,
    pub(super) global_routing: bool,
}

// SAFETY: libibverbs objects may be used from any thread (verbs calls are thread-safe, see
// ibv_open_device(3) and rdma-core's threading notes); the pointers are only passed to verbs.
unsafe impl Send for Device {}
// SAFETY: as above; no method mutates Rust-side state through a shared reference.
unsafe impl Sync for Device {}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: pd and ctx came from ibv_alloc_pd/ibv_open_device and every object made from
        // them holds an Arc<Device>, so none is left. Errors cannot be reported from drop.
        unsafe {
            ffi::ibv_dealloc_pd(self.pd.as_ptr());
            ffi::ibv_close_device(self.ctx.as_ptr());
        }
    }
}

impl Device {
    pub(super) fn verbs(&self, call: &'static str, source: io::Error) -> RdmaError {
        RdmaError::Verbs {
            call,
            device: self.name.clone(),
            source,
        }
    }

    pub(super) fn errno(&self, call: &'static str, rc: i32) -> RdmaError {
        // Verbs return the errno itself (positive) or -1 with errno set.
        let source = if rc > 0 {
            io::Error::from_raw_os_error(rc)
        } else {
            io::Error::last_os_error()
        };
        self.verbs(call, source)
    }
}

/// How to open a device. The default takes the first device and GID index 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdmaConfig {
    /// Device name (`mlx5_0`, ...); `None` takes the first device.
    pub device: Option<String>,
    /// GID table index (RoCE v2 is usually 1 or 3; InfiniBand uses 0).
    pub gid_index: u8,
    /// When set, the device and GID index are those of this address's RoCE v2 GID
    /// ([`crate::roce::find_roce_v2_gid`]), replacing `device` and `gid_index`: queue pairs then
    /// send from this address, over UDP port 4791.
    pub gid_address: Option<std::net::IpAddr>,
}

impl RdmaConfig {
    /// The config for `address`'s RoCE v2 GID (see [`RdmaConfig::gid_address`]).
    pub fn for_address(address: Option<std::net::IpAddr>) -> RdmaConfig {
        RdmaConfig {
            gid_address: address,
            ..RdmaConfig::default()
        }
    }

    /// The device and GID index to open: the named ones, or those of `gid_address`.
    fn resolved(&self) -> Result<(Option<String>, u8), RdmaError> {
        let Some(address) = self.gid_address else {
            return Ok((self.device.clone(), self.gid_index));
        };
        let sysfs = std::path::Path::new(crate::roce::SYSFS_INFINIBAND);
        let gid = crate::roce::find_roce_v2_gid(sysfs, PORT_NUM, address)?;
        Ok((Some(gid.device), gid.index))
    }
}

/// An open RDMA device and protection domain.
#[derive(Clone)]
pub struct RdmaContext {
    dev: Arc<Device>,
}

impl fmt::Debug for RdmaContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RdmaContext")
            .field("device", &self.dev.name)
            .field("lid", &self.dev.lid)
            .finish()
    }
}

/// Names of the RDMA devices present; [`RdmaError::NoDevice`] when there are none.
pub fn device_names() -> Result<Vec<String>, RdmaError> {
    let list = ibverbs::devices().map_err(|e| RdmaError::NoDevice {
        list_errno: e.raw_os_error(),
    })?;
    let names: Vec<String> = list
        .iter()
        .map(|d| {
            d.name()
                .map_or_else(|| "?".to_string(), |n| n.to_string_lossy().into_owned())
        })
        .collect();
    if names.is_empty() {
        return Err(RdmaError::NoDevice { list_errno: None });
    }
    Ok(names)
}

impl RdmaContext {
    /// Opens the configured device (the first one when none is named), checks that its port is
    /// active, and allocates a protection domain. Fails at once with [`RdmaError::NoDevice`] on
    /// machines without RDMA.
    pub fn open(config: &RdmaConfig) -> Result<RdmaContext, RdmaError> {
        let available = device_names()?;
        let (device, gid_index) = config.resolved()?;
        let mut count = 0i32;
        // SAFETY: `count` is a valid out-pointer; the list is freed below on every path.
        let list = unsafe { ffi::ibv_get_device_list(&raw mut count) };
        if list.is_null() {
            return Err(RdmaError::NoDevice {
                list_errno: io::Error::last_os_error().raw_os_error(),
            });
        }
        // SAFETY: ibv_get_device_list returned `count` valid device pointers.
        let devices =
            unsafe { std::slice::from_raw_parts(list, usize::try_from(count).unwrap_or(0)) };
        let chosen = devices.iter().copied().find(|d| match &device {
            None => true,
            Some(name) => device_name(*d) == *name,
        });
        let opened = chosen.map(|d| {
            // SAFETY: `d` is a device of the live list; opening it needs no other precondition.
            (device_name(d), unsafe { ffi::ibv_open_device(d) })
        });
        // SAFETY: `list` came from ibv_get_device_list; opened contexts stay valid after freeing.
        unsafe { ffi::ibv_free_device_list(list) };
        let Some((name, ctx)) = opened else {
            let name = device.clone().unwrap_or_default();
            return Err(RdmaError::DeviceNotFound { name, available });
        };
        let ctx = NonNull::new(ctx).ok_or_else(|| RdmaError::Verbs {
            call: "ibv_open_device",
            device: name.clone(),
            source: io::Error::last_os_error(),
        })?;
        open_context(ctx, name, gid_index).map(|dev| RdmaContext { dev: Arc::new(dev) })
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.dev.name
    }

    /// Registers `memory` for remote READs (an exported host region, read by clients and the
    /// NIC). The borrow keeps the memory alive and unchanged from Rust for the registration's
    /// lifetime; see [`RdmaContext::register_raw`] for memory the owner keeps writing.
    pub fn register<'m>(&self, memory: &'m [u8]) -> Result<RemoteRegion<'m>, RdmaError> {
        // SAFETY: the borrow `'m` outlives the returned registration, so the memory stays valid.
        unsafe { self.register_ptr(memory.as_ptr(), memory.len()) }
    }

    /// Registers `len` bytes at `addr` for remote READs, for memory the owner keeps writing
    /// (e.g. a MICA log in a shared mapping); remote readers then see it as a one-sided read
    /// would on hardware, torn reads included.
    ///
    /// # Safety
    ///
    /// `addr..addr + len` must stay mapped until the returned registration is dropped.
    pub unsafe fn register_raw(
        &self,
        addr: *const u8,
        len: usize,
    ) -> Result<RemoteRegion<'static>, RdmaError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.register_ptr(addr, len) }
    }

    /// # Safety
    ///
    /// `addr..addr + len` must stay mapped for `'m` and until the registration is dropped.
    unsafe fn register_ptr<'m>(
        &self,
        addr: *const u8,
        len: usize,
    ) -> Result<RemoteRegion<'m>, RdmaError> {
        if len == 0 || len > REGION_BYTES_MAX {
            return Err(RdmaError::Region {
                len,
                reason: "must be 1..=REGION_BYTES_MAX bytes",
            });
        }
        let access = ffi::ibv_access_flags::IBV_ACCESS_REMOTE_READ.0 as i32;
        // SAFETY: the caller guarantees the range stays mapped while registered; the PD is live.
        let mr =
            unsafe { ffi::ibv_reg_mr(self.dev.pd.as_ptr(), addr.cast_mut().cast(), len, access) };
        let mr = NonNull::new(mr)
            .ok_or_else(|| self.dev.verbs("ibv_reg_mr", io::Error::last_os_error()))?;
        Ok(RemoteRegion {
            mr,
            dev: Arc::clone(&self.dev),
            _memory: PhantomData,
        })
    }

    /// Creates an RC queue pair (with its completion queue) in the INIT state; exchange
    /// [`PreparedQp::info`] with the peer and [`PreparedQp::connect`].
    pub fn create_qp(&self) -> Result<PreparedQp, RdmaError> {
        qp::create(&self.dev)
    }
}

fn device_name(device: *mut ffi::ibv_device) -> String {
    // SAFETY: `device` is an entry of a live device list; the name is a NUL-terminated string
    // owned by the device (or null).
    let name = unsafe { ffi::ibv_get_device_name(device) };
    if name.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, valid while the list lives (we copy it at once).
    unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}

/// Queries the port and GID and allocates the PD of a freshly opened context (closed on error).
fn open_context(
    ctx: NonNull<ffi::ibv_context>,
    name: String,
    gid_index: u8,
) -> Result<Device, RdmaError> {
    let close = |e: RdmaError| {
        // SAFETY: `ctx` was opened above and nothing else uses it yet.
        unsafe { ffi::ibv_close_device(ctx.as_ptr()) };
        e
    };
    let fail = |call: &'static str, source: io::Error| {
        close(RdmaError::Verbs {
            call,
            device: name.clone(),
            source,
        })
    };
    // SAFETY: all-zero is a valid ibv_port_attr (integers only), as verbs.h's ibv_query_port does.
    let mut port = unsafe { std::mem::zeroed::<ffi::ibv_port_attr>() };
    // SAFETY: the exported ibv_query_port writes a full ibv_port_attr (the compat type is its
    // prefix); `port` is live and writable.
    let rc = unsafe { ffi::ibv_query_port(ctx.as_ptr(), PORT_NUM, (&raw mut port).cast()) };
    if rc != 0 {
        return Err(fail(
            "ibv_query_port",
            io::Error::from_raw_os_error(rc.abs()),
        ));
    }
    if port.state != ffi::ibv_port_state::IBV_PORT_ACTIVE {
        return Err(close(RdmaError::PortNotActive {
            device: name.clone(),
            port: PORT_NUM,
            state: port.state,
        }));
    }
    // SAFETY: ibv_gid is a union of byte arrays; all-zero is valid.
    let mut gid = unsafe { std::mem::zeroed::<ffi::ibv_gid>() };
    // SAFETY: `gid` is live and writable.
    let rc =
        unsafe { ffi::ibv_query_gid(ctx.as_ptr(), PORT_NUM, i32::from(gid_index), &raw mut gid) };
    if rc != 0 {
        return Err(fail(
            "ibv_query_gid",
            io::Error::from_raw_os_error(rc.abs()),
        ));
    }
    // SAFETY: every bit pattern of the union is a valid [u8; 16].
    let gid = unsafe { gid.raw };
    // SAFETY: the context is live.
    let pd = unsafe { ffi::ibv_alloc_pd(ctx.as_ptr()) };
    let pd = NonNull::new(pd).ok_or_else(|| fail("ibv_alloc_pd", io::Error::last_os_error()))?;
    let global_routing =
        u32::from(port.link_layer) == ffi::IBV_LINK_LAYER_ETHERNET || port.lid == 0;
    Ok(Device {
        ctx,
        pd,
        name,
        lid: port.lid,
        gid,
        gid_index,
        global_routing,
    })
}

/// A registered region peers may READ: send them [`RemoteRegion::addr`], `len` and `rkey`.
/// Deregistered on drop.
pub struct RemoteRegion<'m> {
    mr: NonNull<ffi::ibv_mr>,
    dev: Arc<Device>,
    _memory: PhantomData<&'m [u8]>,
}

// SAFETY: the MR is only read (its keys) and deregistered once, on drop; verbs are thread-safe.
unsafe impl Send for RemoteRegion<'_> {}
// SAFETY: as above.
unsafe impl Sync for RemoteRegion<'_> {}

impl RemoteRegion<'_> {
    fn mr(&self) -> &ffi::ibv_mr {
        // SAFETY: the MR stays registered until drop.
        unsafe { self.mr.as_ref() }
    }

    /// The region's address in the owner's address space (RDMA READs name it).
    pub fn addr(&self) -> u64 {
        self.mr().addr as u64
    }

    /// Registered length.
    pub fn len(&self) -> usize {
        self.mr().length
    }

    /// True for an empty region (never: registration refuses them).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The remote key peers present.
    pub fn rkey(&self) -> u32 {
        self.mr().rkey
    }
}

impl fmt::Debug for RemoteRegion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RemoteRegion({} bytes at {:#x}, rkey {:#x}, {})",
            self.len(),
            self.addr(),
            self.rkey(),
            self.dev.name
        )
    }
}

impl Drop for RemoteRegion<'_> {
    fn drop(&mut self) {
        // SAFETY: registered in register_raw and deregistered only here.
        unsafe { ffi::ibv_dereg_mr(self.mr.as_ptr()) };
    }
}
