//! Encoding 3, Packed: the Adaptive encoding's predictors (a running mean
//! of the scrape interval, values as decimal integers with a running mean
//! of their deltas), with the prediction errors stored as fixed-width
//! fields in blocks of 16 samples instead of one variable-length code per
//! sample.
//!
//! Decoding is what the format is for. A block's header gives both field
//! widths, so every sample of the block starts at a known bit: one load
//! per sample yields both fields, with no prefix to scan and no per-sample
//! code parameter to update (the Adaptive decoder spends most of its time
//! on exactly those two dependency chains). The price is a few bits per
//! sample where one error in a block is much larger than the others.
//!
//! The encoder keeps a chunk decodable after every append: a sample whose
//! errors do not fit the current block's widths (or whose value is no
//! decimal at the block's scale) makes it rewrite the current block from
//! its first sample with new parameters; a completed block is rewritten
//! with narrower widths when that saves bits. The block's earlier samples
//! are read back from the chunk itself, so the encoder holds no copy of
//! them. The format is described in `docs/formats.md`.

use super::adaptive::{
    decimal_at, decimal_value, find_scale, read_varlen, write_varlen, MAX_SCALE, POW10, ROUND_MAGIC,
};
use super::bits::{load_at, BitReader, BitWriter, Cursor, Tail};
use super::{unzigzag, zigzag, Fault};

/// Samples per block (the last block of a chunk may hold fewer).
pub(crate) const BLOCK: u16 = 16;
/// Samples before the first block (they have codes of their own).
const FIRST: u16 = 2;
/// Fraction bits of the interval and value-delta means.
const T_FRAC: u32 = 4;
const V_FRAC: u32 = 4;
/// Errors of at most these magnitudes are never outliers of the
/// predictors, so a block whose fields are at most `T_SAFE_BITS` /
/// `V_SAFE_BITS` wide (errors in `-2^(w-1) ..= 2^(w-1) - 1`) needs no
/// outlier check.
const T_BIG_FLOOR: u64 = 1 << (T_SAFE_BITS - 1);
const V_BIG_FLOOR: u64 = 1 << (V_SAFE_BITS - 1);
const T_SAFE_BITS: u8 = 8;
const V_SAFE_BITS: u8 = 17;
/// Bits of a header that changes the parameters (flag, mode, fields).
const HEADER_DECIMAL_BITS: u32 = 2 + 4 + 7 + 7;

/// How the samples of a block are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Params {
    /// XOR of the value bits with the previous value's, instead of the
    /// error of the decimal prediction.
    xor: bool,
    /// Decimal scale: values are `n / 10^scale`. XOR blocks keep the last
    /// decimal block's scale.
    scale: u8,
    /// Width of the timestamp field (zigzag of the interval error).
    wt: u8,
    /// Width of the value field.
    wv: u8,
    /// XOR blocks: the value field is the XOR shifted right by `trail`.
    trail: u8,
}

/// What both directions track to predict the next sample.
#[derive(Debug, Clone, Copy)]
struct State {
    t: i64,
    /// Mean interval, times 2^T_FRAC.
    interval: i64,
    /// The last interval error was an outlier.
    t_jump: bool,
    /// Decimal integer of the last decimal value.
    n: i64,
    /// Mean delta of `n`, times 2^V_FRAC.
    avg: i64,
    /// The last value error was an outlier.
    v_jump: bool,
    /// Bits of the last value.
    vbits: u64,
    p: Params,
}

/// A predictor's running mean (times 2^`frac`) after an error `e`, with
/// `delta` the actual step: an error that is not an outlier (`big`) moves
/// the mean; a second outlier in a row restarts it from `delta`. The
/// outlier branch is out of line when `OUT_OF_LINE` (what the decoding
/// loops want; the encoder is faster with a select).
#[inline(always)]
fn update_mean<const OUT_OF_LINE: bool>(
    mean: &mut i64,
    jump: &mut bool,
    big: bool,
    e: i64,
    delta: i64,
    frac: u32,
) {
    if OUT_OF_LINE {
        if big {
            (*mean, *jump) = outlier(*mean, *jump, delta, frac);
        } else {
            *mean = mean.wrapping_add(e);
            *jump = false;
        }
    } else {
        if !big {
            *mean = mean.wrapping_add(e);
        } else if *jump {
            *mean = delta.wrapping_shl(frac);
        }
        *jump = big;
    }
}

/// The rare branch of [`update_mean`]: an outlier
/// restarts the mean `mean` from `delta` if the last one was an outlier
/// too. Out of line and by value: as a select it kept more values live in
/// the decoding loops than they have registers for.
#[cold]
#[inline(never)]
fn outlier(mean: i64, jump: bool, delta: i64, frac: u32) -> (i64, bool) {
    (if jump { delta.wrapping_shl(frac) } else { mean }, true)
}

/// `x * 10^k` (k > 0) or `x / 10^-k` (k < 0), wrapping.
fn rescale(x: i64, k: i32) -> i64 {
    let f = 10i64.wrapping_pow(k.unsigned_abs());
    if k >= 0 {
        x.wrapping_mul(f)
    } else {
        x / f
    }
}

impl State {
    fn new() -> Self {
        State {
            t: 0,
            interval: 0,
            t_jump: false,
            n: 0,
            avg: 0,
            v_jump: false,
            vbits: 0,
            p: Params {
                xor: true,
                scale: 0,
                wt: 0,
                wv: 0,
                trail: 0,
            },
        }
    }

    #[inline(always)]
    fn predicted_interval(&self) -> i64 {
        self.interval.wrapping_add(1 << (T_FRAC - 1)) >> T_FRAC
    }

    /// Moves to the next timestamp, whose interval differs from the
    /// prediction by `e`. An error beyond a quarter of the interval (a
    /// missed scrape) leaves the mean alone; a second one in a row means
    /// the interval changed and the mean restarts from it. Errors of at
    /// most [`T_BIG_FLOOR`] are never outliers.
    #[inline(always)]
    fn step_t(&mut self, e: i64) {
        self.step_t_as::<false>(e);
    }

    /// [`State::step_t`], with the outlier branch out of line when
    /// `OUT_OF_LINE` (see [`update_mean`]).
    #[inline(always)]
    fn step_t_as<const OUT_OF_LINE: bool>(&mut self, e: i64) {
        let pred = self.predicted_interval();
        let delta = pred.wrapping_add(e);
        self.t = self.t.wrapping_add(delta);
        let big = e.unsigned_abs() > ((pred as u64) >> 2) + T_BIG_FLOOR;
        update_mean::<OUT_OF_LINE>(&mut self.interval, &mut self.t_jump, big, e, delta, T_FRAC);
    }

    /// [`State::step_t`] to timestamp `t`, whose error `e` is known to be
    /// `safe` (within [`T_BIG_FLOOR`], so never an outlier: the mean just
    /// adds) or not.
    #[inline(always)]
    fn step_t_safe(&mut self, t: i64, e: i64, safe: bool) {
        if safe {
            self.t = t;
            self.interval = self.interval.wrapping_add(e);
            self.t_jump = false;
        } else {
            self.step_t(e);
        }
    }

    /// [`State::step_v`] to decimal integer `n`, as [`State::step_t_safe`]
    /// (within [`V_BIG_FLOOR`]).
    #[inline(always)]
    fn step_v_safe(&mut self, n: i64, e: i64, safe: bool) {
        if safe {
            self.n = n;
            self.avg = self.avg.wrapping_add(e);
            self.v_jump = false;
        } else {
            self.step_v(e);
        }
    }

    #[inline(always)]
    fn predicted_delta(&self) -> i64 {
        self.avg >> V_FRAC
    }

    /// Moves to the next decimal value, whose delta differs from the
    /// prediction by `e`; outliers (a counter reset) as for timestamps,
    /// beyond four times the mean delta. Errors of at most [`V_BIG_FLOOR`]
    /// are never outliers.
    #[inline(always)]
    fn step_v(&mut self, e: i64) {
        self.step_v_as::<false>(e);
    }

    /// [`State::step_v`], with the outlier branch out of line when
    /// `OUT_OF_LINE` (see [`update_mean`]).
    #[inline(always)]
    fn step_v_as<const OUT_OF_LINE: bool>(&mut self, e: i64) {
        let pred = self.predicted_delta();
        let d = pred.wrapping_add(e);
        self.n = self.n.wrapping_add(d);
        // |pred| <= 2^59 (a mean in i64 shifted by V_FRAC), so the bound
        // cannot overflow.
        let big = e.unsigned_abs() > (pred.unsigned_abs() << 2) + V_BIG_FLOOR;
        update_mean::<OUT_OF_LINE>(&mut self.avg, &mut self.v_jump, big, e, d, V_FRAC);
    }

