//! [`Encoding::Adaptive`](super::Encoding::Adaptive): vigil's chunk encoding.
//!
//! Gorilla's structure stays — predict each timestamp and value from the
//! previous ones and code the error — but the fixed bit buckets become
//! codes that adapt to the series, and values that are short decimals are
//! coded as integers instead of float bit patterns. `docs/formats.md` has
//! the exact layout and the measurements; this comment explains the
//! choices.
//!
//! * **Adaptive Rice codes.** Every error (of a timestamp, of a decimal
//!   value) is zigzagged and written as `q` zero bits, a one bit and the low
//!   `k` bits, where `q = z >> k` and `k` follows a running mean of recent
//!   errors (`Rice`). `q >= QMAX` escapes to a length-prefixed raw value
//!   (and, for values, a 2-bit kind: stale marker, switch to XOR, rescale).
//!   A regular series costs 1–2 bits per timestamp; ±2 ms scrape jitter
//!   about 3.5 bits, where Prometheus pays 16.
//! * **Mean-interval prediction.** Timestamps are predicted from a running
//!   mean of the interval rather than from the previous interval
//!   (delta-of-delta), which doubles the jitter. A single outlier (a missed
//!   scrape) leaves the mean alone; two in a row reset it.
//! * **Decimal values.** Exporters mostly expose integers (byte counters) or
//!   numbers with few decimals (`cpu_seconds_total` in 0.01 s ticks,
//!   temperatures). Such a value is `n / 10^s` for an integer `|n| <= 2^53`,
//!   and IEEE division is correctly rounded, so `n` and `s` restore the
//!   exact bits; the encoder checks this per sample by doing the division.
//!   In this "decimal mode" the delta of `n` is predicted by a running mean
//!   (a counter's rate). XORing such values costs 40–50 bits; this 5–15.
//! * **XOR fallback.** Any other bit pattern (NaN payloads, infinities,
//!   -0.0, full-precision floats) switches to "XOR mode", Gorilla's XOR with
//!   a leading/trailing-zero window. Stale markers have their own codes in
//!   both modes and leave the prediction state alone, so a series that goes
//!   stale and comes back keeps its mode.
//! * **Exact predictions.** After a sample whose errors were both zero, one
//!   flag bit says whether the next one is exactly predicted too: a
//!   constant, regular series costs 1 bit per sample.
//!
//! Decoding has a general path that handles every code and a fast path
//! (`Decoder::fast_decimal`) for the common case — decimal mode, no escapes
//! — that reads both codes of a sample from one unaligned load. Encoding
//! likewise has `Encoder::append_fast`.

use super::bits::{load_at, BitReader, BitWriter, Truncated};
use super::{unzigzag, zigzag, Fault, STALE_NAN};

