//! IM entry decoding on arbitrary hash fields and envelopes: corrupt, truncated, other
//! schema versions and LZ4 bombs. Never panics; unpacking never yields more than the
//! configured maximum; decoded importance is within [0, 1].
//!
//! Input layout: byte 0 picks `max_value_bytes` (0..=255 KiB, in KiB steps, plus the low
//! bits of byte 1), byte 2 picks a shape, the rest is split into fields on `0xff`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use memory_tiers::fuzzing::{decode_entry, envelope, pack, unpack};

const NAMES: [&str; 6] = ["e", "i", "r", "a", "d", "x"];

fuzz_target!(|data: &[u8]| {
    let [a, b, shape, rest @ ..] = data else {
        return;
    };
    let max = usize::from(*a) * 1024 + usize::from(*b);

    // Raw unpack of arbitrary bytes (covers corrupt and truncated blocks and lying headers).
    if let Ok(out) = unpack(rest, max) {
        assert!(out.len() <= max, "unpacked {} > max {max}", out.len());
    }

    let fields: Vec<(String, Bytes)> = match shape % 3 {
        // Arbitrary fields: name chosen by the first byte of each chunk.
        0 => rest
            .split(|x| *x == 0xff)
            .filter_map(|chunk| {
                let (n, v) = chunk.split_first()?;
                Some((
                    NAMES[usize::from(*n) % NAMES.len()].to_owned(),
                    Bytes::copy_from_slice(v),
                ))
            })
            .collect(),
        // A valid envelope header, `rest` as compressed content.
        1 => vec![("e".to_owned(), envelope(rest, true))],
        // A valid header and a valid packing of `rest` (a possible bomb when `rest` is
        // repetitive), with the declared length then mutated by `b`.
        _ => {
            let mut packed = pack(rest);
            if *b & 1 == 1 {
                packed[0] ^= *a;
            }
            if let Ok(out) = unpack(&packed, max) {
                assert!(out.len() <= max);
            }
            vec![
                ("e".to_owned(), envelope(&packed, true)),
                (
                    "i".to_owned(),
                    Bytes::copy_from_slice(&rest[..rest.len().min(6)]),
                ),
            ]
        }
    };
    if let Ok(entry) = decode_entry(&fields, max) {
        let i = entry.metadata.importance_score;
        assert!((0.0..=1.0).contains(&i), "importance {i}");
    }
});