    /// Starts a block coded with `p`. Entering decimal coding (from XOR,
    /// or at another scale) re-derives the integer from the last value
    /// where it is a decimal at the new scale, and rescales the mean delta.
    fn enter_block(&mut self, p: Params) {
        if !p.xor && (self.p.xor || p.scale != self.p.scale) {
            let k = i32::from(p.scale) - i32::from(self.p.scale);
            self.avg = rescale(self.avg, k);
            self.n = match decimal_at(f64::from_bits(self.vbits), usize::from(p.scale)) {
                Some(n) => n,
                None => rescale(self.n, k),
            };
        }
        self.p = p;
    }
}

/// [`decimal_at`] for the fast paths: `v` at `scale` as an integer, or
/// `None` (also for some decimals [`decimal_at`] accepts: integers of 2^51
/// or more at the scale).
///
/// The rounding (adding 1.5 * 2^52 leaves round(x) in the low mantissa
/// bits) is only right for |x| < 2^51, and there is no test for that:
/// beyond it, and for NaN and infinities, the integer it gives is wrong,
/// and a wrong integer never passes the check that `n / 10^scale` is `v`
/// bit for bit (for |x| >= 2^51 it comes out near x / 2 or smaller). An
/// integer that passes the check codes `v` exactly, however it was found.
#[inline(always)]
fn decimal_small(v: f64, scale: u8) -> Option<i64> {
    decimal_with(v, POW10[usize::from(scale) & MAX_SCALE])
}

/// [`decimal_small`] with `p = 10^scale`.
#[inline(always)]
fn decimal_with(v: f64, p: f64) -> Option<i64> {
    let x = v * p;
    let n = ((x + ROUND_MAGIC).to_bits() as i64).wrapping_sub(ROUND_MAGIC.to_bits() as i64);
    ((n as f64 / p).to_bits() == v.to_bits()).then_some(n)
}

/// The OR of the zigzag codes of `errors`. A code is the error folded to
/// non-negative (`e ^ (e >> 15)`) shifted up one, with the sign as its low
/// bit; so the OR is the folded errors' OR shifted up, with the low bit set
/// if any error is negative, and it is computed on 16-bit lanes.
#[inline(always)]
fn zigzag_or_i16(errors: &[i16]) -> u64 {
    let (mut folded, mut any) = (0u16, 0u16);
    for &e in errors {
        folded |= (e ^ (e >> 15)) as u16;
        any |= e as u16;
    }
    (u64::from(folded) << 1) | u64::from(any >> 15)
}

/// [`zigzag_or_i16`] of `i32` errors (stored as `u32`).
#[inline(always)]
fn zigzag_or_i32(errors: &[u32]) -> u64 {
    let (mut folded, mut any) = (0u32, 0u32);
    for &e in errors {
        let e = e as i32;
        folded |= (e ^ (e >> 31)) as u32;
        any |= e as u32;
    }
    (u64::from(folded) << 1) | u64::from(any >> 31)
}

/// Whether error `e` fits a field of `w` bits (`-2^(w-1) ..= 2^(w-1) - 1`).
#[inline(always)]
fn within(e: i64, w: u8) -> bool {
    (e.wrapping_add(1 << (w - 1)) as u64) >> w == 0
}

/// Bit length of `z` (0 for 0).
#[inline(always)]
fn bits_of(z: u64) -> u8 {
    (64 - z.leading_zeros()) as u8
}

/// Whether `z` fits in `w` bits.
#[inline(always)]
fn fits(z: u64, w: u8) -> bool {
    w >= 64 || z >> w == 0
}

/// The fields of one sample under the state's parameters, and the value's
/// bits; `None` if the value cannot be coded in this block's mode. Leaves
/// the state at the sample.
#[inline(always)]
fn fields(s: &mut State, t: i64, v: f64) -> Option<(u64, u64)> {
    let et = t.wrapping_sub(s.t).wrapping_sub(s.predicted_interval());
    let zv = if s.p.xor {
        let x = v.to_bits() ^ s.vbits;
        if x & ((1u64 << s.p.trail) - 1) != 0 {
            // Bits below the window: only a new window can hold them.
            return None;
        }
        x >> s.p.trail
    } else {
        let n = decimal_at(v, usize::from(s.p.scale))?;
        let ev = n.wrapping_sub(s.n).wrapping_sub(s.predicted_delta());
        s.step_v(ev);
        zigzag(ev)
    };
    s.step_t(et);
    let zt = zigzag(et);
    s.vbits = v.to_bits();
    Some((zt, zv))
}

/// The bias of a `w`-bit field: an error `e` in `-2^(w-1) ..= 2^(w-1) - 1`
/// (exactly the errors whose zigzag code fits `w` bits) is stored as
/// `e + 2^(w-1)`, which decodes with one subtraction.
#[inline(always)]
fn bias(w: u32) -> u64 {
    1u64.checked_shl(w).map_or(1 << 63, |x| x >> 1)
}

/// The stored field of an error given as its zigzag code `z`.
#[inline(always)]
fn to_field(z: u64, w: u8) -> u64 {
    let f = (unzigzag(z) as u64).wrapping_add(bias(u32::from(w)));
    match 1u64.checked_shl(u32::from(w)) {
        Some(limit) => f & (limit - 1),
        None => f,
    }
}

/// The error stored in field `f` of width `w`.
#[inline(always)]
fn from_field(f: u64, w: u8) -> i64 {
    f.wrapping_sub(bias(u32::from(w))) as i64
}

/// Writes a block's `fields`, each `n` bits (`1 <= n <= 63`), two or
/// four per value where they fit 63 bits.
#[inline(always)]
fn write_grouped(w: &mut BitWriter, fields: &[u64; BLOCK as usize], n: u32) {
    if n > 31 {
        w.write_words(fields, n);
    } else if n > 15 {
        let pairs: [u64; BLOCK as usize / 2] =
            std::array::from_fn(|i| (fields[2 * i] << n) | fields[2 * i + 1]);
        w.write_words(&pairs, 2 * n);
    } else {
        let quads: [u64; BLOCK as usize / 4] = std::array::from_fn(|i| {
            let f = &fields[4 * i..4 * i + 4];
            (((((f[0] << n) | f[1]) << n) | f[2]) << n) | f[3]
        });
        w.write_words(&quads, 4 * n);
    }
}

/// Writes a sample's two fields at the block's widths; `zt`, `zv` are the
/// zigzag codes of the errors (for XOR blocks `zv` is the shifted XOR).
#[inline(always)]
fn write_fields(w: &mut BitWriter, p: Params, zt: u64, zv: u64) {
    let width = u32::from(p.wt) + u32::from(p.wv);
    if width == 0 {
        return;
    }
    let ft = to_field(zt, p.wt);
    let fv = if p.xor { zv } else { to_field(zv, p.wv) };
    if width <= 56 {
        w.write((ft << p.wv) | fv, width);
    } else {
        w.write_long(ft, u32::from(p.wt));
        w.write_long(fv, u32::from(p.wv));
    }
}

/// Writes a block header: one bit when the block keeps `prev`'s
/// parameters (inline: the common case), else the parameters.
#[inline(always)]
fn write_header(w: &mut BitWriter, prev: Params, p: Params) {
    if p == prev {
        w.write_bit(false);
    } else {
        write_params(w, p);
    }
}

/// The header of a block whose parameters change.
#[inline(never)]
fn write_params(w: &mut BitWriter, p: Params) {
    let (wt, wv) = (u64::from(p.wt), u64::from(p.wv));
    if p.xor {
        let h = (0b11 << 20) | (wt << 13) | (u64::from(p.trail) << 7) | wv;
        w.write(h, 22);
    } else {
        let h = (0b10 << 18) | (u64::from(p.scale) << 14) | (wt << 7) | wv;
        w.write(h, HEADER_DECIMAL_BITS);
    }
}

fn header_bits(prev: Params, p: Params) -> u32 {
    match (p == prev, p.xor) {
        (true, _) => 1,
        (false, false) => HEADER_DECIMAL_BITS,
        (false, true) => 2 + 7 + 6 + 7,
    }
}

/// Reads a block header and enters the block.
fn read_header(r: &mut BitReader<'_>, s: &mut State) -> Result<(), Fault> {
    if !r.read_bit()? {
        return Ok(());
    }
    let p = if r.read_bit()? {
        let wt = r.read(7)? as u8;
        let trail = r.read(6)? as u8;
        let wv = r.read(7)? as u8;
        if wt > 64 || u32::from(trail) + u32::from(wv) > 64 {
            return Err(Fault::Window);
        }
        Params {
            xor: true,
            scale: s.p.scale,
            wt,
            wv,
            trail,
        }
    } else {
        let scale = r.read(4)? as u8;
        let wt = r.read(7)? as u8;
        let wv = r.read(7)? as u8;
        if wt > 64 || wv > 64 {
            return Err(Fault::Window);
        }
        Params {
            xor: false,
            scale,
            wt,
            wv,
            trail: 0,
        }
    };
    s.enter_block(p);
    Ok(())
}