/// Unary prefixes of this many zero bits (or more) mark an escape.
const QMAX: u32 = 20;
/// The running mean of a Rice parameter moves by 1/2^RICE_ALPHA per value.
const RICE_ALPHA: u32 = 3;
/// Samples of a chunk before Rice parameters cap outliers.
const RICE_WARMUP: u16 = 10;
/// Cap during the warm-up (keeps `m` far from overflow). Above any value
/// coded without escape (`< QMAX << K_MAX`), so that such values always
/// count in full, which the fast paths rely on.
const RICE_WARM_CAP: u64 = 1 << 45;
/// Largest Rice parameter.
const K_MAX: u32 = 40;
/// Decimal scales are `0..=MAX_SCALE` (a 4-bit field).
pub(super) const MAX_SCALE: usize = 15;
/// Largest integer magnitude of the decimal path: beyond 2^53 an `i64`
/// no longer converts to `f64` exactly.
const MAX_DECIMAL: f64 = 9_007_199_254_740_992.0;
/// See [`decimal_at`].
pub(super) const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
pub(super) const ROUND_LIMIT: f64 = 2_251_799_813_685_248.0; // 2^51
/// Powers of ten for the decimal scales; all exact in `f64`.
pub(super) const POW10: [f64; MAX_SCALE + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
/// After a value that is no short decimal, XOR mode waits this many samples
/// before it searches all scales again (the search costs ~16 divisions).
const SEARCH_COOLDOWN: u8 = 32;

// Escape kinds for values in decimal mode (2 bits after the escape prefix).
const ESC_BIG: u64 = 0;
const ESC_STALE: u64 = 1;
const ESC_XOR: u64 = 2;
const ESC_RESCALE: u64 = 3;

/// Adaptive Rice parameter: `k` is about `log2` of a running mean of the
/// coded values. After the first [`RICE_WARMUP`] samples of a chunk, each
/// value counts at most as the escape threshold, so one outlier (a counter
/// reset, a missed scrape) does not inflate `k` for long; before, values
/// count in full so `k` finds its level within a few samples.
#[derive(Debug, Clone, Copy, Default)]
struct Rice {
    /// 2^RICE_ALPHA times the running mean.
    m: u64,
}

impl Rice {
    #[inline(always)]
    fn k(self) -> u32 {
        // floor(log2(mean)), 0 for a mean below 2: the bit length of
        // `m >> (RICE_ALPHA + 1)`, computed as the index of the top bit of
        // `(m >> RICE_ALPHA) | 1`, which is never zero (one `bsr` without
        // a zero check on baseline x86-64).
        (63 - ((self.m >> RICE_ALPHA) | 1).leading_zeros()).min(K_MAX)
    }

    /// Adds `z`, coded with parameter `k`, to the mean; `warm` while in the
    /// warm-up. Values coded without escape are below both caps, which the
    /// decoder's fast path relies on.
    #[inline(always)]
    fn update(&mut self, z: u64, k: u32, warm: bool) {
        let cap = if warm {
            RICE_WARM_CAP
        } else {
            u64::from(QMAX) << k
        };
        self.m = self.m - (self.m >> RICE_ALPHA) + z.min(cap);
    }
}

/// Writes `z` as a Rice code with parameter `k`; returns false (after
/// writing the escape prefix only) if `z` needs an escape.
#[inline(always)]
fn write_rice(w: &mut BitWriter, z: u64, k: u32) -> bool {
    let q = z >> k;
    if q < u64::from(QMAX) {
        let q = q as u32;
        let low = z & ((1u64 << k) - 1);
        let n = q + 1 + k;
        if n <= 56 {
            w.write((1u64 << k) | low, n);
        } else {
            w.write(1, q + 1);
            w.write_long(low, k);
        }
        true
    } else {
        w.write(0, QMAX);
        false
    }
}

/// Writes the prefix of `z`'s Rice code with parameter `k`: `q = z >> k`
/// zero bits and a one, or [`QMAX`] zero bits if `z` needs an escape.
/// Returns whether it escaped; the low bits ([`write_low`]) or the escape's
/// payload follow later.
#[inline(always)]
fn write_prefix(w: &mut BitWriter, z: u64, k: u32) -> bool {
    let q = z >> k;
    if q < u64::from(QMAX) {
        w.write(1, q as u32 + 1);
        false
    } else {
        w.write(0, QMAX);
        true
    }
}

/// Writes the low `k` bits of `z`, the rest of a Rice code.
#[inline(always)]
fn write_low(w: &mut BitWriter, z: u64, k: u32) {
    w.write_long(z, k);
}

/// Reads a Rice code with parameter `k`; `None` is an escape prefix (already
/// consumed). Fast when the caller refilled the reader since the last read
/// of up to ~8 bits.
#[inline(always)]
fn read_rice(r: &mut BitReader<'_>, k: u32) -> Result<Option<u64>, Fault> {
    let word = r.peek_word();
    let q = word.leading_zeros();
    let n = q + 1 + k;
    if q < QMAX && n <= r.avail() {
        // Two shifts so that k == 0 yields 0 rather than overflowing.
        let low = ((word << (q + 1)) >> 1) >> (63 - k);
        r.consume(n);
        return Ok(Some((u64::from(q) << k) | low));
    }
    match read_prefix(r)? {
        Some(q) => read_low(r, q, k).map(Some),
        None => Ok(None),
    }
}

/// Reads the prefix of a Rice code: `Some(q)`, or `None` for an escape.
#[inline(always)]
fn read_prefix(r: &mut BitReader<'_>) -> Result<Option<u32>, Fault> {
    let q = r.peek_word().leading_zeros();
    if q < QMAX && q < r.avail() {
        r.consume(q + 1);
        return Ok(Some(q));
    }
    // Escapes, or the buffer ran low: refill and count again (the zeros of
    // an unloaded buffer tail may have been counted).
    r.refill();
    // Zeros past `avail` are not data: counting stops there.
    let q = r.peek_word().leading_zeros().min(r.avail());
    if q >= QMAX {
        r.consume(QMAX);
        return Ok(None);
    }
    if q + 1 > r.avail() {
        return Err(Fault::Truncated(Truncated));
    }
    r.consume(q + 1);
    Ok(Some(q))
}

/// Reads the low `k` bits of a Rice code whose prefix was `q`; returns the
/// coded value.
#[inline(always)]
fn read_low(r: &mut BitReader<'_>, q: u32, k: u32) -> Result<u64, Fault> {
    Ok((u64::from(q) << k) | r.read_long(k)?)
}

/// Writes `z` as a 6-bit length (minus one) and that many bits.
#[inline]
pub(super) fn write_varlen(w: &mut BitWriter, z: u64) {
    let n = (64 - z.leading_zeros()).max(1);
    w.write(u64::from(n - 1), 6);
    w.write_long(z, n);
}

#[inline(always)]
pub(super) fn read_varlen(r: &mut BitReader<'_>) -> Result<u64, Fault> {
    let n = r.read(6)? as u32 + 1;
    Ok(r.read_long(n)?)
}

/// `n` if `v` is exactly `n / 10^scale` with `|n| <= 2^53`.
#[inline(always)]
pub(super) fn decimal_at(v: f64, scale: usize) -> Option<i64> {
    let p = POW10[scale & MAX_SCALE];
    let x = v * p;
    // Also rejects infinities.
    if x.is_nan() || x.abs() > MAX_DECIMAL {
        return None;
    }
    // Round to nearest without `f64::round` (a libm call on baseline
    // x86-64) or a saturating float-to-int conversion: adding 1.5 * 2^52
    // leaves round(x) in the low mantissa bits for |x| < 2^51. Larger
    // decimals take the slow conversion. A wrong rounding could only make
    // the check below fail.
    let n = if x.abs() < ROUND_LIMIT {
        ((x + ROUND_MAGIC).to_bits() as i64).wrapping_sub(ROUND_MAGIC.to_bits() as i64)
    } else {
        x as i64
    };
    ((n as f64 / p).to_bits() == v.to_bits()).then_some(n)
}

/// The smallest scale at which `v` is a decimal, and its integer.
///
/// A decimal at scale `s` is one at every larger scale `s'` whose integer
/// stays below 2^51: `n * 10^(s'-s)` divides to the same correctly rounded
/// value, and `v * 10^(s')` then rounds back to that integer (its error is
/// below a quarter). So with `top` the largest scale that keeps `|v| *
/// 10^top` below 2^51, [`decimal_at`] is monotone over `0..=top`: one
/// division at `top` rejects a float that is no decimal (most of them,
/// where sixteen tries did before), and a binary search finds the smallest
/// scale. Above `top`, only the next scale can keep the integer within
/// [`decimal_at`]'s 2^53, and it is tried last, as the scan in order did.
pub(super) fn find_scale(v: f64) -> Option<(usize, i64)> {
    if !v.is_finite() {
        return None;
    }
    let a = v.abs();
    let Some(top) = (0..=MAX_SCALE).rev().find(|&s| a * POW10[s] < ROUND_LIMIT) else {
        return find_scale_scan(v, 0);
    };
    if decimal_at(v, top).is_none() {
        return find_scale_scan(v, top + 1);
    }
    // decimal_at(v, s) holds for s in hi..=top and fails below lo.
    let (mut lo, mut hi) = (0, top);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if decimal_at(v, mid).is_some() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    decimal_at(v, hi).map(|n| (hi, n))
}

/// The first scale from `from` on at which `v` is a decimal.
fn find_scale_scan(v: f64, from: usize) -> Option<(usize, i64)> {
    (from..=MAX_SCALE).find_map(|s| decimal_at(v, s).map(|n| (s, n)))
}

#[inline(always)]
pub(super) fn decimal_value(n: i64, scale: usize) -> f64 {
    n as f64 / POW10[scale & MAX_SCALE]
}

/// Bits of a new XOR window: 5 bits leading zeros (clamped to 31, as in
/// Prometheus) and 6 bits significant bits minus one.
const WINDOW_BITS: u32 = 11;
/// Windows with more than 64 leading plus significant bits cannot occur;
/// two of them are the rare codes of XOR mode.
const WINDOW_STALE: u64 = (31 << 6) | 63;
const WINDOW_RESCALE: u64 = (31 << 6) | 62;

/// Timestamp predictor: the next interval is predicted as a running mean of
/// the intervals, kept in 1/16 ms. Against jitter of the scrape time this
/// beats delta-of-delta (which predicts the previous, jittered interval and
/// so doubles the noise); after a jump the mean is reset to the new
/// interval, which then behaves like delta-of-delta.
const T_FRAC: u32 = 4;
/// Decimal predictor: running mean of the deltas of `n`, in 1/8.
const V_FRAC: u32 = 4;

/// State shared by both directions: whatever the decoder must track to
/// predict the next sample, the encoder tracks identically.
#[derive(Debug, Clone)]
struct State {
    t: i64,
    /// Predicted interval, times 2^T_FRAC.
    interval: i64,
    /// The last interval needed an escape.
    t_jump: bool,
    t_rice: Rice,
    /// Decimal mode (`n`, `scale`, `avg` valid) or XOR mode.
    decimal: bool,
    /// No delta of `n` seen since entering decimal mode.
    fresh: bool,
    /// The previous sample was exactly predicted (zero timestamp and value
    /// errors), so this one starts with a flag bit: `0` if it is exactly
    /// predicted too.
    exact: bool,
    scale: usize,
    n: i64,
    /// Running mean of the deltas of `n`, times 2^V_FRAC.
    avg: i64,
    /// The last delta of `n` needed an escape.
    v_jump: bool,
    v_rice: Rice,
    /// Bits of the last value that was not coded as a stale marker.
    vbits: u64,
    /// Current XOR window.
    lead: u32,
    trail: u32,
}

impl State {
    fn new() -> Self {
        State {
            t: 0,
            interval: 0,
            t_jump: false,
            t_rice: Rice::default(),
            decimal: false,
            fresh: true,
            exact: false,
            scale: 0,
            n: 0,
            avg: 0,
            v_jump: false,
            v_rice: Rice::default(),
            vbits: 0,
            lead: 0,
            trail: 0,
        }
    }

    #[inline(always)]
    fn enter_decimal(&mut self, scale: usize, n: i64) {
        self.decimal = true;
        self.fresh = true;
        self.scale = scale;
        self.n = n;
        self.avg = 0;
    }

    #[inline(always)]
    fn predicted_interval(&self) -> i64 {
        self.interval.wrapping_add(1 << (T_FRAC - 1)) >> T_FRAC
    }

    /// Records the interval `delta` whose prediction error `err` was coded;
    /// `big` if it needed an escape. A single outlier (a missed scrape)
    /// leaves the prediction alone; a second one in a row means the
    /// interval changed, and the prediction restarts from it.
    #[inline(always)]
    fn learn_interval(&mut self, delta: i64, err: i64, big: bool) {
        if !big {
            self.interval = self.interval.wrapping_add(err);
        } else if self.t_jump {
            self.interval = delta.wrapping_shl(T_FRAC);
        }
        self.t_jump = big;
    }

    /// Advances to the predicted sample: what a `0` flag bit means. The
    /// caller sets `vbits` in decimal mode.
    #[inline(always)]
    fn predicted_sample(&mut self) {
        let k = self.t_rice.k();
        self.t_rice.update(0, k, false);
        let delta = self.predicted_interval();
        self.learn_interval(delta, 0, false);
        self.t = self.t.wrapping_add(delta);
        if self.decimal {
            let k = self.v_rice.k();
            self.v_rice.update(0, k, false);
            self.learn_decimal(self.avg >> V_FRAC, 0, false);
        }
    }

    /// Applies the decimal delta `d` whose prediction error `err` was coded;
    /// `big` if it needed an escape. As for intervals, one outlier (a counter
    /// reset) leaves the mean alone and a second one restarts it.
    #[inline(always)]
    fn learn_decimal(&mut self, d: i64, err: i64, big: bool) {
        if self.fresh || (big && self.v_jump) {
            self.avg = d.wrapping_shl(V_FRAC);
        } else if !big {
            self.avg = self.avg.wrapping_add(err);
        }
        self.fresh = false;
        self.v_jump = big;
        self.n = self.n.wrapping_add(d);
        // The caller sets vbits: the encoder has the value, the decoder
        // divides.
    }

    /// Cost in bits of coding XOR `x != 0` with `reuse_bits`/`new_bits`
    /// prefixes, and whether the current window is reused.
    #[inline(always)]
    fn xor_choice(&self, x: u64, reuse_bits: u32, new_bits: u32) -> (u32, bool) {
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        let sig = 64 - lead - trail;
        let cur = 64 - self.lead - self.trail;
        let reuse = reuse_bits + cur;
        let new = new_bits + WINDOW_BITS + sig;
        if lead >= self.lead && trail >= self.trail && reuse <= new {
            (reuse, true)
        } else {
            (new, false)
        }
    }

    /// Writes XOR `x != 0` as chosen by [`State::xor_choice`]: the reuse
    /// prefix and the bits inside the current window, or the new-window
    /// prefix, the window and its bits.
    #[inline(always)]
    fn write_xor(&mut self, w: &mut BitWriter, x: u64, reuse: (u64, u32), new: (u64, u32)) {
        if self.xor_choice(x, reuse.1, new.1).1 {
            let sig = 64 - self.lead - self.trail;
            let bits = x >> self.trail;
            if reuse.1 + sig <= 56 {
                w.write((reuse.0 << sig) | bits, reuse.1 + sig);
            } else {
                w.write(reuse.0, reuse.1);
                w.write_long(bits, sig);
            }
        } else {
            let lead = x.leading_zeros().min(31);
            let trail = x.trailing_zeros();
            let sig = 64 - lead - trail;
            w.write(
                (new.0 << WINDOW_BITS) | (u64::from(lead) << 6) | u64::from(sig - 1),
                new.1 + WINDOW_BITS,
            );
            w.write_long(x >> trail, sig);
            self.lead = lead;
            self.trail = trail;
        }
    }
}

/// Bits of a rescale's payload (scale and integer).
#[inline(always)]
fn rescale_bits(n: i64) -> u32 {
    4 + 6 + (64 - zigzag(n).leading_zeros()).max(1)
}

/// How the encoder will code a value, decided before anything is written
/// so the timestamp code can know whether the whole sample was predicted.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Decimal mode, and the value is a decimal at the current scale.
    Decimal { n: i64, d: i64, err: i64 },
    /// XOR mode and the same bits as the previous value.
    Same,
    /// Anything else: an escape or an XOR.
    Other,
}

