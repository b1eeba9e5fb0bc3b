//! Key to hash slot, as Redis Cluster computes it.

/// How many hash slots a Redis Cluster has.
pub const SLOT_COUNT: u16 = 16384;

/// The hash slot of `key`: CRC16/XMODEM of the key, or of its hash tag, modulo 16384.
///
/// The hash tag is the part between the first `{` and the first `}` after it, when that
/// part is not empty: `{user1000}.following` and `{user1000}.followers` share a slot.
/// Otherwise the whole key is hashed (`foo{}bar` hashes all of it).
///
/// ```
/// use resilience_core::hash_slot;
/// assert_eq!(hash_slot(b"foo"), 12182);
/// assert_eq!(hash_slot(b"{user1000}.following"), hash_slot(b"user1000"));
/// ```
pub fn hash_slot(key: &[u8]) -> u16 {
    crc16(hash_part(key)) % SLOT_COUNT
}

/// The bytes Redis hashes for `key` (its hash tag, if it has a non-empty one).
fn hash_part(key: &[u8]) -> &[u8] {
    hash_tag(key).unwrap_or(key)
}

/// `key`'s hash tag: what is between its first `{` and the next `}`, when not empty.
pub(crate) fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let len = key[open + 1..].iter().position(|&b| b == b'}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// CRC16/XMODEM (polynomial 0x1021, initial value 0), the CRC Redis Cluster uses; one
/// table lookup per byte (every command routed on a cluster hashes its keys).
fn crc16(data: &[u8]) -> u16 {
    const XMODEM: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
    XMODEM.checksum(data)
}

/// A short hash tag (without braces) whose slot is `slot`: a key `{tag}…` lands on it.
/// Found by counting up from 0, so the same slot always gives the same tag. Returns `None`
/// only for a slot out of range (16384 or more).
pub fn key_for_slot(slot: u16) -> Option<String> {
    if slot >= SLOT_COUNT {
        return None;
    }
    // Every slot is reached by a decimal number below a few hundred thousand; the bound
    // only keeps the loop finite.
    (0u32..10_000_000)
        .map(|n| n.to_string())
        .find(|tag| hash_slot(tag.as_bytes()) == slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // CRC16/XMODEM check value, and slots quoted in the Redis Cluster specification
        // and redis-cli (`CLUSTER KEYSLOT`).
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(hash_slot(b"foo"), 12182);
        assert_eq!(hash_slot(b"bar"), 5061);
        assert_eq!(hash_slot(b"hello"), 866);
        assert_eq!(hash_slot(b""), 0);
        assert_eq!(hash_slot(b"user1000"), 3443);
    }

    #[test]
    fn hash_tags_follow_the_redis_rules() {
        let tagged = hash_slot(b"user1000");
        assert_eq!(hash_slot(b"{user1000}.following"), tagged);
        assert_eq!(hash_slot(b"{user1000}.followers"), tagged);
        assert_eq!(hash_slot(b"x{user1000}y{other}"), tagged);
        // An empty tag hashes the whole key.
        assert_eq!(hash_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOT_COUNT);
        // Only the first `{` and the first `}` after it count.
        assert_eq!(hash_slot(b"foo{{bar}}zap"), hash_slot(b"{bar"));
        assert_eq!(hash_slot(b"foo{bar}{zap}"), hash_slot(b"bar"));
        // No closing brace: the whole key.
        assert_eq!(hash_slot(b"foo{bar"), crc16(b"foo{bar") % SLOT_COUNT);
        assert_eq!(
            hash_slot(b"agent_memory:stm:{agent-1}:timeline"),
            hash_slot(b"agent-1")
        );
    }

    #[test]
    fn key_for_slot_reaches_every_slot() {
        for slot in [0, 1, 866, 5460, 5461, 10922, 10923, 16383] {
            let tag = key_for_slot(slot);
            assert_eq!(tag.as_deref().map(|t| hash_slot(t.as_bytes())), Some(slot));
        }
        assert_eq!(key_for_slot(SLOT_COUNT), None);
    }
}
