//! Histogram tags: a small set of names the caller declares up front (e.g. the execution
//! locations `host`, `nic`, `client`), addressed by a one-byte id when recording.

use crate::error::ConfigError;

/// Most tags in one set.
pub const TAGS_MAX: usize = 16;
/// Longest tag name in bytes.
pub const TAG_LEN_MAX: usize = 32;

/// The index of a tag in its [`TagSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagId(pub u8);

/// A validated, ordered set of tag names: each 1..=[`TAG_LEN_MAX`] bytes of `[a-z0-9_-]`
/// (the interval log's `Tag=` field ends at a comma and readers split on whitespace), unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSet {
    names: Vec<String>,
}

impl TagSet {
    /// Validates `names` in order; tag ids follow that order.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<Self, ConfigError> {
        if names.is_empty() || names.len() > TAGS_MAX {
            return Err(ConfigError::TagCountOutOfRange {
                count: names.len(),
                max: TAGS_MAX,
            });
        }
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            validate_name(name)?;
            if out.iter().any(|n| n == name) {
                return Err(ConfigError::TagInvalid {
                    name: name.to_owned(),
                    reason: "repeated",
                });
            }
            out.push(name.to_owned());
        }
        Ok(Self { names: out })
    }

    /// The NAAM execution locations: `host` (id 0), `nic` (1), `client` (2).
    pub fn locations() -> Self {
        Self {
            names: vec!["host".into(), "nic".into(), "client".into()],
        }
    }

    /// The id of `name`, if it is in the set.
    pub fn id(&self, name: &str) -> Option<TagId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| TagId(i as u8))
    }

    /// The name of `id`, if it is in the set.
    pub fn name(&self, id: TagId) -> Option<&str> {
        self.names.get(usize::from(id.0)).map(String::as_str)
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always false: a set holds at least one tag.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// `(id, name)` pairs in id order.
    pub fn iter(&self) -> impl Iterator<Item = (TagId, &str)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (TagId(i as u8), n.as_str()))
    }
}

fn validate_name(name: &str) -> Result<(), ConfigError> {
    let invalid = |reason| ConfigError::TagInvalid {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > TAG_LEN_MAX {
        return Err(invalid("length must be 1..=32 bytes"));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if !name.chars().all(allowed) {
        return Err(invalid("only a-z, 0-9, '_' and '-' are allowed"));
    }
    Ok(())
}