impl Plan {
    /// Whether the value is exactly the prediction (a zero-error code).
    #[inline(always)]
    fn exact(self) -> bool {
        matches!(self, Plan::Decimal { err: 0, .. } | Plan::Same)
    }
}

/// Appender state.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    s: State,
    /// Samples to wait before the next full decimal scale search.
    cooldown: u8,
    /// The chunk had decimal values, so `s.scale` is worth checking first
    /// in XOR mode (a decimal series interrupted by a NaN, say).
    had_decimal: bool,
    /// The state allows [`Encoder::append_fast`]: decimal mode, no special
    /// state. Set by the general path; the fast path keeps it true.
    fast: bool,
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Encoder {
            s: State::new(),
            cooldown: 0,
            had_decimal: false,
            fast: false,
        }
    }

    /// Appends a sample; `count` is the number of samples already written.
    #[inline(always)]
    pub(crate) fn append(&mut self, w: &mut BitWriter, count: u16, t: i64, v: f64) {
        if count >= 2 && self.append_fast(w, t, v) {
            return;
        }
        self.append_general(w, count, t, v);
    }

    /// The common case of [`Encoder::append_general`]: decimal mode, no
    /// escapes, no special state, both codes in one write. Returns false,
    /// having changed nothing, if the sample needs the general path.
    #[inline(always)]
    fn append_fast(&mut self, w: &mut BitWriter, t: i64, v: f64) -> bool {
        if !self.fast {
            return false;
        }
        let s = &mut self.s;
        debug_assert!(s.decimal && !s.fresh && !s.t_jump && !s.v_jump);
        let Some(n) = decimal_at(v, s.scale) else {
            return false;
        };
        let delta = t.wrapping_sub(s.t);
        let et = delta.wrapping_sub(s.predicted_interval());
        let d = n.wrapping_sub(s.n);
        let ev = d.wrapping_sub(s.avg >> V_FRAC);
        let (zt, zv) = (zigzag(et), zigzag(ev));
        let (kt, kv) = (s.t_rice.k(), s.v_rice.k());
        let (qt, qv) = (zt >> kt, zv >> kv);
        // Both below QMAX: no escapes (longer prefixes take the general
        // path too).
        if qt + qv >= u64::from(QMAX) {
            return false;
        }
        let exact = (zt | zv) == 0;
        if s.exact && exact {
            w.write(0, 1);
            s.predicted_sample();
            s.vbits = v.to_bits();
            return true;
        }
        // [flag 1] [qt zeros, 1] [qv zeros, 1] [low kt bits] [low kv bits];
        // `z ^ (q << k)` is the low bits of `z`.
        let (qt, qv) = (qt as u32, qv as u32);
        let flag = u32::from(s.exact);
        let len = flag + qt + qv + 2 + kt + kv;
        if len > 56 {
            return false;
        }
        let prefix = (u64::from(flag) << (qt + qv + 2)) | (2 << qv) | 1;
        let bits = (prefix << kt) | (zt ^ (u64::from(qt) << kt));
        let bits = (bits << kv) | (zv ^ (u64::from(qv) << kv));
        w.write(bits, len);
        // What the general path does for non-escaped codes; the Rice caps
        // do not apply below the escape threshold.
        s.t_rice.m = s.t_rice.m - (s.t_rice.m >> RICE_ALPHA) + zt;
        s.interval = s.interval.wrapping_add(et);
        s.t = t;
        s.v_rice.m = s.v_rice.m - (s.v_rice.m >> RICE_ALPHA) + zv;
        s.avg = s.avg.wrapping_add(ev);
        s.n = n;
        s.vbits = v.to_bits();
        s.exact = exact;
        true
    }

    /// Appends any sample.
    #[inline(never)]
    fn append_general(&mut self, w: &mut BitWriter, count: u16, t: i64, v: f64) {
        self.append_any(w, count, t, v);
        let s = &self.s;
        self.fast = s.decimal && !s.fresh && !s.t_jump && !s.v_jump;
    }

    #[inline(always)]
    fn append_any(&mut self, w: &mut BitWriter, count: u16, t: i64, v: f64) {
        let s = &mut self.s;
        match count {
            0 => {
                write_varlen(w, zigzag(t));
                s.t = t;
                if let Some((scale, n)) = find_scale(v) {
                    w.write((1 << 4) | scale as u64, 5);
                    write_varlen(w, zigzag(n));
                    s.enter_decimal(scale, n);
                    self.had_decimal = true;
                } else {
                    w.write_bit(false);
                    w.write_long(v.to_bits(), 64);
                    self.cooldown = SEARCH_COOLDOWN;
                }
                s.vbits = v.to_bits();
            }
            1 => {
                let delta = t.wrapping_sub(s.t);
                write_varlen(w, zigzag(delta));
                s.interval = delta.wrapping_shl(T_FRAC);
                s.t = t;
                let plan = self.plan(v);
                self.write_value(w, v, plan, true);
            }
            _ => {
                let delta = t.wrapping_sub(s.t);
                let err = delta.wrapping_sub(s.predicted_interval());
                let plan = self.plan(v);
                let s = &mut self.s;
                if s.exact {
                    if err == 0 && plan.exact() {
                        w.write_bit(false);
                        s.predicted_sample();
                        s.vbits = v.to_bits();
                        return;
                    }
                    w.write_bit(true);
                }
                let z = zigzag(err);
                let k = s.t_rice.k();
                let warm = count < RICE_WARMUP;
                if s.decimal {
                    // Both prefixes first, then the rests.
                    let big = write_prefix(w, z, k);
                    let value = self.write_value_prefix(w, plan);
                    let s = &mut self.s;
                    if big {
                        write_varlen(w, z);
                    } else {
                        write_low(w, z, k);
                    }
                    s.t_rice.update(z, k, warm);
                    s.learn_interval(delta, err, big);
                    s.t = t;
                    self.write_value_rest(w, v, plan, value, warm);
                } else {
                    let big = !write_rice(w, z, k);
                    if big {
                        write_varlen(w, z);
                    }
                    s.t_rice.update(z, k, warm);
                    s.learn_interval(delta, err, big);
                    s.t = t;
                    self.write_value(w, v, plan, warm);
                }
                self.s.exact = err == 0 && plan.exact();
            }
        }
    }

    #[inline(always)]
    fn plan(&self, v: f64) -> Plan {
        let s = &self.s;
        if s.decimal {
            match decimal_at(v, s.scale) {
                Some(n) => {
                    let d = n.wrapping_sub(s.n);
                    Plan::Decimal {
                        n,
                        d,
                        err: d.wrapping_sub(s.avg >> V_FRAC),
                    }
                }
                None => Plan::Other,
            }
        } else if v.to_bits() == s.vbits {
            Plan::Same
        } else {
            Plan::Other
        }
    }

    /// Writes a whole value code.
    #[inline(always)]
    fn write_value(&mut self, w: &mut BitWriter, v: f64, plan: Plan, warm: bool) {
        if self.s.decimal {
            let value = self.write_value_prefix(w, plan);
            self.write_value_rest(w, v, plan, value, warm);
        } else {
            match plan {
                Plan::Same => w.write_bit(false),
                _ => self.xor_mode(w, v),
            }
        }
    }

    /// In decimal mode: writes the Rice prefix of the value's code (an
    /// escape prefix if the value is no decimal at the current scale) and
    /// returns `(z, k, escaped)` for [`Encoder::write_value_rest`].
    #[inline(always)]
    fn write_value_prefix(&self, w: &mut BitWriter, plan: Plan) -> (u64, u32, bool) {
        match plan {
            Plan::Decimal { err, .. } => {
                let z = zigzag(err);
                let k = self.s.v_rice.k();
                (z, k, write_prefix(w, z, k))
            }
            _ => {
                w.write(0, QMAX);
                (0, 0, true)
            }
        }
    }

    /// In decimal mode: writes the rest of the value's code after its
    /// prefix.
    #[inline(always)]
    fn write_value_rest(
        &mut self,
        w: &mut BitWriter,
        v: f64,
        plan: Plan,
        (z, k, big): (u64, u32, bool),
        warm: bool,
    ) {
        let s = &mut self.s;
        match plan {
            Plan::Decimal { n, d, err } => {
                if big {
                    w.write(ESC_BIG, 2);
                    write_varlen(w, z);
                } else {
                    write_low(w, z, k);
                }
                s.v_rice.update(z, k, warm);
                s.learn_decimal(d, err, big);
                debug_assert_eq!(s.n, n);
                s.vbits = v.to_bits();
            }
            _ => self.escape_decimal_mode(w, v),
        }
    }

    /// A value that is no decimal at the current scale, in decimal mode,
    /// after the escape prefix.
    #[cold]
    fn escape_decimal_mode(&mut self, w: &mut BitWriter, v: f64) {
        let s = &mut self.s;
        let bits = v.to_bits();
        if bits == STALE_NAN {
            w.write(ESC_STALE, 2);
            return;
        }
        let x = bits ^ s.vbits;
        let (xor_bits, _) = s.xor_choice(x, 1, 1);
        match find_scale(v) {
            Some((scale, n)) if rescale_bits(n) <= xor_bits => {
                w.write((ESC_RESCALE << 4) | scale as u64, 6);
                write_varlen(w, zigzag(n));
                s.enter_decimal(scale, n);
            }
            _ => {
                w.write(ESC_XOR, 2);
                // x != 0: the previous value was a decimal and this one is
                // not one at the current scale.
                s.write_xor(w, x, (0, 1), (1, 1));
                s.decimal = false;
                self.cooldown = SEARCH_COOLDOWN;
            }
        }
        s.vbits = bits;
    }

    /// A value that differs from the previous one, in XOR mode.
    #[inline(always)]
    fn xor_mode(&mut self, w: &mut BitWriter, v: f64) {
        let s = &mut self.s;
        let bits = v.to_bits();
        if bits == STALE_NAN {
            w.write((0b11 << WINDOW_BITS) | WINDOW_STALE, 2 + WINDOW_BITS);
            return;
        }
        let x = bits ^ s.vbits;
        let at_scale = if self.had_decimal {
            decimal_at(v, s.scale)
        } else {
            None
        };
        let found = match at_scale {
            Some(n) => Some((s.scale, n)),
            None if self.cooldown == 0 => {
                let f = find_scale(v);
                if f.is_none() {
                    self.cooldown = SEARCH_COOLDOWN;
                }
                f
            }
            None => {
                self.cooldown -= 1;
                None
            }
        };
        match found {
            // Switch when it pays already for this value; later values then
            // profit from decimal mode too.
            Some((scale, n)) if 2 + WINDOW_BITS + rescale_bits(n) <= s.xor_choice(x, 2, 2).0 => {
                w.write((0b11 << WINDOW_BITS) | WINDOW_RESCALE, 2 + WINDOW_BITS);
                w.write(scale as u64, 4);
                write_varlen(w, zigzag(n));
                s.enter_decimal(scale, n);
                self.had_decimal = true;
            }
            _ => s.write_xor(w, x, (0b10, 2), (0b11, 2)),
        }
        s.vbits = bits;
    }
}

