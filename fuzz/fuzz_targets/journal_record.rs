//! `journal::decode_record` on arbitrary bytes: never panics; whatever it accepts encodes
//! again to a record that decodes to the same value (so a record that passes its checksum
//! is a real record, not a half-parsed one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use resilience_core::journal::{decode_record, encode_record};

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = decode_record(data) {
        let again = encode_record(&record).expect("a decoded record encodes");
        let back = decode_record(&again).expect("an encoded record decodes");
        assert_eq!(format!("{record:?}"), format!("{back:?}"));
    }
});
