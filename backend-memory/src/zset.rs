//! Sorted sets with Redis's ordering rules.
//!
//! Members are ordered by score, and members with equal scores by the lexicographic byte
//! order of the member (Rust's `str` ordering is exactly that). `-0.0` and `0.0` compare
//! equal, as they do in Redis. Scores are never NaN: the command layer rejects NaN before
//! it gets here.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use resilience_core::ScoreBound;

/// A `(score, member)` pair ordered the Redis way.
#[derive(Debug, Clone)]
struct Ranked {
    score: f64,
    member: String,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| self.member.as_str().cmp(other.member.as_str()))
    }
}

/// A sorted set: a member index plus an ordered set of `(score, member)`.
#[derive(Clone, Debug, Default)]
pub(crate) struct SortedSet {
    scores: HashMap<String, f64>,
    order: BTreeSet<Ranked>,
}

/// Normalizes a Redis rank range (`start`, `stop`, negative from the end) against `len`;
/// `None` when the range is empty.
pub(crate) fn rank_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut start = if start < 0 {
        start.saturating_add(len)
    } else {
        start
    };
    let mut stop = if stop < 0 {
        stop.saturating_add(len)
    } else {
        stop
    };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((
        usize::try_from(start).unwrap_or(0),
        usize::try_from(stop).unwrap_or(0),
    ))
}

fn above_min(score: f64, min: ScoreBound) -> bool {
    match min {
        ScoreBound::NegInf => true,
        ScoreBound::PosInf => score == f64::INFINITY,
        ScoreBound::Inclusive(v) => score >= v,
        ScoreBound::Exclusive(v) => score > v,
    }
}

fn below_max(score: f64, max: ScoreBound) -> bool {
    match max {
        ScoreBound::NegInf => score == f64::NEG_INFINITY,
        ScoreBound::PosInf => true,
        ScoreBound::Inclusive(v) => score <= v,
        ScoreBound::Exclusive(v) => score < v,
    }
}

/// One end of a lexicographic range (`ZRANGEBYLEX`): `-`, `+`, `[member` or `(member`.
pub(crate) use resilience_core::LexBound;
use resilience_core::LexEnd;

/// Where members fall relative to a bound.
trait LexRange {
    fn admits_from_below(&self, member: &str) -> bool;
    fn admits_from_above(&self, member: &str) -> bool;
}

impl LexRange for LexBound {
    /// Whether `member` lies at or above this bound taken as a range's lower end.
    fn admits_from_below(&self, member: &str) -> bool {
        match self.end() {
            LexEnd::Min => true,
            LexEnd::Max => false,
            LexEnd::Inclusive(b) => member >= b,
            LexEnd::Exclusive(b) => member > b,
        }
    }

    /// Whether `member` lies at or below this bound taken as a range's upper end.
    fn admits_from_above(&self, member: &str) -> bool {
        match self.end() {
            LexEnd::Min => false,
            LexEnd::Max => true,
            LexEnd::Inclusive(b) => member <= b,
            LexEnd::Exclusive(b) => member < b,
        }
    }
}

fn pick(r: &Ranked) -> (&str, f64) {
    (r.member.as_str(), r.score)
}

impl SortedSet {
    /// Number of members.
    pub(crate) fn len(&self) -> usize {
        self.scores.len()
    }

    /// The score of `member`.
    pub(crate) fn score(&self, member: &str) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score (adding it if new). Returns whether it was added.
    pub(crate) fn insert(&mut self, member: String, score: f64) -> bool {
        match self.scores.get_mut(&member) {
            Some(old) => {
                if *old != score || old.is_sign_negative() != score.is_sign_negative() {
                    let previous = Ranked {
                        score: *old,
                        member,
                    };
                    self.order.remove(&previous);
                    *old = score;
                    self.order.insert(Ranked {
                        score,
                        member: previous.member,
                    });
                }
                false
            }
            None => {
                self.order.insert(Ranked {
                    score,
                    member: member.clone(),
                });
                self.scores.insert(member, score);
                true
            }
        }
    }

    /// The rank of `member` (0 for the lowest score).
    pub(crate) fn rank(&self, member: &str) -> Option<usize> {
        let score = self.score(member)?;
        let probe = Ranked {
            score,
            member: member.to_owned(),
        };
        Some(self.order.range(..probe).count())
    }

