//! Deterministic canonical identifiers.

use std::fmt;

/// The canonical id of a transaction: a 128-bit XXH3 hash of its identity
/// `(source, source_account_id, source_transaction_id)` (DESIGN §3), printed
/// as 32 lower-case hex digits. Stable across runs, machines and versions of
/// bankpipe: XXH3-128 is a fixed, specified function and the input encoding
/// below never changes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CanonicalId(u128);

impl CanonicalId {
    /// Hash an identity. Each part is length-prefixed (u64 little endian) so
    /// that `("a", "bc")` and `("ab", "c")` never collide by concatenation.
    pub fn for_transaction(source: &str, source_account_id: &str, source_transaction_id: &str) -> CanonicalId {
        let mut buf = [0u8; 256];
        let total = 24 + source.len() + source_account_id.len() + source_transaction_id.len();
        if total <= buf.len() {
            let mut at = 0;
            for part in [source, source_account_id, source_transaction_id] {
                buf[at..at + 8].copy_from_slice(&(part.len() as u64).to_le_bytes());
                at += 8;
                buf[at..at + part.len()].copy_from_slice(part.as_bytes());
                at += part.len();
            }
            CanonicalId(xxhash_rust::xxh3::xxh3_128(&buf[..at]))
        } else {
            let mut v = Vec::with_capacity(total);
            for part in [source, source_account_id, source_transaction_id] {
                v.extend_from_slice(&(part.len() as u64).to_le_bytes());
                v.extend_from_slice(part.as_bytes());
            }
            CanonicalId(xxhash_rust::xxh3::xxh3_128(&v))
        }
    }

    /// The raw 128-bit value (for compact in-memory indexes).
    pub fn as_u128(&self) -> u128 {
        self.0
    }

    /// Parse the 32-hex-digit form printed by `Display`.
    pub fn parse(text: &str) -> Option<CanonicalId> {
        if text.len() != 32 {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(CanonicalId)
    }
}

impl fmt::Display for CanonicalId {
    /// 32 lower-case hex digits, as `{:032x}` prints the value, without the
    /// formatting machinery (ids are printed twice per exported row).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, digit) in out.iter_mut().enumerate() {
            *digit = HEX[((self.0 >> (124 - 4 * i)) & 0xf) as usize];
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for CanonicalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for CanonicalId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_separated() {
        let a = CanonicalId::for_transaction("truv", "acc", "tx1");
        assert_eq!(a, CanonicalId::for_transaction("truv", "acc", "tx1"));
        assert_ne!(a, CanonicalId::for_transaction("truv", "acc", "tx2"));
        assert_ne!(a, CanonicalId::for_transaction("firefly", "acc", "tx1"));
        assert_ne!(CanonicalId::for_transaction("truv", "ab", "c"), CanonicalId::for_transaction("truv", "a", "bc"));
        let long = "x".repeat(300);
        let l = CanonicalId::for_transaction("truv", &long, "1");
        assert_eq!(l, CanonicalId::for_transaction("truv", &long, "1"));
        assert_eq!(CanonicalId::parse(&a.to_string()), Some(a));
        assert_eq!(a.to_string().len(), 32);
    }

    #[test]
    fn value_is_pinned_across_versions() {
        // Pinned so that a change of encoding or hash (which would re-identify
        // every stored transaction) cannot slip in unnoticed.
        let id = CanonicalId::for_transaction(
            "truv",
            "24d7e80942ce4ad58a93f70ce4115f5c",
            "b3f1a92c58d74e6f8901234567890abc",
        );
        let mut input = Vec::new();
        for p in ["truv", "24d7e80942ce4ad58a93f70ce4115f5c", "b3f1a92c58d74e6f8901234567890abc"] {
            input.extend_from_slice(&(p.len() as u64).to_le_bytes());
            input.extend_from_slice(p.as_bytes());
        }
        assert_eq!(id.as_u128(), xxhash_rust::xxh3::xxh3_128(&input));
        assert_eq!(id.to_string(), PINNED);
    }
    const PINNED: &str = "c89334c11a0c31f387efab0b950d9bd5";

    #[test]
    fn prints_as_32_hex_digits() {
        for v in [0, 1, 0xabc, u128::MAX, 1 << 127, 0x0123_4567_89ab_cdef_0fed_cba9_8765_4321] {
            assert_eq!(CanonicalId(v).to_string(), format!("{v:032x}"));
            assert_eq!(CanonicalId::parse(&CanonicalId(v).to_string()), Some(CanonicalId(v)));
        }
    }
}
