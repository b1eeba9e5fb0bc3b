//! The members of an agent's index, and the lexicographic ranges that query them.
//!
//! Each entry has four members in its agent's index (a sorted set whose scores are all 0),
//! one per dimension: the dimension's letter, its value as 16 lowercase hex digits, and
//! the memory id. Fixed-width hex sorts bytewise in numeric order, so a range of values is
//! a range of members (`ZRANGEBYLEX`), and ties sort by memory id (ULIDs, so by creation).
//! Importance is stored as the bits of its `f64`: for non-negative floats, bit order is
//! numeric order, so the range is exact.
//!
//! The expiry member carries every value (`x<deadline><timestamp><step><importance><id>`):
//! from it alone, cleanup can name all four members of an entry that has already expired.
//! The entry itself starts with the same 64 hex digits ([`IndexFields::hex`]), so a script
//! holding the entry's key can name its members without decoding anything.

use ulid::Ulid;

use crate::error::{Error, Result};
use crate::keys::Index;

/// Hex digits of one value.
const WIDTH: usize = 16;
/// Length of a memory id (a ULID).
pub(crate) const ID_LEN: usize = 26;
/// Length of [`IndexFields::hex`].
pub(crate) const FIELDS_HEX_LEN: usize = 4 * WIDTH;

/// An entry's values as its index holds them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct IndexFields {
    /// When the entry expires, Unix ms.
    pub(crate) deadline: u64,
    /// The entry's timestamp, Unix ms.
    pub(crate) timestamp: u64,
    /// The entry's step number.
    pub(crate) step: u64,
    /// The entry's importance, in [0, 1].
    pub(crate) importance: f64,
}

/// The digits of the index's hex values, in value order.
const HEX_ALPHABET: &[u8; 16] = b"0123456789abcdef";

/// The digits of ULIDs (Crockford base 32, upper case), in value order.
const CROCKFORD_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn put_hex(out: &mut [u8], v: u64) {
    for (i, slot) in out.iter_mut().enumerate().take(WIDTH) {
        *slot = HEX_ALPHABET[((v >> (4 * (WIDTH - 1 - i))) & 0xf) as usize];
    }
}

/// For each byte, its value as a digit of `alphabet`; 0xff for every other byte.
const fn digit_values(alphabet: &[u8]) -> [u8; 256] {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// The value of each lowercase hex digit; 0xff for every other byte.
static HEX_DIGITS: [u8; 256] = digit_values(HEX_ALPHABET);

/// The value of each ULID digit; 0xff for every other byte.
static CROCKFORD_DIGITS: [u8; 256] = digit_values(CROCKFORD_ALPHABET);

fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.len() != WIDTH {
        return None;
    }
    let mut value = 0u64;
    let mut invalid = 0u8;
    for &d in digits {
        let nibble = HEX_DIGITS[usize::from(d)];
        invalid |= nibble;
        value = (value << 4) | u64::from(nibble & 0x0f);
    }
    // A valid digit is at most 0x0f; an invalid one sets the high bits.
    (invalid & 0xf0 == 0).then_some(value)
}

/// A ULID in its canonical text: 26 upper-case Crockford digits, the first at most `7`.
fn parse_ulid(text: &[u8]) -> Option<Ulid> {
    if text.len() != ID_LEN {
        return None;
    }
    let mut value = 0u128;
    let mut invalid = 0u8;
    for &c in text {
        let digit = CROCKFORD_DIGITS[usize::from(c)];
        invalid |= digit;
        value = (value << 5) | u128::from(digit & 0x1f);
    }
    // 26 digits hold 130 bits: the first may use only 3.
    (invalid & 0xe0 == 0 && CROCKFORD_DIGITS[usize::from(text[0])] <= 7).then_some(Ulid(value))
}

/// 16 hex digits of `v`.
pub(crate) fn hex(v: u64) -> [u8; WIDTH] {
    let mut out = [0u8; WIDTH];
    put_hex(&mut out, v);
    out
}

/// The sortable form of an importance: its bits once clamped to [0, 1] (`-0.0` as `0.0`).
pub(crate) fn importance_key(x: f64) -> u64 {
    let x = if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    (x + 0.0).to_bits()
}

impl IndexFields {
    /// Deadline, timestamp, step and importance, 16 hex digits each.
    pub(crate) fn hex(&self) -> [u8; FIELDS_HEX_LEN] {
        let mut out = [0u8; FIELDS_HEX_LEN];
        put_hex(&mut out[0..], self.deadline);
        put_hex(&mut out[WIDTH..], self.timestamp);
        put_hex(&mut out[2 * WIDTH..], self.step);
        put_hex(&mut out[3 * WIDTH..], importance_key(self.importance));
        out
    }

