//! Elementwise functions on float values of an instant vector (`abs`,
//! `round`, `clamp`, trigonometry, calendar fields, ...), with Prometheus
//! 3.x semantics.
//!
//! The engine applies [`apply`] to each float sample's value (histogram
//! samples are skipped by the engine), passing the function's scalar
//! arguments at that step. Dropping the whole result (e.g. `clamp` with
//! `min > max`) and the metric-name handling are the engine's business.

/// A PromQL function applied to each float value independently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MathFn {
    /// `abs(v)`
    Abs,
    /// `ceil(v)`
    Ceil,
    /// `floor(v)`
    Floor,
    /// `exp(v)`
    Exp,
    /// `sqrt(v)`
    Sqrt,
    /// `ln(v)`
    Ln,
    /// `log2(v)`
    Log2,
    /// `log10(v)`
    Log10,
    /// `sgn(v)`
    Sgn,
    /// `round(v, to_nearest=1)`
    Round,
    /// `clamp(v, min, max)`
    Clamp,
    /// `clamp_min(v, min)`
    ClampMin,
    /// `clamp_max(v, max)`
    ClampMax,
    /// `sin(v)`
    Sin,
    /// `cos(v)`
    Cos,
    /// `tan(v)`
    Tan,
    /// `asin(v)`
    Asin,
    /// `acos(v)`
    Acos,
    /// `atan(v)`
    Atan,
    /// `sinh(v)`
    Sinh,
    /// `cosh(v)`
    Cosh,
    /// `tanh(v)`
    Tanh,
    /// `asinh(v)`
    Asinh,
    /// `acosh(v)`
    Acosh,
    /// `atanh(v)`
    Atanh,
    /// `deg(v)`: radians to degrees.
    Deg,
    /// `rad(v)`: degrees to radians.
    Rad,
    /// `day_of_month(v)`: 1..=31.
    DayOfMonth,
    /// `day_of_week(v)`: 0 (Sunday)..=6.
    DayOfWeek,
    /// `day_of_year(v)`: 1..=366.
    DayOfYear,
    /// `days_in_month(v)`: 28..=31.
    DaysInMonth,
    /// `hour(v)`: 0..=23.
    Hour,
    /// `minute(v)`: 0..=59.
    Minute,
    /// `month(v)`: 1..=12.
    Month,
    /// `year(v)`
    Year,
}

impl MathFn {
    /// Every elementwise function, in declaration order.
    pub(crate) const ALL: [MathFn; 35] = [
        MathFn::Abs,
        MathFn::Ceil,
        MathFn::Floor,
        MathFn::Exp,
        MathFn::Sqrt,
        MathFn::Ln,
        MathFn::Log2,
        MathFn::Log10,
        MathFn::Sgn,
        MathFn::Round,
        MathFn::Clamp,
        MathFn::ClampMin,
        MathFn::ClampMax,
        MathFn::Sin,
        MathFn::Cos,
        MathFn::Tan,
        MathFn::Asin,
        MathFn::Acos,
        MathFn::Atan,
        MathFn::Sinh,
        MathFn::Cosh,
        MathFn::Tanh,
        MathFn::Asinh,
        MathFn::Acosh,
        MathFn::Atanh,
        MathFn::Deg,
        MathFn::Rad,
        MathFn::DayOfMonth,
        MathFn::DayOfWeek,
        MathFn::DayOfYear,
        MathFn::DaysInMonth,
        MathFn::Hour,
        MathFn::Minute,
        MathFn::Month,
        MathFn::Year,
    ];

