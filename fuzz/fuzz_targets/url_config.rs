//! `ConnectionConfig::from_url` on arbitrary input: never panics; whatever it accepts has a
//! host, a non-negative db, timeouts in (0, 1 day), and its Debug output never depends on
//! the password.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use resilience_core::ConnectionConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match ConnectionConfig::from_url(input) {
        Ok(c) => {
            assert!(c.db >= 0);
            assert!(!c.host.is_empty());
            for t in [c.socket_timeout, c.socket_connect_timeout] {
                assert!(t > Duration::ZERO && t < Duration::from_secs(86_400));
            }
            let _ = c.address();
            // The Debug output does not depend on the password at all.
            if c.password.is_some() {
                let mut other = c.clone();
                other.password = Some("another password".to_owned());
                assert_eq!(format!("{c:?}"), format!("{other:?}"), "Debug shows the password");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
