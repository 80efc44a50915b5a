//! Property tests of exact money: parsing, formatting, minor units, sums
//! and the amount bound (DESIGN §3, issue 10). 256 cases per property.

use bankpipe_model::{Currency, Money, MoneyError, MAX_ABS_MINOR_UNITS};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// Largest mantissa a `Decimal` holds: 2^96 − 1.
const DECIMAL_MAX_MANTISSA: i128 = (1 << 96) - 1;

fn currency() -> impl Strategy<Value = Currency> {
    proptest::sample::select(Currency::all().collect::<Vec<_>>())
}

fn pow10(n: u32) -> i128 {
    10_i128.pow(n)
}

/// Minor-unit values biased towards the edges of the bound.
fn minor_in_range() -> impl Strategy<Value = i64> {
    prop_oneof![
        -MAX_ABS_MINOR_UNITS..=MAX_ABS_MINOR_UNITS,
        -1000_i64..=1000,
        Just(MAX_ABS_MINOR_UNITS),
        Just(-MAX_ABS_MINOR_UNITS),
    ]
}

/// `mantissa / 10^scale` written as plain decimal text.
fn text_of(mantissa: i128, scale: u32) -> String {
    let digits = mantissa.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    let sign = if mantissa < 0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// format then parse gives the same money, at the currency's minor units.
    #[test]
    fn parse_of_format_round_trips(minor in any::<i64>(), c in currency()) {
        let m = Money::from_minor_units(minor, c);
        let text = m.to_string();
        let frac_digits = text.split_once('.').map_or(0, |(_, f)| f.len());
        prop_assert_eq!(frac_digits as u32, c.minor_units());
        prop_assert_eq!(Money::parse(&text, c), Ok(m));
        prop_assert_eq!(m.to_minor_units(), Ok(minor));
    }

    /// Inside the bound, `parse_in_range` accepts exactly what `parse` does.
    #[test]
    fn bound_is_exact_and_inclusive(minor in minor_in_range(), c in currency(), beyond in 1_i64..1_000_000) {
        let m = Money::from_minor_units(minor, c);
        prop_assert_eq!(Money::parse_in_range(&m.to_string(), c), Ok(m));
        let outside = if minor < 0 { -MAX_ABS_MINOR_UNITS - beyond } else { MAX_ABS_MINOR_UNITS + beyond };
        let text = Money::from_minor_units(outside, c).to_string();
        let refused = Money::parse_in_range(&text, c);
        let out_of_range = matches!(refused, Err(MoneyError::OutOfRange { .. }));
        prop_assert!(out_of_range, "{} {:?}", text, refused);
    }

    /// Converting a decimal to minor units fails exactly when a non-zero
    /// digit lies beyond the minor units (or the result leaves i64); when it
    /// succeeds the integer is the exact value. Checked against integer
    /// arithmetic, both from a `Decimal` and from text.
    #[test]
    fn minor_units_never_round(mantissa in any::<i64>(), scale in 0_u32..=8, c in currency()) {
        let minor = c.minor_units();
        let scaled = i128::from(mantissa) * pow10(minor);
        let exact = scaled % pow10(scale) == 0;
        let expected = exact.then(|| scaled / pow10(scale)).and_then(|v| i64::try_from(v).ok());
        let decimal = Decimal::from_i128_with_scale(i128::from(mantissa), scale);
        let from_decimal = Money::new(decimal, c).and_then(|m| m.to_minor_units());
        let from_text = Money::parse(&text_of(i128::from(mantissa), scale), c).and_then(|m| m.to_minor_units());
        for got in [from_decimal, from_text] {
            match expected {
                Some(v) => prop_assert_eq!(got.clone(), Ok(v)),
                None if !exact => {
                    let loses = matches!(got, Err(MoneyError::LosesDigits { .. }));
                    prop_assert!(loses, "{:?}", got);
                }
                None => {
                    let overflow = matches!(got, Err(MoneyError::Overflow { .. }));
                    prop_assert!(overflow, "{:?}", got);
                }
            }
        }
    }

    /// `checked_add` never panics, over the whole decimal range, and equals
    /// exact addition whenever the exact sum fits.
    #[test]
    fn checked_add_matches_exact_addition(
        a in -DECIMAL_MAX_MANTISSA..=DECIMAL_MAX_MANTISSA,
        b in prop_oneof![-DECIMAL_MAX_MANTISSA..=DECIMAL_MAX_MANTISSA, -1000_i128..=1000],
        c in currency(),
    ) {
        let scale = c.minor_units();
        let ma = Money::new(Decimal::from_i128_with_scale(a, scale), c).unwrap();
        let mb = Money::new(Decimal::from_i128_with_scale(b, scale), c).unwrap();
        let sum = a + b;
        match ma.checked_add(&mb) {
            Ok(s) => {
                prop_assert!(sum.abs() <= DECIMAL_MAX_MANTISSA);
                prop_assert_eq!(s.amount(), Decimal::from_i128_with_scale(sum, scale));
                prop_assert_eq!(s.amount(), ma.amount() + mb.amount());
                prop_assert_eq!(s.amount().scale(), scale);
            }
            Err(e) => {
                prop_assert!(sum.abs() > DECIMAL_MAX_MANTISSA, "{} + {} refused: {}", a, b, e);
                let overflow = matches!(e, MoneyError::Overflow { .. });
                prop_assert!(overflow, "{:?}", e);
            }
        }
    }

    /// Sums of in-range amounts stay exact: a million of them cannot leave i64.
    #[test]
    fn in_range_sums_fit_minor_units(minors in proptest::collection::vec(minor_in_range(), 1..64), c in currency()) {
        let mut total = Money::zero(c);
        for m in &minors {
            total = total.checked_add(&Money::from_minor_units(*m, c)).unwrap();
        }
        let exact: i128 = minors.iter().map(|m| i128::from(*m)).sum();
        prop_assert_eq!(i128::from(total.to_minor_units().unwrap()), exact);
        // The documented headroom: 10^6 rows at the bound fit i64.
        prop_assert!(i128::from(MAX_ABS_MINOR_UNITS) * 1_000_000 <= i128::from(i64::MAX));
    }

    /// Arbitrary text never panics the parsers.
    #[test]
    fn parsers_never_panic(text in "[-+0-9.eE, ]{0,48}", c in currency()) {
        let _ = Money::parse(&text, c);
        let _ = Money::parse_in_range(&text, c);
        let _ = bankpipe_model::parse_decimal(&text);
    }
}
