//! Alert keys: stable per occurrence, so PagerDuty (`dedup_key`) and the
//! notify-once state (`AlertKey`) see one alert however often a run raises it.

use sha2::{Digest, Sha256};

use crate::source::SourceAddress;

/// Stable key for one lock instance: table + LockID + lock ID.
pub fn lock_alert_key(source: &SourceAddress, lock_key: &str, lock_id: &str) -> String {
    hashed_key(&["lock", &source.to_string(), lock_key, lock_id])
}

/// `tflr-<sha256 hex>`: 69 characters, well under PagerDuty's 255.
pub fn hashed_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("tflr-{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        let t = SourceAddress::own(crate::lock::SourceKind::Table, "t");
        let a = lock_alert_key(&t, "b/k", "id1");
        assert_eq!(a, lock_alert_key(&t, "b/k", "id1"));
        assert_eq!(a, hashed_key(&["lock", "t", "b/k", "id1"]), "the key alerts already sent carry");
        assert_ne!(a, lock_alert_key(&t, "b/k", "id2"));
        assert_ne!(lock_alert_key(&t, "ab", "c"), lock_alert_key(&t, "a", "bc"));
        assert!(a.len() <= 255 && a.starts_with("tflr-"));
    }
}