    /// Removes `member`; returns whether it was there.
    pub(crate) fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove_entry(member) {
            Some((member, score)) => {
                self.order.remove(&Ranked { score, member });
                true
            }
            None => false,
        }
    }

    /// Members with ranks `start..=stop` (already normalized), lowest score first or,
    /// with `rev`, highest first.
    pub(crate) fn by_rank(&self, start: usize, stop: usize, rev: bool) -> Vec<(&str, f64)> {
        let take = stop.saturating_sub(start).saturating_add(1);
        if rev {
            self.order
                .iter()
                .rev()
                .skip(start)
                .take(take)
                .map(pick)
                .collect()
        } else {
            self.order.iter().skip(start).take(take).map(pick).collect()
        }
    }

    /// Members whose score lies within `min..max` (each end inclusive or exclusive), lowest
    /// first or, with `rev`, highest first; then `offset` skipped and at most `count` kept.
    pub(crate) fn by_score(
        &self,
        min: ScoreBound,
        max: ScoreBound,
        rev: bool,
        offset: usize,
        count: usize,
    ) -> Vec<(&str, f64)> {
        let lower = match min {
            ScoreBound::NegInf => f64::NEG_INFINITY,
            ScoreBound::PosInf => f64::INFINITY,
            ScoreBound::Inclusive(v) | ScoreBound::Exclusive(v) => v,
        };
        // Everything at or above `lower` (members "" sort first among equal scores).
        let from = Ranked {
            score: lower,
            member: String::new(),
        };
        let range = self.order.range((Bound::Included(from), Bound::Unbounded));
        if rev {
            range
                .rev()
                .skip_while(|r| !below_max(r.score, max))
                .take_while(|r| above_min(r.score, min))
                .skip(offset)
                .take(count)
                .map(pick)
                .collect()
        } else {
            range
                .skip_while(|r| !above_min(r.score, min))
                .take_while(|r| below_max(r.score, max))
                .skip(offset)
                .take(count)
                .map(pick)
                .collect()
        }
    }

    /// Members within the lexicographic range `min..max`, in member order (or reversed with
    /// `rev`), then `offset` skipped and at most `count` kept. Like Redis, the order is
    /// only meaningful when every member has the same score.
    pub(crate) fn by_lex(
        &self,
        min: &LexBound,
        max: &LexBound,
        rev: bool,
        offset: usize,
        count: usize,
    ) -> Vec<&str> {
        let members = self.order.iter().map(|r| r.member.as_str());
        if rev {
            members
                .rev()
                .skip_while(|m| !max.admits_from_above(m))
                .take_while(|m| min.admits_from_below(m))
                .skip(offset)
                .take(count)
                .collect()
        } else {
            members
                .skip_while(|m| !min.admits_from_below(m))
                .take_while(|m| max.admits_from_above(m))
                .skip(offset)
                .take(count)
                .collect()
        }
    }

    /// Removes the members with ranks `start..=stop` (already normalized); returns how many.
    pub(crate) fn remove_by_rank(&mut self, start: usize, stop: usize) -> usize {
        let doomed: Vec<String> = self
            .by_rank(start, stop, false)
            .into_iter()
            .map(|(m, _)| m.to_owned())
            .collect();
        for member in &doomed {
            self.remove(member);
        }
        doomed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resilience_core::WireArg;

    fn set(pairs: &[(f64, &str)]) -> SortedSet {
        let mut z = SortedSet::default();
        for (s, m) in pairs {
            z.insert((*m).to_owned(), *s);
        }
        z
    }

    fn members(v: Vec<(&str, f64)>) -> Vec<String> {
        v.into_iter().map(|(m, _)| m.to_owned()).collect()
    }

    #[test]
    fn lex_ranges_follow_redis_bounds() {
        let z = set(&[(0.0, "a"), (0.0, "b"), (0.0, "c"), (0.0, "d")]);
        let parse = |s: &str| {
            let args = [bytes::Bytes::copy_from_slice(s.as_bytes())];
            LexBound::read(&mut resilience_core::ArgReader::new("zrangebylex", &args))
        };
        let bound = |s: &str| parse(s).expect("a valid bound");
        let lex = |min: &str, max: &str, rev: bool| {
            z.by_lex(&bound(min), &bound(max), rev, 0, usize::MAX)
        };
        assert_eq!(lex("-", "+", false), ["a", "b", "c", "d"]);
        assert_eq!(lex("[b", "(d", false), ["b", "c"]);
        assert_eq!(lex("(b", "[d", false), ["c", "d"]);
        assert_eq!(lex("[b", "+", true), ["d", "c", "b"]);
        assert!(lex("+", "-", false).is_empty());
        assert_eq!(z.by_lex(&bound("-"), &bound("+"), true, 1, 2), ["c", "b"]);
        assert!(parse("x").is_err());
        assert!(parse("--").is_err());
    }

    #[test]
    fn equal_scores_order_by_member_bytes() {
        let z = set(&[(1.0, "b"), (1.0, "a"), (0.0, "c"), (1.0, "B"), (-0.0, "d")]);
        // 0 and -0 tie, then bytes: "B" (0x42) before "a" (0x61).
        assert_eq!(members(z.by_rank(0, 4, false)), ["c", "d", "B", "a", "b"]);
        assert_eq!(members(z.by_rank(0, 1, true)), ["b", "a"]);
    }

    #[test]
    fn rank_ranges_follow_redis_normalization() {
        assert_eq!(rank_range(0, -1, 3), Some((0, 2)));
        assert_eq!(rank_range(-2, -1, 3), Some((1, 2)));
        assert_eq!(rank_range(-100, 1, 3), Some((0, 1)));
        assert_eq!(rank_range(1, 100, 3), Some((1, 2)));
        assert_eq!(rank_range(2, 1, 3), None);
        assert_eq!(rank_range(3, 5, 3), None);
        assert_eq!(rank_range(0, -1, 0), None);
        assert_eq!(rank_range(i64::MIN, i64::MAX, 2), Some((0, 1)));
    }

    #[test]
    fn score_ranges_honour_exclusive_bounds_limit_and_rev() {
        let z = set(&[(1.0, "a"), (2.0, "b"), (2.0, "c"), (3.0, "d")]);
        let all = |min, max, rev| members(z.by_score(min, max, rev, 0, usize::MAX));
        use ScoreBound::*;
        assert_eq!(all(Inclusive(2.0), Inclusive(3.0), false), ["b", "c", "d"]);
        assert_eq!(all(Exclusive(1.0), Exclusive(3.0), false), ["b", "c"]);
        assert_eq!(all(Exclusive(2.0), PosInf, false), ["d"]);
        assert_eq!(all(NegInf, Exclusive(2.0), true), ["a"]);
        assert_eq!(all(Inclusive(2.0), PosInf, true), ["d", "c", "b"]);
        assert_eq!(
            all(Inclusive(3.0), Inclusive(1.0), false),
            Vec::<String>::new()
        );
        assert_eq!(members(z.by_score(NegInf, PosInf, true, 1, 2)), ["c", "b"]);
        assert_eq!(
            members(z.by_score(NegInf, PosInf, false, 1, 0)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn infinite_scores_sit_at_the_ends() {
        let z = set(&[
            (f64::INFINITY, "top"),
            (f64::NEG_INFINITY, "bottom"),
            (0.0, "mid"),
        ]);
        use ScoreBound::*;
        assert_eq!(
            members(z.by_score(NegInf, NegInf, false, 0, usize::MAX)),
            ["bottom"]
        );
        assert_eq!(
            members(z.by_score(PosInf, PosInf, true, 0, usize::MAX)),
            ["top"]
        );
    }

    #[test]
    fn updates_move_members_and_removal_keeps_index_consistent() {
        let mut z = set(&[(1.0, "a"), (2.0, "b")]);
        assert!(!z.insert("a".into(), 3.0));
        assert_eq!(members(z.by_rank(0, 1, false)), ["b", "a"]);
        assert!(z.remove("a"));
        assert!(!z.remove("a"));
        assert_eq!(z.len(), 1);
        assert_eq!(z.remove_by_rank(0, 0), 1);
        assert_eq!(z.len(), 0);
        assert!(z.by_rank(0, 10, false).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn ranks_match_a_naive_sort(ops in proptest::collection::vec(
            (0u8..6, -3i8..4, proptest::bool::ANY), 0..60)) {
            let mut z = SortedSet::default();
            let mut model: HashMap<String, f64> = HashMap::new();
            for (m, s, add) in ops {
                let member = ["a", "b", "B", "ab", "", "z"][usize::from(m)].to_owned();
                if add {
                    z.insert(member.clone(), f64::from(s));
                    model.insert(member, f64::from(s));
                } else {
                    proptest::prop_assert_eq!(z.remove(&member), model.remove(&member).is_some());
                }
            }
            let mut want: Vec<(String, f64)> = model.into_iter().collect();
            want.sort_by(|x, y| x.1.total_cmp(&y.1).then_with(|| x.0.cmp(&y.0)));
            let got: Vec<(String, f64)> = z
                .by_rank(0, usize::MAX - 1, false)
                .into_iter()
                .map(|(m, s)| (m.to_owned(), s))
                .collect();
            proptest::prop_assert_eq!(&got, &want);
            let mut rev = got.clone();
            rev.reverse();
            let got_rev: Vec<(String, f64)> = z
                .by_rank(0, usize::MAX - 1, true)
                .into_iter()
                .map(|(m, s)| (m.to_owned(), s))
                .collect();
            proptest::prop_assert_eq!(got_rev, rev);
            let inclusive: Vec<String> = z
                .by_score(ScoreBound::Inclusive(0.0), ScoreBound::Exclusive(2.0), false, 0, usize::MAX)
                .into_iter()
                .map(|(m, _)| m.to_owned())
                .collect();
            let naive: Vec<String> = want
                .iter()
                .filter(|(_, s)| *s >= 0.0 && *s < 2.0)
                .map(|(m, _)| m.clone())
                .collect();
            proptest::prop_assert_eq!(inclusive, naive);
        }
    }
}