/// Reads the 11 bits after a new-window prefix and, if they are a valid
/// window, makes it current. Returns the bits: invalid windows are codes.
#[inline(always)]
fn read_window(r: &mut BitReader<'_>, s: &mut State) -> Result<u64, Fault> {
    let head = r.read(WINDOW_BITS)?;
    let lead = (head >> 6) as u32;
    let sig = (head & 63) as u32 + 1;
    if lead + sig <= 64 {
        s.lead = lead;
        s.trail = 64 - lead - sig;
    }
    Ok(head)
}

/// Whether a window read by [`read_window`] is valid.
#[inline(always)]
fn window_valid(head: u64) -> bool {
    (head >> 6) + (head & 63) < 64
}

/// Reads the significant bits of an XOR in the current window.
#[inline(always)]
fn read_in_window(r: &mut BitReader<'_>, s: &State) -> Result<u64, Fault> {
    let sig = 64 - s.lead - s.trail;
    // sig >= 1, so trail <= 63.
    Ok(r.read_long(sig)? << s.trail)
}

/// Iterator state.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    s: State,
}

impl Decoder {
    pub(crate) fn new() -> Self {
        Decoder { s: State::new() }
    }

    /// Decodes samples `index..` into `out` until it is full or a fault;
    /// returns how many were decoded.
    #[inline]
    pub(crate) fn decode(
        &mut self,
        r: &mut BitReader<'_>,
        index: u16,
        out: &mut [(i64, u64)],
    ) -> (usize, Option<Fault>) {
        let mut done = 0;
        // The first two samples have their own codes.
        while index as usize + done < 2 && done < out.len() {
            let res = self.first_samples(r, index + done as u16);
            match r.unless_overrun(res) {
                Ok(v) => out[done] = (self.s.t, v),
                Err(f) => return (done, Some(f)),
            }
            done += 1;
        }
        // Work on copies so the state lives in registers.
        let mut s = self.s.clone();
        let mut rr = r.clone();
        let mut fault = None;
        while done < out.len() {
            done += Self::fast_decimal(&mut rr, &mut s, &mut out[done..]);
            if done == out.len() {
                break;
            }
            let warm = index.wrapping_add(done as u16) < RICE_WARMUP;
            let res = Self::sample(&mut rr, &mut s, warm);
            match rr.unless_overrun(res) {
                Ok(v) => out[done] = (s.t, v),
                Err(f) => {
                    fault = Some(f);
                    break;
                }
            }
            done += 1;
        }
        self.s = s;
        *r = rr;
        (done, fault)
    }

