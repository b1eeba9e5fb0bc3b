//! Placeholder bench (filled in below).
fn main() {}