/// Reads one block sample with the general reader; returns the value bits.
#[inline(always)]
fn read_sample(r: &mut BitReader<'_>, s: &mut State) -> Result<u64, Fault> {
    let ft = r.read_long(u32::from(s.p.wt))?;
    let fv = r.read_long(u32::from(s.p.wv))?;
    s.step_t(from_field(ft, s.p.wt));
    if s.p.xor {
        // trail + wv <= 64, so the field shifted by trail stays in range.
        s.vbits ^= fv.wrapping_shl(u32::from(s.p.trail));
    } else {
        s.step_v(from_field(fv, s.p.wv));
        s.vbits = decimal_value(s.n, usize::from(s.p.scale)).to_bits();
    }
    Ok(s.vbits)
}

/// The parameters that code `samples` (timestamp, value bits) from state
/// `start` in the fewest bits: decimal at the lowest scale every value
/// allows (not below the current one), else XOR; widths as narrow as the
/// samples allow.
fn choose(start: &State, samples: &[(i64, u64)]) -> Params {
    // The lowest scale (not below the current one) at which every value
    // might be a decimal, then checked: a large integer may not survive
    // the move to a finer scale.
    let mut scale = usize::from(start.p.scale);
    let mut decimal = true;
    for &(_, vb) in samples {
        match find_scale(f64::from_bits(vb)) {
            Some((sc, _)) => scale = scale.max(sc),
            None => decimal = false,
        }
    }
    decimal = decimal
        && samples
            .iter()
            .all(|&(_, vb)| decimal_at(f64::from_bits(vb), scale).is_some());
    let p = Params {
        xor: !decimal,
        scale: if decimal { scale as u8 } else { start.p.scale },
        wt: 64,
        wv: 64,
        trail: 0,
    };
    let mut s = *start;
    s.enter_block(p);
    let (mut or_t, mut or_v) = (0u64, 0u64);
    for &(t, vb) in samples {
        if let Some((zt, zv)) = fields(&mut s, t, f64::from_bits(vb)) {
            or_t |= zt;
            or_v |= zv;
        } else {
            // A value the scale check accepted is a decimal at `scale`.
            debug_assert!(false, "chosen parameters reject a sample");
        }
    }
    let (wv, trail) = if decimal {
        (bits_of(or_v), 0)
    } else if or_v == 0 {
        (0, 0)
    } else {
        let trail = or_v.trailing_zeros() as u8;
        (64 - or_v.leading_zeros() as u8 - trail, trail)
    };
    let p = Params {
        wt: bits_of(or_t),
        wv,
        trail,
        ..p
    };
    // The previous block's parameters, if they code the samples at most
    // as wide, save a header.
    let prev = start.p;
    if prev.xor == p.xor
        && prev.scale == p.scale
        && prev.wt >= p.wt
        && (if p.xor {
            prev.trail <= p.trail
                && u32::from(prev.trail) + u32::from(prev.wv)
                    >= u32::from(p.trail) + u32::from(p.wv)
        } else {
            prev.wv >= p.wv
        })
    {
        let n = samples.len() as u32;
        let wide = n * (u32::from(prev.wt) + u32::from(prev.wv)) + 1;
        let narrow = n * (u32::from(p.wt) + u32::from(p.wv)) + header_bits(prev, p);
        if wide <= narrow {
            return prev;
        }
    }
    p
}

/// Appender state.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    s: State,
    /// The previous block's parameters (what a `0` header keeps), the
    /// bit where the current block starts and the index of its first
    /// sample. The state at the block start is not kept (it would double
    /// the encoder's size in every head series): the rare rewrite that
    /// needs it decodes the chunk up to the block.
    prev_p: Params,
    start_bit: u32,
    block_index: u16,
    /// Samples in the current block.
    in_block: u16,
    /// OR of the current block's fields, to find narrower widths.
    or_t: u64,
    or_v: u64,
    /// XOR block starts before the next search of every decimal scale, and
    /// the [`FRESH`] flag.
    search_in: u8,
    /// Samples of the current block appended but not written yet: a block
    /// is written once it is complete, at the widths that fit all of its
    /// samples, instead of being repacked every time a sample needs a
    /// wider field. While any are pending, nothing of the block is written
    /// (`in_block` is 0).
    pend: u8,
    /// Their timestamp errors,
    pend_t: [i16; BLOCK as usize],
    /// the low halves of their value fields (the decimal error as an
    /// `i32`, or the XOR with the previous value's bits),
    pend_v: [u32; BLOCK as usize],
    /// and the high halves of XOR fields, allocated the first time one is
    /// not zero (so the series whose values are decimals do not pay for
    /// them).
    pend_hi: Option<Box<[u32; BLOCK as usize]>>,
    /// How the current block's samples wait, set at its start (`Not` once
    /// the block goes on a sample at a time).
    defer: Defer,
    /// `10^scale` of a decimal block whose samples wait.
    pow: f64,
}

/// How the samples of a block wait until it is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Defer {
    /// As decimal errors (the block's widths are not beyond what the fast
    /// paths handle).
    Decimal,
    /// As XOR fields.
    Xor,
    /// Not at all: the block is written a sample at a time.
    Not,
    /// The next sample starts a block (or is one of the first two), which
    /// decides how its samples wait.
    Start,
}

/// Sets the chunk header's sample count to `n`.
#[inline(always)]
fn set_count(w: &mut BitWriter, n: u16) {
    w.set_header(1, &n.to_be_bytes());
}

/// A flag in `Encoder::search_in`: an XOR block started with the previous
/// one, whose first value has yet to decide whether it stays XOR
/// ([`Encoder::choose_mode`]). A field of its own would make every head
/// series 16 bytes larger (past a malloc size class); a `Defer` variant
/// cost the decimal samples a test.
const FRESH: u8 = 0x80;

/// XOR block starts between searches of every decimal scale.
const SEARCH_EVERY: u8 = 8;
impl Encoder {
    pub(crate) fn new() -> Self {
        Encoder {
            s: State::new(),
            prev_p: State::new().p,
            start_bit: 0,
            block_index: 0,
            in_block: 0,
            or_t: 0,
            or_v: 0,
            search_in: 0,
            pend: 0,
            pend_t: [0; BLOCK as usize],
            pend_v: [0; BLOCK as usize],
            pend_hi: None,
            defer: Defer::Start,
            pow: 1.0,
        }
    }

    /// Appends a sample; `count` is the number of samples before it. Sets
    /// the chunk header's sample count whenever the writer holds every
    /// sample (no sample is pending).
    #[inline(always)]
    pub(crate) fn append(&mut self, w: &mut BitWriter, count: u16, t: i64, v: f64) {
        // Most samples wait for the rest of their block.
        if !matches!(self.defer, Defer::Decimal | Defer::Xor) || !self.defer(w, t, v) {
            self.append_rest(w, count, t, v);
        }
    }

    /// The samples that do not wait: the first two, a block's first sample
    /// (which decides how its samples wait), the samples of a block that is
    /// written a sample at a time, and a sample that cannot wait (the block
    /// so far is written, and it goes on a sample at a time).
    #[inline(never)]
    fn append_rest(&mut self, w: &mut BitWriter, count: u16, t: i64, v: f64) {
        if self.defer == Defer::Start {
            if count < FIRST {
                self.first_two(w, count, t, v);
                set_count(w, count + 1);
                return;
            }
            self.start_block(w, count, v);
            if self.defer(w, t, v) {
                return;
            }
            // The block's header now (the block goes on a sample at a time).
            self.flush(w);
        } else if self.pend == 0 && self.in_block == 0 {
            // The first sample of a block started with the previous one
            // (`next_block`), which did not wait: an XOR block's first value
            // still decides its mode if it has not yet (a timestamp error
            // too wide to wait), and a block that turned decimal waits
            // after all. (A block going on a sample at a time always holds
            // a sample once its header is written.)
            if self.search_in & FRESH != 0 {
                self.choose_mode(v);
            }
            if self.defer(w, t, v) {
                return;
            }
            self.flush(w);
        } else if self.defer != Defer::Not {
            self.flush(w);
        }
        // The samples that fit the block as it is.
        if !self.append_fitting(w, t, v) {
            self.append_slow(w, t, v);
        }
        self.in_block += 1;
        if self.in_block == BLOCK {
            self.finish_block(w);
            self.defer = Defer::Start;
        }
        set_count(w, count + 1);
    }

    /// The first two samples, which have codes of their own.
    #[inline(never)]
    fn first_two(&mut self, w: &mut BitWriter, count: u16, t: i64, v: f64) {
        if count == 0 {
            self.first(w, t, v);
        } else {
            self.second(w, t, v);
        }
    }