    /// The common case, decoded with as few instructions and branches as
    /// possible: decimal mode, no escapes, no special state, and both codes
    /// of a sample within one refill. Decodes into `out` until a sample needs
    /// the general path ([`Decoder::sample`]) and leaves that sample
    /// undecoded; returns the number decoded. Must stay equivalent to the
    /// general path for the samples it accepts (the round-trip tests cover
    /// both, since chunks start on the general path).
    #[inline(always)]
    fn fast_decimal(r: &mut BitReader<'_>, s: &mut State, out: &mut [(i64, u64)]) -> usize {
        if !s.decimal || s.fresh || s.t_jump || s.v_jump {
            return 0;
        }
        // Only the chunk's zero-padded tail can be read past its end.
        if r.in_tail() {
            Self::fast_decimal_loop::<true>(r, s, out)
        } else {
            Self::fast_decimal_loop::<false>(r, s, out)
        }
    }

    /// Reads at a bit position with one unaligned load per sample instead
    /// of a bit buffer: fewer live registers and no refill bookkeeping.
    ///
    /// A sample is `[flag] [qt zeros, 1] [qv zeros, 1] [kt bits] [kv bits]`.
    /// Both prefixes come first so that finding where the sample ends, the
    /// loop's dependency chain from one load to the next, takes two
    /// `leading_zeros` and no shift by a Rice parameter.
    ///
    /// Not inlined: on its own the loop keeps all its state in registers,
    /// where inside the batch decoder it spilled the general path's.
    #[inline(never)]
    fn fast_decimal_loop<const TAIL: bool>(
        r: &mut BitReader<'_>,
        s: &mut State,
        out: &mut [(i64, u64)],
    ) -> usize {
        let (data, limit) = (r.data, r.limit);
        let mut bitpos = r.bit_position();
        let (mut t, mut interval, mut tm) = (s.t, s.interval, s.t_rice.m);
        let (mut n, mut avg, mut vm) = (s.n, s.avg, s.v_rice.m);
        let mut exact = s.exact;
        let p = POW10[s.scale & MAX_SCALE];
        let total = out.len();
        let mut slots = out.iter_mut();
        while slots.len() > 0 {
            let Some(mut word) = load_at(data, bitpos) else {
                break;
            };
            // At least 57 valid bits.
            let mut pos = bitpos;
            if exact {
                if word >> 63 == 0 {
                    if TAIL && pos + 1 > limit {
                        break;
                    }
                    // Exactly predicted: both errors are zero.
                    bitpos = pos + 1;
                    tm -= tm >> RICE_ALPHA;
                    vm -= vm >> RICE_ALPHA;
                    t = t.wrapping_add(interval.wrapping_add(1 << (T_FRAC - 1)) >> T_FRAC);
                    n = n.wrapping_add(avg >> V_FRAC);
                    if let Some(slot) = slots.next() {
                        *slot = (t, (n as f64 / p).to_bits());
                    }
                    continue;
                }
                word <<= 1;
                pos += 1;
            }
            // The two prefixes' terminating ones: the top set bit of the
            // word (bit `b1`), then the next one (`b2`). The `| 1` keeps
            // `leading_zeros` from seeing zero (one `bsr`, no zero check);
            // a word without two real ones gives `b2 == 0` and bails out.
            let b1 = 63 - (word | 1).leading_zeros();
            let b2 = 63 - ((word ^ (1 << b1)) | 1).leading_zeros();
            // qt + qv = 62 - b2; both below QMAX (no escape) if the sum is.
            if b2 <= 62 - QMAX {
                break;
            }
            let kt = Rice { m: tm }.k();
            let kv = Rice { m: vm }.k();
            // Prefixes (qt + qv + 2 = 64 - b2 bits) and low bits.
            let len = 64 - b2 + kt + kv;
            if len > 56 || (TAIL && pos + len as usize > limit) {
                // Past the loaded bits, or into the tail's padding
                // (truncated): the general path decides.
                break;
            }
            bitpos = pos + len as usize;
            // The low bits, left aligned: 1 <= 64 - b2 <= 21.
            let low = word << (64 - b2);
            let zt = (u64::from(63 - b1) << kt) | ((low >> 1) >> (63 - kt));
            let zv = (u64::from(b1 - 1 - b2) << kv) | (((low << kt) >> 1) >> (63 - kv));
            // Commit, as State::learn_* do for non-escaped codes. Without
            // an escape z < QMAX << k, so the Rice caps do not apply.
            tm = tm - (tm >> RICE_ALPHA) + zt;
            vm = vm - (vm >> RICE_ALPHA) + zv;
            let et = unzigzag(zt);
            t = t
                .wrapping_add(interval.wrapping_add(1 << (T_FRAC - 1)) >> T_FRAC)
                .wrapping_add(et);
            interval = interval.wrapping_add(et);
            let ev = unzigzag(zv);
            n = n.wrapping_add(avg >> V_FRAC).wrapping_add(ev);
            avg = avg.wrapping_add(ev);
            exact = (zt | zv) == 0;
            if let Some(slot) = slots.next() {
                *slot = (t, (n as f64 / p).to_bits());
            }
        }
        let done = total - slots.len();
        if let Some(&(_, vbits)) = out[..done].last() {
            r.set_bit_position(bitpos);
            (s.t, s.interval, s.t_rice.m) = (t, interval, tm);
            (s.n, s.avg, s.v_rice.m) = (n, avg, vm);
            s.exact = exact;
            s.vbits = vbits;
        }
        done
    }

