//! An actor image as bytes, for migrations between processes (the NIC role and the host role):
//! what phase 2 captures (registration, application, statistics) and phase 3 moves (objects).
//!
//! Layout (little-endian): magic `IPAI`, version (u8), actor (u32), tenant (u32), quantum flag
//! (u8) and quantum (u64), functions (u8 count; u32 id + u8 op each), application (u8 kind and
//! its fields), execution window (u32 count; u64 each), objects (u8 count; u32 id + u64 length +
//! bytes each). Decoding checks every count and length against the runtime's named bounds and
//! never panics.

use naam_engine::{FunctionId, TenantId};

use crate::actor::{ActorImage, ActorSpec, FUNCTIONS_PER_ACTOR_MAX};
use crate::app::{App, BtreeApp, MicaApp, Op};
use crate::config::ACTOR_WINDOW_MAX;
use crate::ids::{ActorId, ObjectId};
use crate::memory::{OBJECT_BYTES_MAX, OBJECTS_PER_ACTOR_MAX, ObjectImage};

/// First bytes of an encoded image.
pub const IMAGE_MAGIC: [u8; 4] = *b"IPAI";
/// The only image version this code speaks.
pub const IMAGE_VERSION: u8 = 1;

/// Why bytes are not an actor image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The bytes ended inside `field`.
    #[error("actor image truncated in `{field}`")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Not an image, or another version.
    #[error("not an actor image of version {IMAGE_VERSION}")]
    BadHeader,
    /// A value outside its domain or above its bound.
    #[error("actor image field `{field}` has invalid value {value}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// Bytes after the image.
    #[error("{extra} bytes after the actor image")]
    Trailing {
        /// How many.
        extra: usize,
    },
}

fn op_code(op: Op) -> u8 {
    match op {
        Op::MicaGet => 1,
        Op::MicaSet => 2,
        Op::BtreeLookup => 3,
        Op::Echo => 4,
    }
}

fn op_of(code: u8) -> Option<Op> {
    [Op::MicaGet, Op::MicaSet, Op::BtreeLookup, Op::Echo]
        .into_iter()
        .find(|&op| op_code(op) == code)
}