    /// Adds a sample of the current block to the pending ones (writing the
    /// block once it is complete) and returns true, or returns false having
    /// changed nothing: a timestamp error of 16 bits or more, or, in a
    /// decimal block, a value that is not a decimal at the block's scale, a
    /// value error of 32 bits or more, or fields already wider than 56
    /// bits. The state moves to the sample exactly as writing it would
    /// move it.
    #[inline(always)]
    fn defer(&mut self, w: &mut BitWriter, t: i64, v: f64) -> bool {
        let s = &mut self.s;
        let et = t.wrapping_sub(s.t).wrapping_sub(s.predicted_interval());
        // An error within the safe width (the usual case) fits the pending
        // width too, so that one test does for both.
        let safe_t = within(et, T_SAFE_BITS);
        if !safe_t && i64::from(et as i16) != et {
            return false;
        }
        let k = usize::from(self.pend) & (BLOCK as usize - 1);
        match self.defer {
            Defer::Decimal => {
                let vbits = v.to_bits();
                let Some(n) = decimal_with(v, self.pow) else {
                    return false;
                };
                let ev = n.wrapping_sub(s.n).wrapping_sub(s.predicted_delta());
                let safe_v = within(ev, V_SAFE_BITS);
                if !safe_v && i64::from(ev as i32) != ev {
                    return false;
                }
                s.step_t_safe(t, et, safe_t);
                s.step_v_safe(n, ev, safe_v);
                s.vbits = vbits;
                self.pend_t[k] = et as i16;
                self.pend_v[k] = ev as i32 as u32;
            }
            Defer::Xor => {
                if self.search_in & FRESH != 0 && !self.stays_xor(v) {
                    // A decimal block after all (see `append_rest`).
                    return false;
                }
                let s = &mut self.s;
                let x = v.to_bits() ^ s.vbits;
                s.step_t_safe(t, et, safe_t);
                s.vbits = v.to_bits();
                self.pend_t[k] = et as i16;
                self.pend_v[k] = x as u32;
                // The XORs' OR is kept as they come (the high halves make
                // it dear to gather at the end).
                self.or_v |= x;
                match &mut self.pend_hi {
                    Some(hi) => hi[k] = (x >> 32) as u32,
                    None if x >> 32 != 0 => self.alloc_hi(k, x),
                    None => {}
                }
            }
            Defer::Not | Defer::Start => return false,
        }
        self.pend += 1;
        if self.pend == BLOCK as u8 {
            self.flush_complete(w);
        }
        true
    }

    /// The first XOR field of the chunk with high bits: the array of high
    /// halves, zero but for pending sample `k`'s.
    #[cold]
    #[inline(never)]
    fn alloc_hi(&mut self, k: usize, x: u64) {
        let mut hi = Box::new([0u32; BLOCK as usize]);
        hi[k] = (x >> 32) as u32;
        self.pend_hi = Some(hi);
    }

    /// The first sample of an XOR block started with the previous one:
    /// whether the block stays XOR ([`Encoder::choose_mode`]).
    #[inline(never)]
    fn stays_xor(&mut self, v: f64) -> bool {
        self.choose_mode(v);
        self.defer == Defer::Xor
    }

    /// Pending sample `i`'s zigzag timestamp error.
    #[inline(always)]
    fn pend_zt(&self, i: usize) -> u64 {
        zigzag(i64::from(self.pend_t[i]))
    }

    /// Pending sample `i`'s value: the XOR, or the zigzag decimal error.
    #[inline(always)]
    fn pend_value(&self, i: usize) -> u64 {
        let lo = self.pend_v[i];
        match (&self.s.p.xor, &self.pend_hi) {
            (true, Some(hi)) => (u64::from(hi[i]) << 32) | u64::from(lo),
            (true, None) => u64::from(lo),
            (false, _) => zigzag(i64::from(lo as i32)),
        }
    }

    /// Number of samples appended but not written yet.
    pub(crate) fn pending(&self) -> u8 {
        self.pend
    }

    /// The parameters the block would have after its pending samples had
    /// each been written as they came, and the ORs of the fields at those
    /// parameters. The widths of a decimal block only grow. An XOR block's
    /// window is recomputed whenever a sample does not fit it, from the
    /// XORs of the block so far; so once any sample has not fitted, the
    /// window is the one of all the block's XORs: the last sample that did
    /// not fit set it from those before it, and every later one fitted.
    #[inline(always)]
    fn pending_params(&self) -> (Params, u64, u64) {
        let mut p = self.s.p;
        let (or_t, x) = self.pending_ors();
        if !p.xor {
            // The ORs of the pending fields (see `defer`).
            p.wt = p.wt.max(bits_of(or_t));
            p.wv = p.wv.max(bits_of(x));
            return (p, or_t, x);
        }
        // `or_v` is the OR of the pending XORs.
        // trail < 64 (a 6-bit header field).
        if x & ((1u64 << p.trail) - 1) == 0 && fits(or_t, p.wt) && fits(x >> p.trail, p.wv) {
            return (p, or_t, x >> p.trail);
        }
        // With no bit set the window keeps its place and has no width.
        if x != 0 {
            p.trail = x.trailing_zeros() as u8;
        }
        p.wt = p.wt.max(bits_of(or_t));
        p.wv = bits_of(x >> p.trail);
        (p, or_t, x >> p.trail)
    }

    /// The ORs of the pending samples' zigzag timestamp errors and of their
    /// values (zigzag decimal errors, or XORs: kept in `or_v` as they
    /// come).
    #[inline(always)]
    fn pending_ors(&self) -> (u64, u64) {
        let k = usize::from(self.pend).min(BLOCK as usize);
        let xor = self.s.p.xor;
        if k == BLOCK as usize {
            // Whole arrays: the loops run on vector lanes.
            let or_t = zigzag_or_i16(&self.pend_t);
            return (
                or_t,
                if xor {
                    self.or_v
                } else {
                    zigzag_or_i32(&self.pend_v)
                },
            );
        }
        let or_t = zigzag_or_i16(&self.pend_t[..k]);
        (
            or_t,
            if xor {
                self.or_v
            } else {
                zigzag_or_i32(&self.pend_v[..k])
            },
        )
    }

    /// Bits that writing the pending samples (a block that is not complete)
    /// would add.
    pub(crate) fn pending_bits(&self) -> usize {
        if self.pend == 0 {
            return 0;
        }
        let (p, _, _) = self.pending_params();
        header_bits(self.prev_p, p) as usize
            + usize::from(self.pend) * (usize::from(p.wt) + usize::from(p.wv))
    }

    /// Writes the current block's header and its pending samples; the block
    /// goes on a sample at a time, as if each had been written as it came.
    #[inline(never)]
    pub(crate) fn flush(&mut self, w: &mut BitWriter) {
        self.flush_with(w, false);
    }

    /// Writes a complete block: it takes the narrower widths where
    /// [`Encoder::narrowed`] says so, and the next sample starts a block.
    #[inline(never)]
    fn flush_complete(&mut self, w: &mut BitWriter) {
        self.flush_with(w, true);
    }

    /// [`Encoder::flush`] or, when `complete`, [`Encoder::flush_complete`].
    #[inline(always)]
    fn flush_with(&mut self, w: &mut BitWriter, complete: bool) {
        let (p, or_t, or_v) = self.pending_params();
        let to = if complete {
            self.narrowed(p, or_t, or_v)
        } else {
            p
        };
        write_header(w, self.prev_p, to);
        let k = usize::from(self.pend).min(BLOCK as usize);
        let (wt, wv) = (u32::from(to.wt), u32::from(to.wv));
        if wt + wv <= 63 {
            self.write_pending(w, to, k);
        } else {
            for i in 0..k {
                let zv = self.pend_value(i);
                let fv = if to.xor { zv >> to.trail } else { zv };
                write_fields(w, to, self.pend_zt(i), fv);
            }
        }
        self.s.p = to;
        self.pend = 0;
        if complete {
            self.in_block = 0;
            let count = self.block_index + BLOCK;
            set_count(w, count);
            self.next_block(w, count);
        } else {
            self.in_block = k as u16;
            self.or_t = or_t;
            self.or_v = or_v;
            self.defer = Defer::Not;
        }
    }

    /// Writes the first `k` pending samples at `to`'s widths, which fit
    /// every field and are at most 63 bits together.
    #[inline(always)]
    fn write_pending(&self, w: &mut BitWriter, to: Params, k: usize) {
        let (wt, wv) = (u32::from(to.wt), u32::from(to.wv));
        if wt + wv == 0 {
            return;
        }
        if !to.xor && wt + wv <= 31 {
            self.write_pending_narrow(w, wt, wv, k);
            return;
        }
        // Every error fits its field, so biasing needs no mask.
        let bt = (1u64 << wt) >> 1;
        let ft = |i: usize| (i64::from(self.pend_t[i]) as u64).wrapping_add(bt);
        let fields: [u64; BLOCK as usize] = if to.xor {
            let trail = u32::from(to.trail);
            let hi = self.pend_hi.as_deref().unwrap_or(&[0; BLOCK as usize]);
            std::array::from_fn(|i| {
                let x = (u64::from(hi[i]) << 32) | u64::from(self.pend_v[i]);
                (ft(i) << wv) | (x >> trail)
            })
        } else {
            let bv = (1u64 << wv) >> 1;
            std::array::from_fn(|i| {
                let fv = (i64::from(self.pend_v[i] as i32) as u64).wrapping_add(bv);
                (ft(i) << wv) | fv
            })
        };
        if k == BLOCK as usize {
            write_grouped(w, &fields, wt + wv);
        } else {
            w.write_words(&fields[..k], wt + wv);
        }
    }