    #[inline(never)]
    fn first_samples(&mut self, r: &mut BitReader<'_>, index: u16) -> Result<u64, Fault> {
        let s = &mut self.s;
        if index == 1 {
            let delta = unzigzag(read_varlen(r)?);
            s.interval = delta.wrapping_shl(T_FRAC);
            s.t = s.t.wrapping_add(delta);
            r.refill();
            return Ok(if s.decimal {
                Self::decimal_mode(r, s, true)?.0
            } else {
                Self::xor_mode(r, s)?.0
            });
        }
        s.t = unzigzag(read_varlen(r)?);
        if r.read_bit()? {
            let scale = r.read(4)? as usize;
            let n = unzigzag(read_varlen(r)?);
            s.enter_decimal(scale, n);
            s.vbits = decimal_value(n, scale).to_bits();
        } else {
            s.vbits = r.read_long(64)?;
        }
        Ok(s.vbits)
    }

    /// Decodes one sample after the second; returns its value bits.
    #[inline(always)]
    fn sample(r: &mut BitReader<'_>, s: &mut State, warm: bool) -> Result<u64, Fault> {
        r.refill();
        if s.exact {
            if r.avail() == 0 {
                return Err(Fault::Truncated(Truncated));
            }
            let predicted = r.peek_word() >> 63 == 0;
            r.consume(1);
            if predicted {
                s.predicted_sample();
                if s.decimal {
                    s.vbits = decimal_value(s.n, s.scale).to_bits();
                }
                return Ok(s.vbits);
            }
        }
        let k = s.t_rice.k();
        let (z, big, value_prefix) = if s.decimal {
            // The value's prefix comes before the timestamp's low bits.
            let prefix = read_prefix(r)?;
            let value_prefix = read_prefix(r)?;
            match prefix {
                Some(q) => (read_low(r, q, k)?, false, Some(value_prefix)),
                None => (read_varlen(r)?, true, Some(value_prefix)),
            }
        } else {
            match read_rice(r, k)? {
                Some(z) => (z, false, None),
                None => (read_varlen(r)?, true, None),
            }
        };
        s.t_rice.update(z, k, warm);
        let err = unzigzag(z);
        let delta = s.predicted_interval().wrapping_add(err);
        s.learn_interval(delta, err, big);
        s.t = s.t.wrapping_add(delta);
        r.refill();
        let (v, exact) = match value_prefix {
            Some(q) => Self::decimal_rest(r, s, q, warm)?,
            None => Self::xor_mode(r, s)?,
        };
        s.exact = z == 0 && exact;
        Ok(v)
    }

