//! IM entry decoding on arbitrary stored bytes and entries: corrupt, truncated, other
//! schema versions and LZ4 bombs. Never panics; unpacking never yields more than the
//! configured maximum; decoded importance is within [0, 1].
//!
//! Input layout: byte 0 picks `max_value_bytes` (0..=255 KiB, in KiB steps, plus the low
//! bits of byte 1), byte 2 picks a shape, the rest is the stored bytes or the content.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use memory_tiers::fuzzing::{decode_entry, pack, stored_entry, unpack};

fuzz_target!(|data: &[u8]| {
    let [a, b, shape, rest @ ..] = data else {
        return;
    };
    let max = usize::from(*a) * 1024 + usize::from(*b);

    // Raw unpack of arbitrary bytes (covers corrupt and truncated blocks and lying headers).
    if let Ok(out) = unpack(rest, max) {
        assert!(out.len() <= max, "unpacked {} > max {max}", out.len());
    }

    let stored: Bytes = match shape % 3 {
        // Arbitrary bytes, as stored.
        0 => Bytes::copy_from_slice(rest),
        // A valid prefix and header, `rest` as compressed content.
        1 => stored_entry(rest, true),
        // A valid prefix and header and a valid packing of `rest` (a possible bomb when
        // `rest` is repetitive), with the declared length then mutated by `b`.
        _ => {
            let mut packed = pack(rest);
            if *b & 1 == 1 {
                packed[0] ^= *a;
            }
            if let Ok(out) = unpack(&packed, max) {
                assert!(out.len() <= max);
            }
            stored_entry(&packed, true)
        }
    };
    if let Ok(Some(entry)) = decode_entry(&stored, max) {
        let i = entry.metadata.importance_score;
        assert!((0.0..=1.0).contains(&i), "importance {i}");
    }
});