    /// [`Encoder::write_pending`] of a decimal block whose two fields fit
    /// 31 bits together: the fields are made on 32-bit lanes (four at a
    /// time), and a complete block's are written two or four per value.
    #[inline(always)]
    fn write_pending_narrow(&self, w: &mut BitWriter, wt: u32, wv: u32, k: usize) {
        let (bt, bv) = ((1u32 << wt) >> 1, (1u32 << wv) >> 1);
        let mut f = [0u32; BLOCK as usize];
        for ((f, &et), &ev) in f.iter_mut().zip(&self.pend_t).zip(&self.pend_v) {
            // Wrapping: the entries after the pending ones are stale.
            *f = ((i32::from(et) as u32).wrapping_add(bt) << wv) | ev.wrapping_add(bv);
        }
        let n = wt + wv;
        if k < BLOCK as usize {
            let fields: [u64; BLOCK as usize] = std::array::from_fn(|i| u64::from(f[i]));
            w.write_words(&fields[..k], n);
        } else if n > 15 {
            let pairs: [u64; BLOCK as usize / 2] =
                std::array::from_fn(|i| (u64::from(f[2 * i]) << n) | u64::from(f[2 * i + 1]));
            w.write_words(&pairs, 2 * n);
        } else {
            let quads: [u64; BLOCK as usize / 4] = std::array::from_fn(|i| {
                let f = &f[4 * i..4 * i + 4];
                (((((u64::from(f[0]) << n) | u64::from(f[1])) << n) | u64::from(f[2])) << n)
                    | u64::from(f[3])
            });
            w.write_words(&quads, 4 * n);
        }
    }

    /// A block sample that does not fit the block as it is.
    #[inline(never)]
    fn append_slow(&mut self, w: &mut BitWriter, t: i64, v: f64) {
        if !self.append_decimal(w, t, v) {
            self.append_other(w, t, v);
        }
    }

    /// The fast path of XOR blocks: a sample whose XOR lies in the block's
    /// window and whose timestamp error fits its field.
    #[inline(always)]
    fn append_fitting_xor(&mut self, w: &mut BitWriter, t: i64, v: f64) -> bool {
        let s = &mut self.s;
        let p = s.p;
        let (wt, trail) = (u32::from(p.wt), u32::from(p.trail));
        if wt > 56 {
            return false;
        }
        let pi = s.predicted_interval();
        let et = t.wrapping_sub(s.t).wrapping_sub(pi);
        let ft = (et as u64).wrapping_add((1u64 << wt) >> 1);
        let x = v.to_bits() ^ s.vbits;
        // trail < 64 (a 6-bit header field) and trail + wv <= 64.
        let xs = x >> trail;
        if (ft >> wt) != 0 || (xs << trail) != x || !fits(xs, p.wv) {
            return false;
        }
        self.or_t |= zigzag(et);
        self.or_v |= xs;
        s.step_t_safe(t, et, wt <= u32::from(T_SAFE_BITS));
        s.vbits = v.to_bits();
        write_raw(w, ft, p.wt, xs, p.wv);
        true
    }

    /// The fast path: a decimal block whose fields are at most 56 bits wide
    /// together, and a sample whose value is a decimal at the block's scale
    /// (below 2^51 as an integer) and whose errors fit the fields. Writes it
    /// and returns true, or returns false having changed nothing.
    #[inline(always)]
    fn append_fitting(&mut self, w: &mut BitWriter, t: i64, v: f64) -> bool {
        let p = self.s.p;
        let (wt, wv) = (u32::from(p.wt), u32::from(p.wv));
        if p.xor {
            return self.append_fitting_xor(w, t, v);
        }
        if wt + wv > 56 {
            return false;
        }
        let Some(n) = decimal_small(v, p.scale) else {
            return false;
        };
        let s = &mut self.s;
        let pi = s.predicted_interval();
        let pd = s.predicted_delta();
        let et = t.wrapping_sub(s.t).wrapping_sub(pi);
        let ev = n.wrapping_sub(s.n).wrapping_sub(pd);
        // Both widths are below 57, so the shifts are in range; an error
        // fits its field exactly when the biased error does.
        let ft = (et as u64).wrapping_add((1u64 << wt) >> 1);
        let fv = (ev as u64).wrapping_add((1u64 << wv) >> 1);
        if (ft >> wt) | (fv >> wv) != 0 {
            return false;
        }
        self.or_t |= zigzag(et);
        self.or_v |= zigzag(ev);
        s.step_t_safe(t, et, wt <= u32::from(T_SAFE_BITS));
        // Errors that fit the safe widths are never outliers.
        s.step_v_safe(n, ev, wv <= u32::from(V_SAFE_BITS));
        s.vbits = v.to_bits();
        if wt + wv > 0 {
            w.write((ft << wv) | fv, wt + wv);
        }
        true
    }

    /// The last sample appended (any, once one is).
    pub(crate) fn last(&self) -> (i64, f64) {
        (self.s.t, f64::from_bits(self.s.vbits))
    }

    fn first(&mut self, w: &mut BitWriter, t: i64, v: f64) {
        let s = &mut self.s;
        write_varlen(w, zigzag(t));
        s.t = t;
        s.vbits = v.to_bits();
        if let Some((scale, n)) = find_scale(v) {
            w.write((1 << 4) | scale as u64, 5);
            write_varlen(w, zigzag(n));
            s.n = n;
            s.p = Params {
                xor: false,
                scale: scale as u8,
                wt: 0,
                wv: 0,
                trail: 0,
            };
        } else {
            w.write_bit(false);
            w.write_long(v.to_bits(), 64);
        }
    }

    fn second(&mut self, w: &mut BitWriter, t: i64, v: f64) {
        let s = &mut self.s;
        let delta = t.wrapping_sub(s.t);
        write_varlen(w, zigzag(delta));
        s.t = t;
        s.interval = delta.wrapping_shl(T_FRAC);
        match (s.p.xor, decimal_at(v, usize::from(s.p.scale))) {
            (false, Some(n)) => {
                let d = n.wrapping_sub(s.n);
                w.write_bit(true);
                write_varlen(w, zigzag(d));
                s.n = n;
                s.avg = d.wrapping_shl(V_FRAC);
            }
            _ => {
                w.write_bit(false);
                w.write_long(v.to_bits(), 64);
            }
        }
        s.vbits = v.to_bits();
    }

    /// After a complete block: a decimal block whose widths the fast paths
    /// handle is followed by one with the same parameters, so that one
    /// starts now and its samples go straight to waiting; so does an XOR
    /// block, whose first value then decides whether it stays XOR
    /// ([`Encoder::choose_mode`]); any other waits for its first sample
    /// (see [`Encoder::start_block`]).
    #[inline(always)]
    fn next_block(&mut self, w: &mut BitWriter, count: u16) {
        let p = self.s.p;
        if !p.xor && p.wt.max(p.wv) <= 56 {
            // The same scale: `pow` stays.
            self.begin_block(w, count);
            self.defer = Defer::Decimal;
        } else if p.xor {
            // Its first value decides whether it stays XOR.
            self.begin_block(w, count);
            self.defer = Defer::Xor;
            self.search_in |= FRESH;
        } else {
            self.defer = Defer::Start;
        }
    }

    /// What every block start does: the previous parameters, where the
    /// block starts, and no fields yet.
    #[inline(always)]
    fn begin_block(&mut self, w: &mut BitWriter, count: u16) {
        if count == super::SIZE_AT {
            // The first block is done: size the buffer for the chunk.
            let len = w.bit_len().div_ceil(8);
            let first = len - self.start_bit as usize / 8;
            w.reserve_total(super::expected_len(len, first));
        }
        self.prev_p = self.s.p;
        // Chunks hold at most 65,535 samples of at most 129 bits.
        self.start_bit = w.bit_len() as u32;
        self.block_index = count;
        self.or_t = 0;
        self.or_v = 0;
    }

    /// Starts a block at sample `count`, whose value is `v`: with the
    /// previous block's parameters, or after XOR blocks (a NaN, a stale
    /// marker, a value with more digits) with decimals again where `v` is
    /// one. Writes nothing: the header goes with the block's samples.
    fn start_block(&mut self, w: &mut BitWriter, count: u16, v: f64) {
        self.begin_block(w, count);
        self.choose_mode(v);
    }

