//! [`RetryBudget`]: a shared cap on retries, so an outage cannot become a retry storm.
//!
//! Its guide is in the docs of its main type.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How many time slots a budget's `ttl` is divided into.
pub(crate) const SLOTS: usize = 10;

/// One retry, in the budget's fixed-point unit.
const MILLI: i64 = 1000;

/// Shortest accepted `ttl` (shorter ones are raised to it), as in Finagle and tower: below it
/// the window tags would wrap within months.
const MIN_TTL: Duration = Duration::from_secs(1);
/// Longest accepted `ttl` (longer ones are lowered to it).
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Largest accepted `retry_ratio`.
const MAX_RATIO: f32 = 1000.0;

/// A retry budget shared by every call of a client.
///
/// All methods take `&self`, are lock-free and allocation-free, and the type is
/// `Send + Sync`: share it with an `Arc` or a reference across tasks. The model
/// follows.
///
/// Per-call retry limits are not enough: with `max_retries = 3`, a fleet whose Redis is down
/// sends four times its normal load at it. A budget shared by every call of a client says
/// instead "retries may be at most a fraction of recent calls, plus a small floor", which
/// keeps the extra load bounded however many calls fail.
///
/// Over any sliding window of `ttl`, a budget allows
/// `min_retries_per_sec * ttl_secs + retry_ratio * (calls deposited in that window)`
/// retries. Each original call [`deposit`](RetryBudget::deposit)s once; each retry must first
/// [`try_withdraw`](RetryBudget::try_withdraw), and is skipped when that returns `false`.
/// Deposits and withdrawals both expire after `ttl`, so the budget refills on its own once
/// the burst of retries is older than `ttl`.
///
/// ```
/// use std::time::Duration;
/// use resilience_core::RetryBudget;
///
/// // No floor, 10 % of calls may be retried.
/// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.1);
/// for _ in 0..100 {
///     budget.deposit();
/// }
/// let allowed = (0..20).filter(|_| budget.try_withdraw()).count();
/// assert_eq!(allowed, 10);
/// ```
///
/// # Implementation, and why not tower's `TpsBudget`
///
/// tower 0.5's `tower::retry::budget::TpsBudget` has the same model (and the same defaults)
/// and reads `tokio::time::Instant`, so it would work under tokio's paused clock. It is not
/// used because:
/// - it takes a `std::sync::Mutex` on every `deposit` and `withdraw`, which runs once per call
///   on the client's hot path, where the design allows no lock;
/// - it panics (`assert!`) on a `ttl` outside 1..=60 s or a ratio outside 0..=1000, and on a
///   poisoned lock, where this crate never panics on bad input;
/// - it turns the ratio into an integer withdrawal cost `(1 / ratio) as isize`, so ratios
///   that are not `1/n` are rounded (0.3 behaves as 1/3, 0.15 as 1/6).
///
/// This budget is a ring of 10 atomic slots, each covering a tenth of `ttl` and
/// holding that window's balance in milli-retries, tagged with the window's number in the
/// same 64-bit word. Deposits and withdrawals are one compare-and-swap on the current slot;
/// the balance is the sum of the slots still within `ttl`. There is no lock, no allocation
/// after construction, and the clock read is `tokio::time::Instant::now()`, so tests can drive
/// it with a paused clock. Expiry therefore has a granularity of `ttl / SLOTS`: a deposit
/// counts for between `0.9 * ttl` and `ttl`.
pub struct RetryBudget {
    /// `None` for [`RetryBudget::unlimited`].
    bucket: Option<Bucket>,
}

struct Bucket {
    start: Instant,
    ttl: Duration,
    min_retries_per_sec: u32,
    retry_ratio: f32,
    window_nanos: u128,
    /// Milli-retries always available per `ttl` (the floor).
    reserve: i64,
    /// Milli-retries each deposit adds.
    deposit_amount: i64,
    /// Packed `(window number: u32) << 32 | (balance: i32 as u32)`.
    slots: [AtomicU64; SLOTS],
}