    /// Decodes a value in decimal mode; also returns whether it was an
    /// exact prediction.
    #[inline(always)]
    fn decimal_mode(
        r: &mut BitReader<'_>,
        s: &mut State,
        warm: bool,
    ) -> Result<(u64, bool), Fault> {
        r.refill();
        let prefix = read_prefix(r)?;
        Self::decimal_rest(r, s, prefix, warm)
    }

    /// Decodes a value in decimal mode whose Rice prefix was `prefix`.
    #[inline(always)]
    fn decimal_rest(
        r: &mut BitReader<'_>,
        s: &mut State,
        prefix: Option<u32>,
        warm: bool,
    ) -> Result<(u64, bool), Fault> {
        let k = s.v_rice.k();
        let (z, big) = match prefix {
            Some(q) => (read_low(r, q, k)?, false),
            None => match r.read(2)? {
                ESC_BIG => (read_varlen(r)?, true),
                ESC_STALE => return Ok((STALE_NAN, false)),
                ESC_XOR => {
                    if r.read_bit()? && !window_valid(read_window(r, s)?) {
                        return Err(Fault::Window);
                    }
                    s.vbits ^= read_in_window(r, s)?;
                    s.decimal = false;
                    return Ok((s.vbits, false));
                }
                _ => return Ok((Self::rescale(r, s)?, false)),
            },
        };
        s.v_rice.update(z, k, warm);
        let err = unzigzag(z);
        let d = err.wrapping_add(s.avg >> V_FRAC);
        s.learn_decimal(d, err, big);
        s.vbits = decimal_value(s.n, s.scale).to_bits();
        Ok((s.vbits, z == 0))
    }