    /// How a block whose first value is `v` codes and keeps its samples
    /// ([`Encoder::start_block`] after [`Encoder::begin_block`]).
    fn choose_mode(&mut self, v: f64) {
        self.search_in &= !FRESH;
        let back = if !self.s.p.xor {
            None
        } else if self.search_in == 0 {
            // Every decimal scale (sixteen tries), then not again for a few
            // blocks if none fits: a series of full-precision floats would
            // otherwise pay it at every block.
            let found = find_scale(v);
            if found.is_none() {
                self.search_in = SEARCH_EVERY - 1;
            }
            found
        } else {
            // In between, only the last decimal block's scale (a decimal
            // series interrupted by a NaN or a stale marker).
            self.search_in -= 1;
            let scale = self.s.p.scale;
            decimal_at(v, usize::from(scale)).map(|n| (usize::from(scale), n))
        };
        // Otherwise the block keeps the parameters. Either way the header
        // is written with the block (see `Encoder::flush`).
        if let Some((scale, _)) = back {
            let p = Params {
                xor: false,
                scale: scale as u8,
                wt: self.s.p.wt,
                wv: 0,
                trail: 0,
            };
            self.s.enter_block(p);
        }
        let p = self.s.p;
        self.defer = if p.xor {
            Defer::Xor
        } else if p.wt.max(p.wv) <= 56 {
            self.pow = POW10[usize::from(p.scale) & MAX_SCALE];
            Defer::Decimal
        } else {
            Defer::Not
        };
    }

    /// The common case: a decimal block and a value that is a decimal at
    /// its scale. Writes the sample (widening the block first if its errors
    /// need it) and returns true, or returns false having changed nothing.
    #[inline(always)]
    fn append_decimal(&mut self, w: &mut BitWriter, t: i64, v: f64) -> bool {
        let s = &mut self.s;
        let p = s.p;
        if p.xor || p.wt > 56 || p.wv > 56 {
            return false;
        }
        let Some(n) = decimal_at(v, usize::from(p.scale)) else {
            return false;
        };
        let et = t.wrapping_sub(s.t).wrapping_sub(s.predicted_interval());
        let ev = n.wrapping_sub(s.n).wrapping_sub(s.predicted_delta());
        let (zt, zv) = (zigzag(et), zigzag(ev));
        self.or_t |= zt;
        self.or_v |= zv;
        s.step_t(et);
        s.step_v(ev);
        s.vbits = v.to_bits();
        let (wt, wv) = (u32::from(p.wt), u32::from(p.wv));
        if zt >> wt != 0 || zv >> wv != 0 {
            // Wider fields: the block's earlier fields are repacked, then
            // this one is written at the new widths.
            let grown = Params {
                wt: p.wt.max(bits_of(zt)),
                wv: p.wv.max(bits_of(zv)),
                ..p
            };
            self.repack(w, grown);
            write_fields(w, grown, zt, zv);
            return true;
        }
        let width = wt + wv;
        if width > 56 {
            write_fields(w, p, zt, zv);
        } else if width > 0 {
            let ft = (et as u64).wrapping_add(bias(wt));
            let fv = (ev as u64).wrapping_add(bias(wv));
            w.write((ft << wv) | fv, width);
        }
        true
    }

    /// Any other sample: an XOR block, or a value that needs another mode
    /// or scale.
    #[cold]
    #[inline(never)]
    fn append_other(&mut self, w: &mut BitWriter, t: i64, v: f64) {
        let p = self.s.p;
        let et = t
            .wrapping_sub(self.s.t)
            .wrapping_sub(self.s.predicted_interval());
        let zt = zigzag(et);
        if p.xor && bits_of(zt) <= 56 {
            // XOR blocks take any value: at worst the window widens.
            let x = v.to_bits() ^ self.s.vbits;
            self.s.step_t(et);
            self.s.vbits = v.to_bits();
            self.or_t |= zt;
            let below = x & ((1u64 << p.trail) - 1);
            if below == 0 && fits(zt, p.wt) && fits(x >> p.trail, p.wv) {
                write_fields(w, p, zt, x >> p.trail);
                self.or_v |= x >> p.trail;
                return;
            }
            let union = (self.or_v << p.trail) | x;
            let trail = if union == 0 {
                p.trail
            } else {
                union.trailing_zeros() as u8
            };
            let grown = Params {
                wt: p.wt.max(bits_of(zt)),
                wv: bits_of(union >> trail),
                trail,
                ..p
            };
            self.repack(w, grown);
            self.or_v = union >> trail;
            write_fields(w, grown, zt, x >> trail);
            return;
        }
        let mut s = self.s;
        match fields(&mut s, t, v) {
            Some((zt, zv)) if fits(zt, p.wt) && fits(zv, p.wv) => {
                write_fields(w, p, zt, zv);
                self.s = s;
                self.or_t |= zt;
                self.or_v |= zv;
            }
            _ => self.rewrite_block(w, (t, v.to_bits())),
        }
    }

    /// Rewrites the current block's fields (all but the sample being
    /// appended, `in_block` of them) at the widths of `to`, which has the
    /// block's mode and scale and fits every field; the state moves to `to`.
    /// Works on the stored fields directly: a decimal field moves to the new
    /// width's bias, an XOR field to the new window's trail.
    fn repack(&mut self, w: &mut BitWriter, to: Params) {
        let from = self.s.p;
        let k = usize::from(self.in_block);
        let (wf, wn) = (
            u32::from(from.wt) + u32::from(from.wv),
            u32::from(to.wt) + u32::from(to.wv),
        );
        if !from.xor && wf <= 56 && wn <= 56 {
            self.repack_decimal(w, to, k, wf, wn);
            return;
        }
        let mut fields = [(0u64, 0u64); BLOCK as usize];
        let body = self.start_bit as usize + header_bits(self.prev_p, from) as usize;
        read_raw(w.padded(), body, from, &mut fields[..k]);
        w.truncate(self.start_bit as usize);
        write_header(w, self.prev_p, to);
        let dt = bias(u32::from(to.wt)).wrapping_sub(bias(u32::from(from.wt)));
        let dv = bias(u32::from(to.wv)).wrapping_sub(bias(u32::from(from.wv)));
        let (mt, mv) = (mask(to.wt), mask(to.wv));
        for &(ft, fv) in &fields[..k] {
            let fv = if from.xor {
                (fv << from.trail) >> to.trail
            } else {
                fv.wrapping_add(dv) & mv
            };
            write_raw(w, ft.wrapping_add(dt) & mt, to.wt, fv, to.wv);
        }
        self.s.p = to;
    }

    /// [`Encoder::repack`] of a decimal block whose old and new fields of
    /// a sample fit one 56-bit write: each sample's two fields are read,
    /// rebiased and written as one.
    fn repack_decimal(&mut self, w: &mut BitWriter, to: Params, k: usize, wf: u32, wn: u32) {
        let from = self.s.p;
        let mut fields = [0u64; BLOCK as usize];
        let body = self.start_bit as usize + header_bits(self.prev_p, from) as usize;
        let buf = w.padded();
        for (i, f) in fields[..k].iter_mut().enumerate() {
            *f = field_at(buf, body + i * wf as usize, wf);
        }
        w.truncate(self.start_bit as usize);
        write_header(w, self.prev_p, to);
        if wn == 0 {
            self.s.p = to;
            return;
        }
        let (fwv, twv) = (u32::from(from.wv), u32::from(to.wv));
        let dt = bias(u32::from(to.wt)).wrapping_sub(bias(u32::from(from.wt)));
        let dv = bias(twv).wrapping_sub(bias(fwv));
        let (mt, mv, mfv) = (mask(to.wt), mask(to.wv), mask(from.wv));
        for &f in &fields[..k] {
            let ft = (f >> fwv).wrapping_add(dt) & mt;
            let fv = (f & mfv).wrapping_add(dv) & mv;
            w.write((ft << twv) | fv, wn);
        }
        self.s.p = to;
    }

    /// A full block whose fields are wider than its samples need (it kept
    /// the previous block's widths, or grew for a sample whose neighbours
    /// are narrow) is repacked narrower when that saves bits.
    fn finish_block(&mut self, w: &mut BitWriter) {
        let p = self.s.p;
        let to = self.narrowed(p, self.or_t, self.or_v);
        if to != p {
            self.repack(w, to);
        }
        self.in_block = 0;
    }

    /// The parameters a full block coded with `p`, whose fields OR to
    /// `or_t` and `or_v`, ends with: the narrowest that fit its fields if
    /// they code it in fewer bits, else `p`.
    #[inline(always)]
    fn narrowed(&self, p: Params, or_t: u64, or_v: u64) -> Params {
        let (wt, wv, trail) = if p.xor {
            let union = or_v << p.trail;
            if union == 0 {
                (bits_of(or_t), 0, 0)
            } else {
                let trail = union.trailing_zeros() as u8;
                (bits_of(or_t), bits_of(union) - trail, trail)
            }
        } else {
            (bits_of(or_t), bits_of(or_v), 0)
        };
        let narrow = Params { wt, wv, trail, ..p };
        if narrow == p {
            // Often so: the block grew to just what its samples need.
            return p;
        }
        let old =
            u32::from(BLOCK) * (u32::from(p.wt) + u32::from(p.wv)) + header_bits(self.prev_p, p);
        let new =
            u32::from(BLOCK) * (u32::from(wt) + u32::from(wv)) + header_bits(self.prev_p, narrow);
        if new < old {
            narrow
        } else {
            p
        }
    }