    /// The function called `name` in PromQL, if it is one of these.
    pub(crate) fn from_name(name: &str) -> Option<MathFn> {
        MathFn::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The function's PromQL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            MathFn::Abs => "abs",
            MathFn::Ceil => "ceil",
            MathFn::Floor => "floor",
            MathFn::Exp => "exp",
            MathFn::Sqrt => "sqrt",
            MathFn::Ln => "ln",
            MathFn::Log2 => "log2",
            MathFn::Log10 => "log10",
            MathFn::Sgn => "sgn",
            MathFn::Round => "round",
            MathFn::Clamp => "clamp",
            MathFn::ClampMin => "clamp_min",
            MathFn::ClampMax => "clamp_max",
            MathFn::Sin => "sin",
            MathFn::Cos => "cos",
            MathFn::Tan => "tan",
            MathFn::Asin => "asin",
            MathFn::Acos => "acos",
            MathFn::Atan => "atan",
            MathFn::Sinh => "sinh",
            MathFn::Cosh => "cosh",
            MathFn::Tanh => "tanh",
            MathFn::Asinh => "asinh",
            MathFn::Acosh => "acosh",
            MathFn::Atanh => "atanh",
            MathFn::Deg => "deg",
            MathFn::Rad => "rad",
            MathFn::DayOfMonth => "day_of_month",
            MathFn::DayOfWeek => "day_of_week",
            MathFn::DayOfYear => "day_of_year",
            MathFn::DaysInMonth => "days_in_month",
            MathFn::Hour => "hour",
            MathFn::Minute => "minute",
            MathFn::Month => "month",
            MathFn::Year => "year",
        }
    }
}

/// Applies `f` to the value `v`.
///
/// `scalars` are the function's other arguments at this step, in call
/// order: `round`: `[to_nearest]` (default 1); `clamp`: `[min, max]`;
/// `clamp_min`: `[min]`; `clamp_max`: `[max]`. A missing bound leaves that
/// side unclamped. For the calendar functions `v` is a Unix time in
/// seconds (the engine passes `time()` for the no-argument forms); the
/// result is the UTC calendar field.
pub(crate) fn apply(f: MathFn, v: f64, scalars: &[f64]) -> f64 {
    match f {
        MathFn::Abs => v.abs(),
        MathFn::Ceil => v.ceil(),
        MathFn::Floor => v.floor(),
        MathFn::Exp => v.exp(),
        MathFn::Sqrt => v.sqrt(),
        MathFn::Ln => v.ln(),
        MathFn::Log2 => go_log2(v),
        MathFn::Log10 => go_log10(v),
        MathFn::Sgn => {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                // 0, -0 and NaN are returned as they are.
                v
            }
        }
        MathFn::Round => round(v, scalars.first().copied().unwrap_or(1.0)),
        MathFn::Clamp => {
            let min = scalars.first().copied().unwrap_or(f64::NEG_INFINITY);
            let max = scalars.get(1).copied().unwrap_or(f64::INFINITY);
            clamp(v, min, max)
        }
        MathFn::ClampMin => {
            let min = scalars.first().copied().unwrap_or(f64::NEG_INFINITY);
            clamp(v, min, f64::INFINITY)
        }
        MathFn::ClampMax => {
            let max = scalars.first().copied().unwrap_or(f64::INFINITY);
            clamp(v, f64::NEG_INFINITY, max)
        }
        MathFn::Sin => v.sin(),
        MathFn::Cos => v.cos(),
        MathFn::Tan => v.tan(),
        MathFn::Asin => v.asin(),
        MathFn::Acos => v.acos(),
        MathFn::Atan => v.atan(),
        MathFn::Sinh => v.sinh(),
        MathFn::Cosh => v.cosh(),
        MathFn::Tanh => v.tanh(),
        MathFn::Asinh => v.asinh(),
        MathFn::Acosh => v.acosh(),
        MathFn::Atanh => v.atanh(),
        // Same operation order as Prometheus: (v * 180) / pi, (v * pi) / 180.
        MathFn::Deg => v * 180.0 / std::f64::consts::PI,
        MathFn::Rad => v * std::f64::consts::PI / 180.0,
        MathFn::DayOfMonth
        | MathFn::DayOfWeek
        | MathFn::DayOfYear
        | MathFn::DaysInMonth
        | MathFn::Hour
        | MathFn::Minute
        | MathFn::Month
        | MathFn::Year => calendar_field(f, v),
    }
}