impl RetryBudget {
    /// A budget allowing, over any window of `ttl`,
    /// `min_retries_per_sec * ttl_secs + retry_ratio * deposits in that window` retries.
    ///
    /// Never panics: `ttl` is clamped to 1 s ..= 24 h; a `retry_ratio` that is NaN or
    /// negative counts as 0 and one above 1000 as 1000. The ratio is kept to 1/1000 of a
    /// retry (0.1 means exactly one retry per ten calls).
    pub fn new(ttl: Duration, min_retries_per_sec: u32, retry_ratio: f32) -> Self {
        let ttl = ttl.clamp(MIN_TTL, MAX_TTL);
        let ratio = if retry_ratio.is_nan() || retry_ratio < 0.0 {
            0.0
        } else {
            retry_ratio.min(MAX_RATIO)
        };
        // Float-to-int `as` casts saturate; both values are far inside i64 anyway.
        let reserve = (f64::from(min_retries_per_sec) * ttl.as_secs_f64() * MILLI as f64) as i64;
        let deposit_amount = (f64::from(ratio) * MILLI as f64).round() as i64;
        Self {
            bucket: Some(Bucket {
                start: Instant::now(),
                ttl,
                min_retries_per_sec,
                retry_ratio: ratio,
                window_nanos: (ttl.as_nanos() / SLOTS as u128).max(1),
                reserve,
                deposit_amount,
                slots: std::array::from_fn(|_| AtomicU64::new(0)),
            }),
        }
    }

    /// A budget that never refuses a retry (deposits are ignored).
    pub fn unlimited() -> Self {
        Self { bucket: None }
    }

    /// Whether this is [`RetryBudget::unlimited`].
    pub fn is_unlimited(&self) -> bool {
        self.bucket.is_none()
    }

    /// Records one original call (not a retry). Call it once per call, before or after the
    /// first attempt.
    pub fn deposit(&self) {
        if let Some(b) = &self.bucket
            && b.deposit_amount > 0
        {
            b.add(b.window_now(), b.deposit_amount);
        }
    }

    /// Takes one retry from the budget; `false` means the retry is not allowed and must not be
    /// made. Call it before each retry.
    ///
    /// Never over-draws: when several tasks race for the last retry, at most one gets it (and
    /// in a close race possibly none; erring towards fewer retries is the point).
    pub fn try_withdraw(&self) -> bool {
        let Some(b) = &self.bucket else {
            return true;
        };
        let now = b.window_now();
        b.add(now, -MILLI);
        if b.balance(now) >= 0 {
            true
        } else {
            b.add(now, MILLI);
            false
        }
    }

    /// How many whole retries [`try_withdraw`](Self::try_withdraw) would grant right now, or
    /// `None` for an unlimited budget. A snapshot, for metrics and tests.
    pub fn available(&self) -> Option<u64> {
        let b = self.bucket.as_ref()?;
        let balance = b.balance(b.window_now());
        Some(u64::try_from(balance / MILLI).unwrap_or(0))
    }
}

impl Default for RetryBudget {
    /// `ttl` 10 s, a floor of 10 retries per second, and 20 % of calls: Finagle's and tower's
    /// defaults. The floor lets a quiet client (a few calls a minute) still retry; the ratio
    /// caps a busy client's extra load during an outage at 1.2x.
    fn default() -> Self {
        Self::new(Duration::from_secs(10), 10, 0.2)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.bucket {
            None => f.write_str("RetryBudget::Unlimited"),
            Some(b) => f
                .debug_struct("RetryBudget")
                .field("ttl", &b.ttl)
                .field("min_retries_per_sec", &b.min_retries_per_sec)
                .field("retry_ratio", &b.retry_ratio)
                .field("available", &self.available())
                .finish(),
        }
    }
}

