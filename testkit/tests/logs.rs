//! The log capture sees what is logged: events, their fields and span fields, at TRACE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit::logs::LogCapture;
use testkit::scenarios::acl::{ACL_PASSWORD, shown_secret};

#[test]
fn capture_sees_events_fields_and_spans_at_trace() {
    let logs = LogCapture::install().expect("the only subscriber of this test binary");
    assert!(
        std::ptr::eq(logs, LogCapture::install().unwrap()),
        "installed once"
    );
    let before = logs.len();
    tracing::trace!(secret = ACL_PASSWORD, "a trace event");
    assert!(logs.len() > before);
    let span = tracing::debug_span!("a span", field = "span-field-value");
    drop(span);
    let text = logs.contents();
    assert!(text.contains("a trace event"), "{text}");
    assert!(text.contains("span-field-value"), "{text}");
    // What the ACL scenario looks for is found when it is there.
    assert_eq!(shown_secret(&text), Some(ACL_PASSWORD));
}