    /// Rewrites the current block (its `in_block` samples and `new`, which
    /// is not written yet) with the parameters that fit them all.
    #[cold]
    #[inline(never)]
    fn rewrite_block(&mut self, w: &mut BitWriter, new: (i64, u64)) {
        let mut samples = [(0i64, 0u64); BLOCK as usize];
        let old = usize::from(self.in_block);
        let start = state_at(w.bytes(), self.block_index);
        debug_assert!(start.is_some(), "the encoder reads back its own chunk");
        let start = start.unwrap_or(self.s);
        let read = read_block(
            w.bytes(),
            self.start_bit as usize,
            start,
            &mut samples[..old],
        );
        debug_assert!(read, "the encoder reads back its own block");
        samples[old] = new;
        let samples = &samples[..=old];
        let p = choose(&start, samples);
        w.truncate(self.start_bit as usize);
        write_header(w, self.prev_p, p);
        let mut s = start;
        s.enter_block(p);
        let (mut or_t, mut or_v) = (0, 0);
        for &(t, vb) in samples {
            let (zt, zv) = fields(&mut s, t, f64::from_bits(vb)).unwrap_or_default();
            write_fields(w, p, zt, zv);
            or_t |= zt;
            or_v |= zv;
        }
        self.s = s;
        self.or_t = or_t;
        self.or_v = or_v;
    }
}

/// The decoder's state after the first `n` samples of `chunk`, or `None`
/// if they do not decode.
fn state_at(chunk: &[u8], n: u16) -> Option<State> {
    let tail = Tail::new(chunk);
    let mut r = BitReader::resume(chunk, &tail, Cursor::at(super::HEADER_LEN));
    let mut d = Decoder::new();
    let mut buf = [(0i64, 0u64); 32];
    let mut i = 0u16;
    while i < n {
        let want = usize::from(n - i).min(buf.len());
        let (got, fault) = d.decode(&mut r, i, &mut buf[..want]);
        if fault.is_some() || got != want {
            return None;
        }
        i += want as u16;
    }
    Some(d.s)
}

/// The low `w` bits set.
#[inline(always)]
fn mask(w: u8) -> u64 {
    1u64.checked_shl(u32::from(w)).map_or(u64::MAX, |x| x - 1)
}

/// The `n`-bit field (`n <= 64`) at bit `pos` of `buf`, which holds at
/// least 8 bytes past it (a writer's [`BitWriter::padded`] bytes).
#[inline(always)]
fn field_at(buf: &[u8], pos: usize, n: u32) -> u64 {
    let word = |at: usize| load_at(buf, at).unwrap_or(0);
    match n {
        0 => 0,
        1..=56 => word(pos) >> (64 - n),
        _ => ((word(pos) >> (96 - n)) << 32) | (word(pos + (n - 32) as usize) >> 32),
    }
}

/// The stored fields of `out.len()` samples from bit `body` of an
/// encoder's own bytes, as written (biased errors, or the shifted XOR).
fn read_raw(buf: &[u8], body: usize, p: Params, out: &mut [(u64, u64)]) {
    let (wt, wv) = (u32::from(p.wt), u32::from(p.wv));
    let width = wt + wv;
    let mut pos = body;
    for slot in out {
        *slot = if width <= 56 {
            let f = field_at(buf, pos, width);
            (f >> wv, f & mask(p.wv))
        } else {
            (field_at(buf, pos, wt), field_at(buf, pos + wt as usize, wv))
        };
        pos += width as usize;
    }
}

/// Writes stored fields `ft`, `fv` at widths `wt`, `wv`.
#[inline(always)]
fn write_raw(w: &mut BitWriter, ft: u64, wt: u8, fv: u64, wv: u8) {
    let width = u32::from(wt) + u32::from(wv);
    if width > 56 {
        w.write_long(ft, u32::from(wt));
        w.write_long(fv, u32::from(wv));
    } else if width > 0 {
        w.write((ft << wv) | fv, width);
    }
}

/// Reads the first `out.len()` samples of the block at `start_bit` of
/// `chunk`, decoded from `state`; false if the bytes do not hold them.
fn read_block(chunk: &[u8], start_bit: usize, state: State, out: &mut [(i64, u64)]) -> bool {
    let tail = Tail::new(chunk);
    let mut r = BitReader::resume(chunk, &tail, Cursor::at(start_bit >> 3));
    let skip = (start_bit & 7) as u32;
    if skip > 0 && r.read(skip).is_err() {
        return false;
    }
    let mut s = state;
    if read_header(&mut r, &mut s).is_err() {
        return false;
    }
    for slot in out {
        match read_sample(&mut r, &mut s) {
            Ok(vb) => *slot = (s.t, vb),
            Err(_) => return false,
        }
    }
    !r.overrun()
}