fn pack(window: u32, balance: i32) -> u64 {
    (u64::from(window) << 32) | u64::from(balance as u32)
}

fn unpack(word: u64) -> (u32, i32) {
    ((word >> 32) as u32, word as u32 as i32)
}

/// Whether window `w` is within the last [`SLOTS`] windows as seen from `now` (or newer than
/// `now`, which happens when another task read the clock later). Window numbers wrap.
fn is_live(now: u32, w: u32) -> bool {
    (now.wrapping_sub(w) as i32) < SLOTS as i32
}

impl Bucket {
    /// The number of the current window since the budget was created.
    fn window_now(&self) -> u64 {
        let elapsed = Instant::now().saturating_duration_since(self.start);
        u64::try_from(elapsed.as_nanos() / self.window_nanos).unwrap_or(u64::MAX)
    }

    /// Adds `amount` milli-retries to window `now`'s slot, resetting the slot first if it
    /// still holds an expired window.
    fn add(&self, now: u64, amount: i64) {
        let slot = &self.slots[(now % SLOTS as u64) as usize];
        // Tags are the low 32 bits of the window number; they only repeat after 2^32 windows.
        let tag = now as u32;
        // SeqCst throughout: a withdrawal's debit and its balance check touch different slots
        // across a window boundary, and only a single total order rules out two racing
        // withdrawals each missing the other's debit (the store-buffering pattern).
        let mut current = slot.load(Ordering::SeqCst);
        loop {
            let (w, balance) = unpack(current);
            let next = if (tag.wrapping_sub(w) as i32) <= 0 {
                // The same window, or a newer one another task opened after reading the clock
                // later than we did: accumulate.
                pack(w, saturating_i32(i64::from(balance).saturating_add(amount)))
            } else {
                // The slot still holds a window older than `ttl`: start afresh.
                pack(tag, saturating_i32(amount))
            };
            match slot.compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// The milli-retries available in window `now`: the floor plus every live slot.
    fn balance(&self, now: u64) -> i64 {
        let now = now as u32;
        self.slots
            .iter()
            .map(|slot| unpack(slot.load(Ordering::SeqCst)))
            .filter(|&(w, _)| is_live(now, w))
            .fold(self.reserve, |sum, (_, balance)| {
                sum.saturating_add(i64::from(balance))
            })
    }
}

fn saturating_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn withdraw_all(b: &RetryBudget, up_to: usize) -> usize {
        (0..up_to).take_while(|_| b.try_withdraw()).count()
    }

    #[test]
    fn is_send_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<RetryBudget>();
    }