    /// Decodes a value in XOR mode; also returns whether it was a repeat.
    #[inline(always)]
    fn xor_mode(r: &mut BitReader<'_>, s: &mut State) -> Result<(u64, bool), Fault> {
        if !r.read_bit()? {
            return Ok((s.vbits, true));
        }
        if r.read_bit()? {
            let head = read_window(r, s)?;
            if !window_valid(head) {
                return match head {
                    WINDOW_STALE => Ok((STALE_NAN, false)),
                    WINDOW_RESCALE => Ok((Self::rescale(r, s)?, false)),
                    _ => Err(Fault::Window),
                };
            }
        }
        s.vbits ^= read_in_window(r, s)?;
        Ok((s.vbits, false))
    }

    #[inline(always)]
    fn rescale(r: &mut BitReader<'_>, s: &mut State) -> Result<u64, Fault> {
        let scale = r.read(4)? as usize;
        let n = unzigzag(read_varlen(r)?);
        s.enter_decimal(scale, n);
        s.vbits = decimal_value(n, scale).to_bits();
        Ok(s.vbits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Rice::k` computes the documented `min(40, bit_length(m >> 4))`.
    #[test]
    fn rice_k_matches_the_format() {
        let mut ms: Vec<u64> = (0..5000).collect();
        for i in 0..64 {
            ms.extend([(1u64 << i) - 1, 1 << i, (1u64 << i) + 1]);
        }
        ms.push(u64::MAX);
        for m in ms {
            let want = (64 - (m >> 4).leading_zeros()).min(K_MAX);
            assert_eq!(Rice { m }.k(), want, "m = {m}");
        }
    }

    /// `find_scale` (one division to reject a float, a binary search to
    /// find the scale) agrees with trying every scale in order, on
    /// decimals of every scale and size, on floats, and around the
    /// bounds where its shortcut stops applying (2^51 and 2^53).
    #[test]
    fn find_scale_matches_trying_every_scale() {
        let mut rng = super::super::testdata::Rng::new(5);
        let mut values = vec![
            0.0, -0.0, 1.0, 0.1, 0.3, 1e-15, 123.456, 9.007, 2.25, 2.2518,
        ];
        for _ in 0..200_000 {
            let scale = rng.range(0, 17) as usize;
            let digits = rng.range(1, 17) as u32;
            let n = rng.range(-(10i64.pow(digits)), 10i64.pow(digits));
            values.push(n as f64 / POW10[scale.min(MAX_SCALE)]);
            values.push(rng.unit() * 10f64.powi(rng.range(-6, 17) as i32));
        }
        for e in [51, 52, 53] {
            let b = (1u64 << e) as f64;
            for d in [-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0] {
                values.extend(POW10.iter().map(|p| (b + d) / p));
            }
        }
        for v in values {
            let scan = (0..=MAX_SCALE).find_map(|s| decimal_at(v, s).map(|n| (s, n)));
            assert_eq!(find_scale(v), scan, "v = {v:e} ({:#x})", v.to_bits());
        }
    }
}