/// Reader state.
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
    pub(crate) fn decode(
        &mut self,
        r: &mut BitReader<'_>,
        index: u16,
        out: &mut [(i64, u64)],
    ) -> (usize, Option<Fault>) {
        let mut done = 0;
        while usize::from(index) + done < usize::from(FIRST) && done < out.len() {
            let i = index + done as u16;
            let res = if i == 0 {
                self.first(r)
            } else {
                self.second(r)
            };
            match r.unless_overrun(res) {
                Ok(()) => out[done] = (self.s.t, self.s.vbits),
                Err(f) => return (done, Some(f)),
            }
            done += 1;
        }
        let mut s = self.s;
        let mut rr = r.clone();
        let mut fault = None;
        // The value of `done` when the current block's header was read.
        let mut header_at = usize::MAX;
        let block_pos =
            |done: usize| (usize::from(index) + done - usize::from(FIRST)) % usize::from(BLOCK);
        while done < out.len() {
            if block_pos(done) == 0 && header_at != done {
                if let Err(f) = read_header(&mut rr, &mut s) {
                    fault = Some(f);
                    break;
                }
                header_at = done;
            }
            done += Self::fast_block(&mut rr, &mut s, block_pos(done), &mut out[done..]);
            if done == out.len() {
                break;
            }
            // The fast loop stopped before a block with new parameters (its
            // header is read above), near the end of the chunk, or it does
            // not handle this block.
            if block_pos(done) == 0 && header_at != done {
                continue;
            }
            let res = read_sample(&mut rr, &mut s);
            match rr.unless_overrun(res) {
                Ok(vb) => out[done] = (s.t, vb),
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

    fn first(&mut self, r: &mut BitReader<'_>) -> Result<(), Fault> {
        let s = &mut self.s;
        s.t = unzigzag(read_varlen(r)?);
        if r.read_bit()? {
            let scale = r.read(4)? as u8;
            if usize::from(scale) > MAX_SCALE {
                return Err(Fault::Window);
            }
            s.n = unzigzag(read_varlen(r)?);
            s.p = Params {
                xor: false,
                scale,
                wt: 0,
                wv: 0,
                trail: 0,
            };
            s.vbits = decimal_value(s.n, usize::from(scale)).to_bits();
        } else {
            s.vbits = r.read_long(64)?;
        }
        Ok(())
    }

    fn second(&mut self, r: &mut BitReader<'_>) -> Result<(), Fault> {
        let s = &mut self.s;
        let delta = unzigzag(read_varlen(r)?);
        s.t = s.t.wrapping_add(delta);
        s.interval = delta.wrapping_shl(T_FRAC);
        if r.read_bit()? {
            if s.p.xor {
                return Err(Fault::Window);
            }
            let d = unzigzag(read_varlen(r)?);
            s.n = s.n.wrapping_add(d);
            s.avg = d.wrapping_shl(V_FRAC);
            s.vbits = decimal_value(s.n, usize::from(s.p.scale)).to_bits();
        } else {
            s.vbits = r.read_long(64)?;
        }
        Ok(())
    }

    /// Decimal blocks whose two fields fit one load: decodes into `out`
    /// with one unaligned load per sample and no bit buffer, from position
    /// `pos` of the current block (whose header is read) on through every following
    /// block that keeps the parameters, until `out` is full, a block
    /// changes them, or fewer than 8 bytes of the chunk are left (the
    /// general path then goes on). Returns the number decoded.
    #[inline(always)]
    fn fast_block(
        r: &mut BitReader<'_>,
        s: &mut State,
        pos: usize,
        out: &mut [(i64, u64)],
    ) -> usize {
        let p = s.p;
        let (safe_t, safe_v) = Self::no_outliers(s, out.len());
        if p.xor {
            if p.wt > 56 || p.wv > 56 {
                return 0;
            }
            return match (!safe_t, r.in_tail()) {
                (false, false) => Self::xor_loop::<false, false>(r, s, pos, out),
                (false, true) => Self::xor_loop::<false, true>(r, s, pos, out),
                (true, false) => Self::xor_loop::<true, false>(r, s, pos, out),
                (true, true) => Self::xor_loop::<true, true>(r, s, pos, out),
            };
        }
        if u32::from(p.wt) + u32::from(p.wv) > 56 {
            return 0;
        }
        // Only the chunk's zero-padded tail can be read past its end.
        macro_rules! pick {
            ($($t:literal $v:literal $d:literal $tail:literal),*) => {
                match (!safe_t, !safe_v, p.scale != 0, r.in_tail()) {
                    $(($t, $v, $d, $tail) => Self::fast_loop::<$t, $v, $d, $tail>(r, s, pos, out),)*
                }
            };
        }
        pick!(
            false false false false, false false false true, false false true false,
            false false true true, false true false false, false true false true,
            false true true false, false true true true, true false false false,
            true false false true, true false true false, true false true true,
            true true false false, true true false true, true true true false,
            true true true true
        )
    }

    /// Whether the next `n` samples of a block with the state's parameters
    /// cannot hold a predictor outlier, so their predictors just add: the
    /// fields are narrow, or narrow enough next to the predicted interval
    /// and delta, even after `n` errors of the largest size moved the
    /// predictions towards zero.
    #[inline(always)]
    fn no_outliers(s: &State, n: usize) -> (bool, bool) {
        let (half_t, half_v) = (bias(u32::from(s.p.wt)), bias(u32::from(s.p.wv)));
        // Each error moves a prediction by at most |e| / 16, rounded.
        let drift = |half: u64| half.saturating_mul(n as u64) / 16 + n as u64;
        let pred_t = s.predicted_interval();
        let safe_t = s.p.wt <= T_SAFE_BITS
            || (pred_t >= 0
                && half_t <= ((pred_t as u64).saturating_sub(drift(half_t)) >> 2) + T_BIG_FLOOR);
        let pred_v = s.predicted_delta().unsigned_abs();
        let safe_v = s.p.wv <= V_SAFE_BITS
            || half_v
                <= pred_v
                    .saturating_sub(drift(half_v))
                    .saturating_mul(4)
                    .saturating_add(V_BIG_FLOOR);
        (safe_t, safe_v)
    }

    /// The loop of [`Decoder::fast_block`]. Without `OUT_T` (`OUT_V`) the
    /// timestamp (value) fields cannot hold an outlier, so that predictor
    /// just adds;
    /// without `DIVIDE` the scale is 0 and the value is the integer; with
    /// `TAIL` the reader is in the chunk's zero-padded tail, where each
    /// sample is checked to end within the chunk's real bits.
    #[inline(never)]
    fn fast_loop<const OUT_T: bool, const OUT_V: bool, const DIVIDE: bool, const TAIL: bool>(
        r: &mut BitReader<'_>,
        s: &mut State,
        pos: usize,
        out: &mut [(i64, u64)],
    ) -> usize {
        let (mut wt, mut wv) = (u32::from(s.p.wt), u32::from(s.p.wv));
        let mut width = wt + wv;
        // Both fields as one `width`-bit number: `ft << wv | fv`.
        let (mut bias_t, mut bias_v, mut mask_v) = (bias(wt), bias(wv), (1u64 << wv) - 1);
        let div = POW10[usize::from(s.p.scale) & MAX_SCALE];
        let (data, limit) = (r.data, r.limit);
        let mut bitpos = r.bit_position();
        let mut st = *s;
        let mut done = 0;
        // Samples left in the current block, and the length of its header
        // if this loop read it (it gives it back, and the parameters it
        // set, if it decodes none of the block).
        let mut left = usize::from(BLOCK) - pos;
        let mut own_header = 0;
        let mut before_header = st.p;
        'blocks: while done < out.len() {
            if left == 0 {
                // A new block: go on if its header keeps the parameters (a
                // 0 bit), or sets decimal ones at the same scale that this
                // loop decodes as well (fields of at most 56 bits together,
                // and within the safe widths where it does not check for
                // outliers).
                let Some(word) = load_at(data, bitpos) else {
                    break;
                };
                before_header = st.p;
                if word >> 63 == 0 {
                    own_header = 1;
                } else {
                    let scale = ((word >> 58) & 0xf) as u8;
                    let (nwt, nwv) = (((word >> 51) & 0x7f) as u32, ((word >> 44) & 0x7f) as u32);
                    if word >> 62 != 0b10
                        || scale != st.p.scale
                        || nwt + nwv > 56
                        || (!OUT_T && nwt > u32::from(T_SAFE_BITS))
                        || (!OUT_V && nwv > u32::from(V_SAFE_BITS))
                        || (TAIL && bitpos + HEADER_DECIMAL_BITS as usize > limit)
                    {
                        break;
                    }
                    (wt, wv, width) = (nwt, nwv, nwt + nwv);
                    (bias_t, bias_v, mask_v) = (bias(wt), bias(wv), (1u64 << wv) - 1);
                    st.p.wt = nwt as u8;
                    st.p.wv = nwv as u8;
                    own_header = HEADER_DECIMAL_BITS as usize;
                }
                bitpos += own_header;
                left = usize::from(BLOCK);
            }
            let end = done + left.min(out.len() - done);
            for slot in &mut out[done..end] {
                let word = match load_at(data, bitpos) {
                    Some(word) if !TAIL || bitpos + width as usize <= limit => word,
                    _ => {
                        // Out of loaded bytes, or past the real bits (the
                        // general path reports that). A block header read
                        // just now is left for the general path too.
                        if own_header > 0 && left == usize::from(BLOCK) {
                            bitpos -= own_header;
                            st.p = before_header;
                        }
                        break 'blocks;
                    }
                };
                bitpos += width as usize;
                // The top `width` bits (none for a zero width: the top bit
                // of `word >> 1` is zero).
                let f = word >> 1 >> (63 - width);
                let et = (f >> wv).wrapping_sub(bias_t) as i64;
                let ev = (f & mask_v).wrapping_sub(bias_v) as i64;
                if OUT_T {
                    st.step_t_as::<true>(et);
                } else {
                    st.t =
                        st.t.wrapping_add(st.interval.wrapping_add(1 << (T_FRAC - 1)) >> T_FRAC)
                            .wrapping_add(et);
                    st.interval = st.interval.wrapping_add(et);
                }
                if OUT_V {
                    st.step_v_as::<true>(ev);
                } else {
                    st.n = st.n.wrapping_add(st.avg >> V_FRAC).wrapping_add(ev);
                    st.avg = st.avg.wrapping_add(ev);
                }
                let v = if DIVIDE {
                    st.n as f64 / div
                } else {
                    // n / 1.0 is exactly n.
                    st.n as f64
                };
                *slot = (st.t, v.to_bits());
                done += 1;
                left -= 1;
            }
        }
        if done > 0 {
            if !OUT_T {
                st.t_jump = false;
            }
            if !OUT_V {
                st.v_jump = false;
            }
            st.vbits = out[done - 1].1;
            *s = st;
            r.set_bit_position(bitpos);
        }
        done
    }

    /// [`Decoder::fast_loop`] for XOR blocks whose fields are at most 56
    /// bits wide each: one load per field. It repeats `fast_loop`'s walk
    /// over blocks: one walker taking the per-sample decoding as a closure
    /// cost 4 instructions per sample (5%) in both, measured with callgrind.
    #[inline(never)]
    fn xor_loop<const OUT_T: bool, const TAIL: bool>(
        r: &mut BitReader<'_>,
        s: &mut State,
        pos: usize,
        out: &mut [(i64, u64)],
    ) -> usize {
        let (wt, wv, trail) = (u32::from(s.p.wt), u32::from(s.p.wv), u32::from(s.p.trail));
        let width = (wt + wv) as usize;
        let bias_t = bias(wt);
        let (data, limit) = (r.data, r.limit);
        let mut bitpos = r.bit_position();
        let mut st = *s;
        let mut done = 0;
        let mut left = usize::from(BLOCK) - pos;
        let mut own_header = false;
        'blocks: while done < out.len() {
            if left == 0 {
                let Some(word) = load_at(data, bitpos) else {
                    break;
                };
                if word >> 63 != 0 {
                    break;
                }
                bitpos += 1;
                left = usize::from(BLOCK);
                own_header = true;
            }
            let end = done + left.min(out.len() - done);
            for slot in &mut out[done..end] {
                let words = match (load_at(data, bitpos), load_at(data, bitpos + wt as usize)) {
                    (Some(a), Some(b)) if !TAIL || bitpos + width <= limit => (a, b),
                    _ => {
                        if own_header && left == usize::from(BLOCK) {
                            bitpos -= 1;
                        }
                        break 'blocks;
                    }
                };
                bitpos += width;
                let et = (words.0 >> 1 >> (63 - wt)).wrapping_sub(bias_t) as i64;
                let fv = words.1 >> 1 >> (63 - wv);
                if OUT_T {
                    st.step_t_as::<true>(et);
                } else {
                    st.t =
                        st.t.wrapping_add(st.interval.wrapping_add(1 << (T_FRAC - 1)) >> T_FRAC)
                            .wrapping_add(et);
                    st.interval = st.interval.wrapping_add(et);
                }
                // trail + wv <= 64: the field shifted by trail stays in range.
                st.vbits ^= fv.wrapping_shl(trail);
                *slot = (st.t, st.vbits);
                done += 1;
                left -= 1;
            }
        }
        if done > 0 {
            if !OUT_T {
                st.t_jump = false;
            }
            *s = st;
            r.set_bit_position(bitpos);
        }
        done
    }
}