/// `round(v, to_nearest)`: rounds to the nearest multiple of `to_nearest`,
/// ties upwards, computed as Prometheus does through the inverse:
/// `floor(v * (1/to_nearest) + 0.5) / (1/to_nearest)`.
fn round(v: f64, to_nearest: f64) -> f64 {
    let inverse = 1.0 / to_nearest;
    (v * inverse + 0.5).floor() / inverse
}

/// `clamp` as Prometheus computes it: `math.Max(min, math.Min(max, v))`.
fn clamp(v: f64, min: f64, max: f64) -> f64 {
    go_max(min, go_min(max, v))
}

/// Go's `math.Max`: +Inf if either is +Inf, else NaN if either is NaN;
/// +0 is larger than -0.
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf if either is -Inf, else NaN if either is NaN;
/// -0 is smaller than +0.
fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y {
        x
    } else {
        y
    }
}

/// Go's `math.Log10`: `ln(x)` times the constant `1/ln 10` (which Go
/// rounds once, at compile time: `LOG10_E`). Not correctly rounded for
/// every power of ten; Prometheus shows Go's value.
fn go_log10(x: f64) -> f64 {
    x.ln() * std::f64::consts::LOG10_E
}

/// Go's `math.Log2`: exact for powers of two, otherwise
/// `ln(frac) * (1/ln 2) + exp` with `x = frac * 2^exp`, `frac` in
/// `[0.5, 1)` (Go's constant `1/Ln2` is `LOG2_E`).
fn go_log2(x: f64) -> f64 {
    let (frac, exp) = frexp(x);
    if frac == 0.5 {
        return f64::from(exp - 1);
    }
    frac.ln() * std::f64::consts::LOG2_E + f64::from(exp)
}

/// Go's `math.Frexp`: splits `x` into a fraction with magnitude in
/// `[0.5, 1)` and a power of two; zero, infinities and NaN come back
/// unchanged with exponent 0.
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    // Normalise subnormals first.
    let (x, mut exp) = if x.abs() < f64::MIN_POSITIVE {
        (x * (1u64 << 52) as f64, -52)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    // The biased exponent is 11 bits wide, so it always fits an i32.
    exp += ((bits >> 52) & 0x7ff) as i32 - 1022;
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, exp)
}