    /// Parses [`hex`](Self::hex); a malformed one is [`Error::Corrupt`].
    pub(crate) fn parse(digits: &[u8]) -> Result<IndexFields> {
        if digits.len() != FIELDS_HEX_LEN {
            return Err(Error::Corrupt(format!(
                "index fields are {} bytes, not {FIELDS_HEX_LEN}",
                digits.len()
            )));
        }
        let value = |i: usize| {
            parse_hex(&digits[i * WIDTH..(i + 1) * WIDTH])
                .ok_or_else(|| Error::Corrupt("index fields are not 64 hex digits".to_owned()))
        };
        let importance = f64::from_bits(value(3)?);
        if !(0.0..=1.0).contains(&importance) {
            return Err(Error::Corrupt(format!(
                "importance {importance} is out of [0, 1]"
            )));
        }
        Ok(IndexFields {
            deadline: value(0)?,
            timestamp: value(1)?,
            step: value(2)?,
            importance,
        })
    }

    /// The entry's four members: timeline, steps, importance, expiry.
    pub(crate) fn members(&self, id: &str) -> [String; 4] {
        let digits = self.hex();
        let text = |range: std::ops::Range<usize>| {
            // Hex digits are ASCII.
            std::str::from_utf8(&digits[range]).unwrap_or_default()
        };
        let member = |index: Index, value: &str| {
            let mut m = String::with_capacity(1 + value.len() + id.len());
            m.push(index.tag() as char);
            m.push_str(value);
            m.push_str(id);
            m
        };
        [
            member(Index::Timeline, text(WIDTH..2 * WIDTH)),
            member(Index::Steps, text(2 * WIDTH..3 * WIDTH)),
            member(Index::Importance, text(3 * WIDTH..4 * WIDTH)),
            member(Index::Expiry, text(0..FIELDS_HEX_LEN)),
        ]
    }
}

/// The memory id at the end of any index member.
pub(crate) fn member_id(member: &[u8]) -> Result<Ulid> {
    member_id_text(member).map(|(id, _)| id)
}

/// The memory id at the end of any index member, and its text as the member spells it
/// (the canonical ULID, so the entry's key can be built from it without formatting).
pub(crate) fn member_id_text(member: &[u8]) -> Result<(Ulid, &str)> {
    let bad = || {
        Error::Corrupt(format!(
            "index member {:?} does not end with a memory id",
            String::from_utf8_lossy(member)
        ))
    };
    let start = member.len().checked_sub(ID_LEN).ok_or_else(bad)?;
    // Only the canonical (upper-case) spelling parses, which is also the entry key's.
    let id = parse_ulid(&member[start..]).ok_or_else(bad)?;
    let text = std::str::from_utf8(&member[start..]).map_err(|_| bad())?;
    Ok((id, text))
}

/// The fields and id an expiry member carries.
pub(crate) fn parse_expiry_member(member: &[u8]) -> Result<(IndexFields, Ulid)> {
    let id = member_id(member)?;
    match member.split_first() {
        Some((b'x', rest)) if rest.len() == FIELDS_HEX_LEN + ID_LEN => {
            Ok((IndexFields::parse(&rest[..FIELDS_HEX_LEN])?, id))
        }
        _ => Err(Error::Corrupt(format!(
            "{:?} is not an expiry member",
            String::from_utf8_lossy(member)
        ))),
    }
}

/// An inclusive range of one dimension's values, as `ZRANGEBYLEX` bounds: `[<tag><lo>`
/// and `[<tag><hi>~` (`~` sorts after every id character). `None` when the range is empty.
pub(crate) fn lex_range(index: Index, lo: u64, hi: u64) -> Option<(String, String)> {
    if lo > hi {
        return None;
    }
    let tag = index.tag() as char;
    let text = |v: u64| String::from_utf8_lossy(&hex(v)).into_owned();
    Some((
        format!("[{tag}{}", text(lo)),
        format!("[{tag}{}~", text(hi)),
    ))
}

/// A score range (`f64`, inclusive, infinities allowed) as the range of `index`'s values
/// it covers: whole numbers for timestamps, steps and deadlines, importance keys for
/// importance. `None` when no value fits.
pub(crate) fn value_range(index: Index, min: f64, max: f64) -> Option<(u64, u64)> {
    if min.is_nan() || max.is_nan() || min > max {
        return None;
    }
    match index {
        Index::Importance => {
            if max < 0.0 || min > 1.0 {
                return None;
            }
            Some((importance_key(min), importance_key(max)))
        }
        _ => {
            if max < 0.0 {
                return None;
            }
            let lo = if min <= 0.0 {
                0
            } else {
                float_to_u64(min.ceil())
            };
            let hi = float_to_u64(max.floor());
            (lo <= hi).then_some((lo, hi))
        }
    }
}

