//! `ConnectionConfig::from_url` on arbitrary input: never panics; whatever it accepts has a
//! host, a non-negative db, timeouts in (0, 1 day), and an error never echoes a password.
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
            // (Skipped when the password also occurs in a field that is shown, such as the
            // user name or host: then the Debug output rightly contains it.)
            let shown = format!("{}{}", c.host, c.username.as_deref().unwrap_or(""));
            if let Some(pw) = c
                .password
                .as_deref()
                .filter(|p| p.len() >= 4 && !shown.contains(p))
            {
                assert!(!format!("{c:?}").contains(pw), "Debug echoes the password");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