/// The UTC calendar field `f` of the Unix time `v` seconds.
///
/// Like Prometheus, the seconds are truncated towards zero to an integer
/// first. NaN, infinities and values outside the `i64` range give NaN
/// (Go's float-to-int conversion is platform-dependent there, so
/// Prometheus's answer is arbitrary). Dates use the proleptic Gregorian
/// calendar, as Go's `time` does.
fn calendar_field(f: MathFn, v: f64) -> f64 {
    // 2^63: the first float beyond the i64 range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !v.is_finite() {
        return f64::NAN;
    }
    let secs = v.trunc();
    if !(-LIMIT..LIMIT).contains(&secs) {
        return f64::NAN;
    }
    let secs = secs as i64;
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let value = match f {
        MathFn::DayOfMonth => day,
        MathFn::DayOfWeek => (days.rem_euclid(7) + 4) % 7,
        MathFn::DayOfYear => day_of_year(year, month, day),
        MathFn::DaysInMonth => days_in_month(year, month),
        MathFn::Hour => secs_of_day / 3_600,
        MathFn::Minute => secs_of_day % 3_600 / 60,
        MathFn::Month => month,
        MathFn::Year => year,
        _ => return f64::NAN,
    };
    value as f64
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
fn is_leap_year(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

/// The number of days in `month` (1..=12) of `year`.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The ordinal day (1..=366) of `year`-`month`-`day`.
fn day_of_year(year: i64, month: i64, day: i64) -> i64 {
    (1..month).map(|m| days_in_month(year, m)).sum::<i64>() + day
}

/// The proleptic Gregorian `(year, month, day)` of `days` days after
/// 1970-01-01 (Howard Hinnant's `civil_from_days`). Valid for every `days`
/// that a Unix time in `i64` seconds can produce.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Shift the epoch to 0000-03-01, so that leap days end each cycle.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64) -> bool {
        if want.is_nan() {
            got.is_nan()
        } else if want == 0.0 || want.is_infinite() {
            got == want
        } else {
            (got - want).abs() <= 1e-12 * want.abs()
        }
    }

    #[track_caller]
    fn check(f: MathFn, v: f64, scalars: &[f64], want: f64) {
        let got = apply(f, v, scalars);
        assert!(
            close(got, want),
            "{}({v}, {scalars:?}) = {got}, want {want}",
            f.name()
        );
    }

    #[test]
    fn names_round_trip() {
        for f in MathFn::ALL {
            assert_eq!(MathFn::from_name(f.name()), Some(f));
        }
        for name in ["timestamp", "histogram_fraction", "pi", "vector", "ABS"] {
            assert_eq!(MathFn::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn no_panics_on_odd_input() {
        let nasty = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MAX,
            f64::MIN,
            5e-324,
            9.2e18,
            -9.3e18,
            -9_223_372_036_854_775_808.0,
        ];
        for f in MathFn::ALL {
            for v in nasty {
                let _ = apply(f, v, &[]);
                for s in nasty {
                    let _ = apply(f, v, &[s]);
                    let _ = apply(f, v, &[s, -s]);
                }
            }
        }
    }

    #[test]
    fn abs_ceil_floor_round() {
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        // (input, abs, ceil, floor, round)
        let cases = [
            (2.5, 2.5, 3.0, 2.0, 3.0),
            (2.0, 2.0, 2.0, 2.0, 2.0),
            (-2.5, 2.5, -2.0, -3.0, -2.0),
            (-2.0, 2.0, -2.0, -2.0, -2.0),
            (0.0, 0.0, 0.0, 0.0, 0.0),
            (inf, inf, inf, inf, inf),
            (-inf, inf, -inf, -inf, -inf),
            (nan, nan, nan, nan, nan),
        ];
        for (v, abs, ceil, floor, round) in cases {
            check(MathFn::Abs, v, &[], abs);
            check(MathFn::Ceil, v, &[], ceil);
            check(MathFn::Floor, v, &[], floor);
            check(MathFn::Round, v, &[], round);
        }
    }

    #[test]
    fn round_to_nearest() {
        check(MathFn::Round, 7.3, &[5.0], 5.0);
        check(MathFn::Round, 12.5, &[5.0], 15.0);
        check(MathFn::Round, -12.5, &[5.0], -10.0);
        check(MathFn::Round, 1.234, &[0.01], 1.23);
        check(MathFn::Round, 1.235, &[0.1], 1.2);
        check(MathFn::Round, 5.5, &[1.0], 6.0);
        check(MathFn::Round, -5.5, &[], -5.0);
        // Exactly Prometheus's arithmetic.
        let inverse = 1.0_f64 / 0.3;
        assert_eq!(
            apply(MathFn::Round, 1.0, &[0.3]),
            (1.0 * inverse + 0.5).floor() / inverse
        );
        // Rounding to 0 divides Inf by Inf.
        check(MathFn::Round, 3.0, &[0.0], f64::NAN);
        check(MathFn::Round, 3.0, &[f64::NAN], f64::NAN);
    }

    #[test]
    fn clamp_values() {
        for (v, want) in [(-50.0, -25.0), (0.0, 0.0), (100.0, 75.0)] {
            check(MathFn::Clamp, v, &[-25.0, 75.0], want);
        }
        for (v, want) in [(-50.0, -50.0), (0.0, 0.0), (100.0, 75.0)] {
            check(MathFn::ClampMax, v, &[75.0], want);
        }
        for (v, want) in [(-50.0, -25.0), (0.0, 0.0), (100.0, 100.0)] {
            check(MathFn::ClampMin, v, &[-25.0], want);
        }
        // A NaN bound makes everything NaN.
        for v in [-50.0, 0.0, 100.0] {
            check(MathFn::Clamp, v, &[0.0, f64::NAN], f64::NAN);
            check(MathFn::Clamp, v, &[f64::NAN, 0.0], f64::NAN);
        }
    }

    #[test]
    fn clamp_has_go_max_min_semantics() {
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        // Rust's f64::max(NaN, 5) is 5; Go's math.Max is NaN.
        check(MathFn::ClampMin, 5.0, &[nan], nan);
        check(MathFn::ClampMax, 5.0, &[nan], nan);
        check(MathFn::ClampMin, nan, &[0.0], nan);
        check(MathFn::ClampMax, nan, &[0.0], nan);
        // But an infinity beats NaN in Go: Max(x, +Inf) = +Inf even for NaN.
        check(MathFn::ClampMin, inf, &[nan], inf);
        check(MathFn::ClampMin, nan, &[inf], inf);
        check(MathFn::ClampMax, -inf, &[nan], -inf);
        check(MathFn::ClampMax, nan, &[-inf], -inf);
        check(MathFn::Clamp, nan, &[inf, 0.0], inf);
        // Infinite inputs and bounds.
        check(MathFn::Clamp, inf, &[-1.0, 1.0], 1.0);
        check(MathFn::Clamp, -inf, &[-1.0, 1.0], -1.0);
        check(MathFn::ClampMax, -inf, &[1.0], -inf);
        check(MathFn::ClampMin, inf, &[1.0], inf);
        // Signed zeros: Max prefers +0, Min prefers -0.
        assert!(apply(MathFn::ClampMin, -0.0, &[0.0]).is_sign_positive());
        assert!(apply(MathFn::ClampMin, -0.0, &[-0.0]).is_sign_negative());
        assert!(apply(MathFn::ClampMax, 0.0, &[-0.0]).is_sign_negative());
        assert!(apply(MathFn::ClampMax, 0.0, &[0.0]).is_sign_positive());
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_max(0.0, -0.0).is_sign_positive());
        assert!(go_min(-0.0, 0.0).is_sign_negative());
        assert!(go_min(0.0, -0.0).is_sign_negative());
        // min > max: the engine drops the series; the value is max(min, ..).
        check(MathFn::Clamp, 0.0, &[5.0, -5.0], 5.0);
    }

    #[test]
    fn sgn_values() {
        let cases = [
            (f64::NEG_INFINITY, -1.0),
            (f64::INFINITY, 1.0),
            (f64::NAN, f64::NAN),
            (-50.0, -1.0),
            (0.0, 0.0),
            (100.0, 1.0),
            (5e-324, 1.0),
        ];
        for (v, want) in cases {
            check(MathFn::Sgn, v, &[], want);
        }
        assert!(apply(MathFn::Sgn, -0.0, &[]).is_sign_negative());
    }

    #[test]
    fn exp_ln_sqrt_logs() {
        check(MathFn::Exp, 10.0, &[], 22_026.465_794_806_718);
        check(MathFn::Exp, 20.0, &[], 485_165_195.409_790_3);
        check(MathFn::Exp, -10.0, &[], 4.539_992_976_248_485_4e-5);
        check(MathFn::Exp, 0.0, &[], 1.0);
        check(MathFn::Ln, 10.0, &[], std::f64::consts::LN_10);
        check(MathFn::Ln, 20.0, &[], 2.995_732_273_553_991);
        check(MathFn::Ln, 0.0, &[], f64::NEG_INFINITY);
        check(MathFn::Ln, -10.0, &[], f64::NAN);
        check(MathFn::Sqrt, 10.0, &[], 3.162_277_660_168_379_5);
        check(MathFn::Sqrt, 20.0, &[], 4.472_135_954_999_58);
        check(MathFn::Sqrt, -1.0, &[], f64::NAN);
        check(MathFn::Log2, 10.0, &[], 3.321_928_094_887_362_6);
        check(MathFn::Log2, 20.0, &[], 4.321_928_094_887_363);
        check(MathFn::Log2, 0.0, &[], f64::NEG_INFINITY);
        check(MathFn::Log2, -10.0, &[], f64::NAN);
        check(MathFn::Log2, f64::INFINITY, &[], f64::INFINITY);
        check(MathFn::Log2, f64::NAN, &[], f64::NAN);
        check(MathFn::Log10, 10.0, &[], 1.0);
        check(MathFn::Log10, 20.0, &[], 1.301_029_995_663_981);
        check(MathFn::Log10, 0.0, &[], f64::NEG_INFINITY);
        check(MathFn::Log10, -10.0, &[], f64::NAN);
        // Powers of two are exact in log2, subnormals included.
        assert_eq!(apply(MathFn::Log2, 8.0, &[]), 3.0);
        assert_eq!(apply(MathFn::Log2, 0.25, &[]), -2.0);
        assert_eq!(apply(MathFn::Log2, 5e-324, &[]), -1074.0);
        check(MathFn::Log2, f64::MAX, &[], 1024.0);
    }

    #[test]
    fn frexp_matches_go() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(8.0), (0.5, 4));
        assert_eq!(frexp(-3.0), (-0.75, 2));
        assert_eq!(frexp(5e-324), (0.5, -1073));
        assert_eq!(frexp(f64::MIN_POSITIVE), (0.5, -1021));
        assert_eq!(frexp(0.0), (0.0, 0));
        assert_eq!(frexp(f64::INFINITY), (f64::INFINITY, 0));
    }

    #[test]
    fn trigonometry_and_angles() {
        use std::f64::consts::PI;
        check(MathFn::Sin, PI / 2.0, &[], 1.0);
        check(MathFn::Cos, 0.0, &[], 1.0);
        check(MathFn::Tan, PI / 4.0, &[], 0.999_999_999_999_999_9);
        check(MathFn::Asin, 1.0, &[], PI / 2.0);
        check(MathFn::Acos, 1.0, &[], 0.0);
        check(MathFn::Atan, 1.0, &[], PI / 4.0);
        check(MathFn::Asin, 2.0, &[], f64::NAN);
        check(MathFn::Sinh, 1.0, &[], 1.175_201_193_643_801_4);
        check(MathFn::Cosh, 1.0, &[], 1.543_080_634_815_243_7);
        check(MathFn::Tanh, 1.0, &[], 0.761_594_155_955_764_9);
        check(MathFn::Asinh, 1.0, &[], 0.881_373_587_019_543);
        check(MathFn::Acosh, 1.0, &[], 0.0);
        check(MathFn::Acosh, 0.5, &[], f64::NAN);
        check(MathFn::Atanh, 0.5, &[], 0.549_306_144_334_054_8);
        check(MathFn::Atanh, 1.0, &[], f64::INFINITY);
        check(MathFn::Sin, f64::INFINITY, &[], f64::NAN);
        check(MathFn::Deg, PI, &[], 180.0);
        check(MathFn::Rad, 180.0, &[], PI);
        check(MathFn::Deg, f64::NAN, &[], f64::NAN);
        assert_eq!(apply(MathFn::Deg, 1.0, &[]), 180.0 / PI);
    }

    /// `(unix seconds, year, month, day, day_of_year, day_of_week, hour,
    /// minute, days_in_month)`.
    type DateRow = (f64, f64, f64, f64, f64, f64, f64, f64, f64);

    /// Calendar fields checked against GNU `date -u`.
    const DATES: [DateRow; 13] = [
        (1_136_239_445.0, 2006., 1., 2., 2., 1., 22., 4., 31.),
        (0.0, 1970., 1., 1., 1., 4., 0., 0., 31.),
        (-1.0, 1969., 12., 31., 365., 3., 23., 59., 31.),
        (1_456_790_399.0, 2016., 2., 29., 60., 1., 23., 59., 29.),
        (1_456_790_400.0, 2016., 3., 1., 61., 2., 0., 0., 31.),
        (1_483_191_420.0, 2016., 12., 31., 366., 6., 13., 37., 31.),
        (1_672_493_820.0, 2022., 12., 31., 365., 6., 13., 37., 31.),
        (951_782_400.0, 2000., 2., 29., 60., 2., 0., 0., 29.),
        (-2_206_310_400.0, 1900., 2., 1., 32., 4., 0., 0., 28.),
        (4_105_123_200.0, 2100., 2., 1., 32., 1., 0., 0., 28.),
        (13_574_563_200.0, 2400., 2., 29., 60., 2., 0., 0., 29.),
        (-62_135_596_801.0, 0., 12., 31., 366., 0., 23., 59., 31.),
        (253_402_300_799.0, 9999., 12., 31., 365., 5., 23., 59., 31.),
    ];

    #[test]
    fn calendar_fields() {
        for (t, year, month, day, doy, dow, hour, minute, dim) in DATES {
            check(MathFn::Year, t, &[], year);
            check(MathFn::Month, t, &[], month);
            check(MathFn::DayOfMonth, t, &[], day);
            check(MathFn::DayOfYear, t, &[], doy);
            check(MathFn::DayOfWeek, t, &[], dow);
            check(MathFn::Hour, t, &[], hour);
            check(MathFn::Minute, t, &[], minute);
            check(MathFn::DaysInMonth, t, &[], dim);
        }
        // Prometheus's leap-year days_in_month checks.
        check(MathFn::DaysInMonth, 1_454_284_800.0, &[], 29.0);
        check(MathFn::DaysInMonth, 1_485_907_200.0, &[], 28.0);
        check(MathFn::Year, 1_230_767_999.0, &[], 2008.0);
        check(MathFn::Year, 1_230_768_000.0, &[], 2009.0);
    }

    #[test]
    fn calendar_truncates_towards_zero() {
        // Go's int64(v) truncates: -0.5 is 0, i.e. 1970-01-01 00:00:00.
        check(MathFn::Year, -0.5, &[], 1970.0);
        check(MathFn::Hour, -0.5, &[], 0.0);
        check(MathFn::Year, -1.5, &[], 1969.0);
        check(MathFn::Minute, 59.999, &[], 0.0);
        check(MathFn::Minute, 60.0, &[], 1.0);
    }

    #[test]
    fn calendar_non_finite_is_nan() {
        for f in [
            MathFn::Year,
            MathFn::Month,
            MathFn::DayOfWeek,
            MathFn::DaysInMonth,
        ] {
            check(f, f64::NAN, &[], f64::NAN);
            check(f, f64::INFINITY, &[], f64::NAN);
            check(f, f64::NEG_INFINITY, &[], f64::NAN);
            check(f, 1e19, &[], f64::NAN);
            check(f, -1e19, &[], f64::NAN);
            assert!(apply(f, 9.2e18, &[]).is_finite());
            assert!(apply(f, -9_223_372_036_854_775_808.0, &[]).is_finite());
        }
    }

    #[test]
    fn civil_from_days_round_trips() {
        // Walk day by day across four centuries and check continuity.
        let mut prev = civil_from_days(-150_000);
        for days in -149_999..150_000 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = prev;
            if d == 1 {
                assert_eq!(pd, days_in_month(py, pm), "{y}-{m}-{d}");
                if m == 1 {
                    assert_eq!((py + 1, pm), (y, 12));
                } else {
                    assert_eq!((py, pm + 1), (y, m));
                }
            } else {
                assert_eq!((py, pm, pd + 1), (y, m, d));
            }
            prev = (y, m, d);
        }
    }
}