    #[tokio::test(start_paused = true)]
    async fn ratio_caps_retries_at_a_share_of_deposits() {
        let b = RetryBudget::new(secs(10), 0, 0.1);
        assert!(!b.try_withdraw(), "nothing deposited, no floor");
        for _ in 0..100 {
            b.deposit();
        }
        assert_eq!(b.available(), Some(10));
        assert_eq!(withdraw_all(&b, 100), 10);
        assert!(!b.try_withdraw(), "the 11th retry is refused");
        assert!(!b.try_withdraw(), "and stays refused");
        assert_eq!(b.available(), Some(0));
        // Ten more calls earn one more retry.
        for _ in 0..10 {
            b.deposit();
        }
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_expire_after_ttl() {
        let b = RetryBudget::new(secs(10), 0, 0.1);
        for _ in 0..100 {
            b.deposit();
        }
        tokio::time::advance(Duration::from_millis(8_900)).await;
        assert_eq!(b.available(), Some(10), "still within the ttl");
        tokio::time::advance(secs(2)).await;
        assert_eq!(b.available(), Some(0), "older than the ttl");
        assert!(!b.try_withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn floor_refills_as_the_ttl_window_passes() {
        // A floor of 1 retry per second over 10 s: 10 retries per window, no deposits needed.
        let b = RetryBudget::new(secs(10), 1, 0.0);
        assert_eq!(withdraw_all(&b, 100), 10);
        assert!(!b.try_withdraw());
        tokio::time::advance(secs(5)).await;
        assert!(
            !b.try_withdraw(),
            "the withdrawals are still within the ttl"
        );
        tokio::time::advance(Duration::from_millis(5_100)).await;
        assert_eq!(
            withdraw_all(&b, 100),
            10,
            "refilled once the withdrawals expired"
        );
        assert!(!b.try_withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn spent_ratio_budget_refills_with_new_calls_after_ttl() {
        let b = RetryBudget::new(secs(10), 0, 0.1);
        for _ in 0..100 {
            b.deposit();
        }
        assert_eq!(withdraw_all(&b, 100), 10);
        tokio::time::advance(secs(11)).await;
        for _ in 0..50 {
            b.deposit();
        }
        assert_eq!(withdraw_all(&b, 100), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn withdrawals_in_a_later_slot_still_draw_on_earlier_deposits() {
        let b = RetryBudget::new(secs(10), 0, 0.5);
        b.deposit();
        b.deposit();
        tokio::time::advance(secs(3)).await;
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw());
    }

    #[test]
    fn ratios_are_exact_to_a_thousandth() {
        // tower's integer withdraw cost would make 0.3 behave as 1/3.
        let b = RetryBudget::new(secs(10), 0, 0.3);
        for _ in 0..100 {
            b.deposit();
        }
        assert_eq!(withdraw_all(&b, 1000), 30);
        let b = RetryBudget::new(secs(10), 0, 2.0);
        for _ in 0..10 {
            b.deposit();
        }
        assert_eq!(withdraw_all(&b, 1000), 20);
    }

    #[test]
    fn default_is_ten_seconds_ten_per_second_twenty_percent() {
        let b = RetryBudget::default();
        assert_eq!(b.available(), Some(100));
        let dbg = format!("{b:?}");
        assert!(dbg.contains("ttl: 10s") && dbg.contains("0.2"), "{dbg}");
    }

    #[test]
    fn unlimited_never_refuses() {
        let b = RetryBudget::unlimited();
        assert!(b.is_unlimited());
        assert_eq!(b.available(), None);
        assert!((0..10_000).all(|_| b.try_withdraw()));
        b.deposit();
        assert!(b.try_withdraw());
    }

    #[test]
    fn bad_inputs_are_clamped_not_panics() {
        for ratio in [f32::NAN, -1.0, f32::NEG_INFINITY] {
            let b = RetryBudget::new(Duration::ZERO, 0, ratio);
            b.deposit();
            assert!(!b.try_withdraw(), "ratio {ratio} counts as 0");
        }
        let b = RetryBudget::new(Duration::MAX, u32::MAX, f32::INFINITY);
        for _ in 0..10_000 {
            b.deposit();
        }
        assert!(b.try_withdraw());
        assert!(b.available().unwrap() > 1_000_000);
        // A huge ratio saturates a slot rather than wrapping to a negative balance.
        let b = RetryBudget::new(secs(1), 0, 1000.0);
        for _ in 0..5_000 {
            b.deposit();
        }
        assert!(b.available().unwrap() >= 2_000_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_withdrawals_never_overdraw() {
        let b = Arc::new(RetryBudget::new(secs(60), 0, 0.1));
        for _ in 0..1_000 {
            b.deposit();
        }
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let b = Arc::clone(&b);
                tokio::spawn(async move { (0..100).filter(|_| b.try_withdraw()).count() })
            })
            .collect();
        let mut granted = 0;
        for t in tasks {
            granted += t.await.unwrap();
        }
        // Racing may refuse a few spuriously, but never grants more than the 100 earned;
        // refusals are refunded, so the remainder is still available.
        assert!(granted <= 100, "granted {granted}");
        assert_eq!(b.available(), Some(100 - granted as u64));
    }
}