/// Appends `image` to `out`.
pub fn encode(image: &ActorImage, out: &mut Vec<u8>) {
    out.extend_from_slice(&IMAGE_MAGIC);
    out.push(IMAGE_VERSION);
    out.extend_from_slice(&image.actor.0.to_le_bytes());
    out.extend_from_slice(&image.spec.tenant.0.to_le_bytes());
    out.push(u8::from(image.spec.quantum_ns.is_some()));
    out.extend_from_slice(&image.spec.quantum_ns.unwrap_or(0).to_le_bytes());
    out.push(image.spec.functions.len() as u8);
    for &(f, op) in &image.spec.functions {
        out.extend_from_slice(&f.0.to_le_bytes());
        out.push(op_code(op));
    }
    encode_app(&image.app, out);
    out.extend_from_slice(&(image.exec_ns.len() as u32).to_le_bytes());
    for ns in &image.exec_ns {
        out.extend_from_slice(&ns.to_le_bytes());
    }
    out.push(image.objects.len() as u8);
    for o in &image.objects {
        out.extend_from_slice(&o.object.0.to_le_bytes());
        out.extend_from_slice(&(o.bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&o.bytes);
    }
}

fn encode_app(app: &App, out: &mut Vec<u8>) {
    match app {
        App::Unset => out.push(0),
        App::Echo => out.push(1),
        App::Mica(m) => {
            // Kind 4: a tenant's own GET program (its salt follows the rkeys).
            out.push(if m.tenant_salt.is_some() { 4 } else { 2 });
            for id in [m.index, m.log, m.meta] {
                out.extend_from_slice(&id.0.to_le_bytes());
            }
            for rkey in m.rkeys {
                out.extend_from_slice(&rkey.to_le_bytes());
            }
            if let Some(salt) = m.tenant_salt {
                out.extend_from_slice(&salt.to_le_bytes());
            }
        }
        App::Btree(b) => {
            out.push(3);
            out.extend_from_slice(&b.nodes.0.to_le_bytes());
            out.extend_from_slice(&b.rkey.to_le_bytes());
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ImageError> {
        if self.bytes.len() < n {
            return Err(ImageError::Truncated { field });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, ImageError> {
        Ok(self.take(1, field)?[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, ImageError> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.take(4, field)?);
        Ok(u32::from_le_bytes(word))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, ImageError> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_le_bytes(word))
    }
}

fn count(field: &'static str, value: u64, max: usize) -> Result<usize, ImageError> {
    if value > max as u64 {
        return Err(ImageError::BadValue { field, value });
    }
    Ok(value as usize)
}

/// Reads an image written by [`encode`] (the whole of `bytes`).
pub fn decode(bytes: &[u8]) -> Result<ActorImage, ImageError> {
    let mut r = Reader { bytes };
    if r.take(4, "magic")? != IMAGE_MAGIC || r.u8("version")? != IMAGE_VERSION {
        return Err(ImageError::BadHeader);
    }
    let actor = ActorId(r.u32("actor")?);
    let tenant = TenantId(r.u32("tenant")?);
    let has_quantum = r.u8("quantum.present")? == 1;
    let quantum = r.u64("quantum")?;
    let n = u64::from(r.u8("functions.count")?);
    let n = count("functions.count", n, FUNCTIONS_PER_ACTOR_MAX)?;
    let mut functions = Vec::with_capacity(n);
    for _ in 0..n {
        let f = FunctionId(r.u32("function.id")?);
        let code = r.u8("function.op")?;
        let op = op_of(code).ok_or(ImageError::BadValue {
            field: "function.op",
            value: code.into(),
        })?;
        functions.push((f, op));
    }
    let app = decode_app(&mut r)?;
    let exec_ns = decode_window(&mut r)?;
    let objects = decode_objects(&mut r)?;
    if !r.bytes.is_empty() {
        return Err(ImageError::Trailing {
            extra: r.bytes.len(),
        });
    }
    let spec = ActorSpec {
        tenant,
        functions,
        quantum_ns: has_quantum.then_some(quantum),
    };
    Ok(ActorImage {
        actor,
        spec,
        app,
        exec_ns,
        objects,
    })
}

fn decode_app(r: &mut Reader<'_>) -> Result<App, ImageError> {
    let kind = r.u8("app.kind")?;
    Ok(match kind {
        0 => App::Unset,
        1 => App::Echo,
        2 | 4 => {
            let index = ObjectId(r.u32("app.index")?);
            let log = ObjectId(r.u32("app.log")?);
            let meta = ObjectId(r.u32("app.meta")?);
            let rkeys = [r.u64("app.rkey")?, r.u64("app.rkey")?, r.u64("app.rkey")?];
            let tenant_salt = if kind == 4 {
                Some(r.u64("app.tenant_salt")?)
            } else {
                None
            };
            App::Mica(MicaApp {
                index,
                log,
                meta,
                rkeys,
                tenant_salt,
            })
        }
        3 => {
            let nodes = ObjectId(r.u32("app.nodes")?);
            App::Btree(BtreeApp {
                nodes,
                rkey: r.u64("app.rkey")?,
            })
        }
        other => {
            return Err(ImageError::BadValue {
                field: "app.kind",
                value: other.into(),
            });
        }
    })
}

fn decode_window(r: &mut Reader<'_>) -> Result<Vec<u64>, ImageError> {
    let n = u64::from(r.u32("exec.count")?);
    let n = count("exec.count", n, ACTOR_WINDOW_MAX as usize)?;
    (0..n).map(|_| r.u64("exec.sample")).collect()
}

fn decode_objects(r: &mut Reader<'_>) -> Result<Vec<ObjectImage>, ImageError> {
    let n = u64::from(r.u8("objects.count")?);
    let n = count("objects.count", n, OBJECTS_PER_ACTOR_MAX)?;
    let mut objects = Vec::with_capacity(n);
    for _ in 0..n {
        let object = ObjectId(r.u32("object.id")?);
        let len = r.u64("object.len")?;
        if len == 0 || len > OBJECT_BYTES_MAX {
            return Err(ImageError::BadValue {
                field: "object.len",
                value: len,
            });
        }
        let bytes = r
            .take(len as usize, "object.bytes")?
            .to_vec()
            .into_boxed_slice();
        objects.push(ObjectImage { object, bytes });
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ActorImage {
        ActorImage {
            actor: ActorId(7),
            spec: ActorSpec {
                tenant: TenantId(3),
                functions: vec![(FunctionId(1), Op::MicaGet), (FunctionId(2), Op::MicaSet)],
                quantum_ns: Some(5_000),
            },
            app: App::Mica(MicaApp {
                index: ObjectId(1),
                log: ObjectId(2),
                meta: ObjectId(3),
                rkeys: [10, 20, 30],
                tenant_salt: Some(0x5a17),
            }),
            exec_ns: vec![900, 1100],
            objects: vec![
                ObjectImage {
                    object: ObjectId(1),
                    bytes: vec![1; 64].into_boxed_slice(),
                },
                ObjectImage {
                    object: ObjectId(2),
                    bytes: vec![2; 128].into_boxed_slice(),
                },
                ObjectImage {
                    object: ObjectId(3),
                    bytes: vec![3; 64].into_boxed_slice(),
                },
            ],
        }
    }

    #[test]
    fn an_image_round_trips_and_every_truncation_is_an_error() {
        let mut bytes = Vec::new();
        encode(&image(), &mut bytes);
        let back = decode(&bytes).unwrap();
        assert_eq!(
            (back.actor, &back.spec, back.app, &back.exec_ns),
            (ActorId(7), &image().spec, image().app, &vec![900, 1100])
        );
        let sizes: Vec<_> = back
            .objects
            .iter()
            .map(|o| (o.object.0, o.bytes.len(), o.bytes[0]))
            .collect();
        assert_eq!(sizes, [(1, 64, 1), (2, 128, 2), (3, 64, 3)]);
        for cut in 0..bytes.len() {
            assert!(
                decode(&bytes[..cut]).is_err(),
                "a {cut}-byte prefix is not an image"
            );
        }
        bytes.push(0);
        assert_eq!(
            decode(&bytes).unwrap_err(),
            ImageError::Trailing { extra: 1 }
        );
    }
}
