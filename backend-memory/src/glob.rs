//! Redis glob patterns (`SCAN ... MATCH`, `KEYS`), byte for byte.
//!
//! A port of Redis's `stringmatchlen`: `*` matches any run of bytes, `?` any one byte,
//! `[abc]` one of a set, `[^abc]` anything else, `[a-z]` a range (ends may be swapped),
//! and `\x` the byte `x` literally, inside or outside brackets.

/// Whether `string` matches the Redis glob `pattern`.
pub(crate) fn glob_match(pattern: &[u8], string: &[u8]) -> bool {
    let mut p = 0;
    let mut s = 0;
    while p < pattern.len() && s < string.len() {
        match pattern[p] {
            b'*' => {
                while p + 1 < pattern.len() && pattern[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pattern.len() {
                    return true;
                }
                return (s..string.len())
                    .any(|from| glob_match(&pattern[p + 1..], &string[from..]));
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let negate = pattern.get(p) == Some(&b'^');
                if negate {
                    p += 1;
                }
                let c = string[s];
                let mut matched = false;
                loop {
                    match pattern.get(p) {
                        None => {
                            // Unterminated class: Redis treats the end as its close.
                            p -= 1;
                            break;
                        }
                        Some(b'\\') if p + 1 < pattern.len() => {
                            p += 1;
                            matched |= pattern[p] == c;
                        }
                        Some(b']') => break,
                        Some(&start) if p + 2 < pattern.len() && pattern[p + 1] == b'-' => {
                            let end = pattern[p + 2];
                            let (lo, hi) = if start > end {
                                (end, start)
                            } else {
                                (start, end)
                            };
                            p += 2;
                            matched |= (lo..=hi).contains(&c);
                        }
                        Some(&other) => matched |= other == c,
                    }
                    p += 1;
                }
                if matched == negate {
                    return false;
                }
                s += 1;
            }
            b'\\' if p + 1 < pattern.len() => {
                p += 1;
                if pattern[p] != string[s] {
                    return false;
                }
                s += 1;
            }
            literal => {
                if literal != string[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while pattern.get(p) == Some(&b'*') {
                p += 1;
            }
            break;
        }
    }
    p == pattern.len() && s == string.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn stars_and_question_marks() {
        // As in Redis's matcher; SCAN treats the pattern "*" as "no pattern" before this.
        assert!(!m("*", ""));
        assert!(m("a*", "a"));
        assert!(m("*", "anything"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("ns:*:x", "ns:a:b:x"));
        assert!(!m("ns:*:x", "ns:a:b:y"));
        assert!(m("a**b", "ab"));
        assert!(m("ab*", "ab"));
        assert!(!m("", "a"));
        assert!(m("", ""));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[\\]]", "]"));
        // Unterminated classes end at the pattern's end, as in Redis.
        assert!(m("a[b", "ab"));
        assert!(!m("a[", "a["));
        assert!(m("a[^", "ab"));
    }

    #[test]
    fn escapes_are_literal() {
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a\\?", "a?"));
        assert!(!m("a\\?", "ab"));
        assert!(m("\\[x]", "[x]"));
    }
}
