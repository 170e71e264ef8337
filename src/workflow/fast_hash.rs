//! A fast non-cryptographic hasher (the Fx hash of rustc) for the in-memory indexes that `check`
//! walks a million times a second. Keys are ids of users, scopes, roles and permissions, which
//! come from authenticated callers and administrators, so hash flooding is not a concern here.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(value as u64);
    }

    fn write_u32(&mut self, value: u32) {
        self.add(value as u64);
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    /// Fx leaves the low bits, which pick the bucket, depending on the low input bits only; a
    /// final mix (MurmurHash3's) spreads every input bit over them.
    fn finish(&self) -> u64 {
        let mut hash = self.hash;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^ (hash >> 33)
    }
}

pub type FastHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
pub type FastHashSet<T> = HashSet<T, BuildHasherDefault<FxHasher>>;

const INLINE_KEY_BYTES: usize = 46;

/// A string key stored inside the hash table's bucket when short (most user and scope ids, UUIDs
/// included), so that confirming a match reads no memory elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub enum InlineKey {
    Short { len: u8, bytes: [u8; INLINE_KEY_BYTES] },
    Long(Box<str>),
}

impl InlineKey {
    pub fn new(id: &str) -> InlineKey {
        if id.len() <= INLINE_KEY_BYTES {
            let mut bytes = [0u8; INLINE_KEY_BYTES];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            InlineKey::Short { len: id.len() as u8, bytes }
        } else {
            InlineKey::Long(id.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            InlineKey::Short { len, bytes } => &bytes[..*len as usize],
            InlineKey::Long(text) => text.as_bytes(),
        }
    }
}

// Kept as text in a snapshot of the read model.
impl From<String> for InlineKey {
    fn from(id: String) -> Self {
        InlineKey::new(&id)
    }
}

impl From<InlineKey> for String {
    fn from(key: InlineKey) -> Self {
        // Made from a `&str` only, so the bytes are UTF-8.
        String::from_utf8_lossy(key.as_bytes()).into_owned()
    }
}

/// Hashes exactly like the byte slice, so that tables can be searched with `id.as_bytes()`
/// without building a key.
impl std::hash::Hash for InlineKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for InlineKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}