/// A non-negative whole float as `u64`, saturating (infinity is `u64::MAX`).
fn float_to_u64(x: f64) -> u64 {
    if x >= u64::MAX as f64 {
        u64::MAX
    } else {
        x as u64
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

    fn fields() -> IndexFields {
        IndexFields {
            deadline: 1_764_160_086_400_000,
            timestamp: 1_764_160_000_000,
            step: 7,
            importance: 0.5,
        }
    }

    #[test]
    fn fields_round_trip_through_their_hex() {
        let f = fields();
        assert_eq!(IndexFields::parse(&f.hex()).unwrap(), f);
        let [t, s, i, x] = f.members(ID);
        assert_eq!(s, format!("s0000000000000007{ID}"));
        assert!(t.starts_with('t') && i.starts_with('i'));
        assert_eq!(
            parse_expiry_member(x.as_bytes()).unwrap(),
            (f, Ulid::from_string(ID).unwrap())
        );
        assert_eq!(member_id(t.as_bytes()).unwrap().to_string(), ID);
    }

    #[test]
    fn ids_parse_only_in_their_canonical_spelling() {
        for _ in 0..100 {
            let id = Ulid::generate();
            assert_eq!(parse_ulid(id.to_string().as_bytes()), Some(id));
        }
        assert_eq!(
            parse_ulid(Ulid(u128::MAX).to_string().as_bytes()),
            Some(Ulid(u128::MAX))
        );
        for bad in [
            "",
            "01arz3ndektsv4rrffq69g5fav",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
            "01ARZ3NDEKTSV4RRFFQ69G5FAU!",
            "01ARZ3NDEKTSV4RRFFQ69G5FAI",
        ] {
            assert_eq!(parse_ulid(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(parse_hex(b"00000000000000ff"), Some(255));
        assert_eq!(
            parse_hex(b"00000000000000FF"),
            None,
            "upper case is not ours"
        );
        assert_eq!(parse_hex(b"0000000000000g00"), None);
    }

    #[test]
    fn member_order_is_value_order() {
        let mut last = String::new();
        for importance in [0.0, 1e-300, 0.1, 0.5, 0.500_000_000_000_000_1, 0.9, 1.0] {
            let member = IndexFields {
                importance,
                ..fields()
            }
            .members(ID)[2]
                .clone();
            assert!(member > last, "{importance}");
            last = member;
        }
        assert_eq!(importance_key(-0.0), importance_key(0.0));
        assert_eq!(importance_key(7.0), importance_key(1.0));
    }

    #[test]
    fn score_ranges_map_to_value_ranges() {
        assert_eq!(
            value_range(Index::Timeline, f64::NEG_INFINITY, f64::INFINITY),
            Some((0, u64::MAX))
        );
        assert_eq!(value_range(Index::Steps, 1.5, 3.5), Some((2, 3)));
        assert_eq!(value_range(Index::Steps, 1.2, 1.8), None);
        assert_eq!(value_range(Index::Steps, -5.0, -1.0), None);
        assert_eq!(value_range(Index::Importance, 2.0, 3.0), None);
        assert_eq!(
            value_range(Index::Importance, -1.0, 0.5),
            Some((importance_key(0.0), importance_key(0.5)))
        );
        let (lo, hi) = lex_range(Index::Timeline, 5, 5).unwrap();
        let member = IndexFields {
            timestamp: 5,
            ..fields()
        }
        .members(ID)[0]
            .clone();
        assert!(lo[1..] <= member[..] && member[..] <= hi[1..]);
        assert!(lex_range(Index::Timeline, 6, 5).is_none());
    }

    #[test]
    fn malformed_members_and_fields_are_corrupt() {
        for bad in [&b""[..], b"x", b"xZZ", &[b'x'; 91]] {
            assert!(parse_expiry_member(bad).is_err(), "{bad:?}");
        }
        let mut h = fields().hex();
        h[3] = b'G';
        assert!(IndexFields::parse(&h).is_err());
        let mut h = fields().hex();
        h[48..].copy_from_slice(&hex(2.0f64.to_bits()));
        assert!(IndexFields::parse(&h).is_err(), "importance out of range");
    }
}
