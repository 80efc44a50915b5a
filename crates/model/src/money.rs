//! Exact money: a [`Decimal`] amount at exactly its currency's minor-unit scale.
//!
//! DESIGN §3: amounts are signed from the account holder's view — negative
//! means money leaves the account (debit), positive means it enters (credit).
//! Nothing here ever rounds: a value that cannot be represented exactly in
//! the currency's minor units is an error.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::currency::Currency;

/// The largest absolute amount, in integer minor units, that one amount
/// read from a source may have: `10^12` minor units, inclusive.
///
/// Per currency that is `10^(12 - minor units)` major units: 10,000,000,000.00
/// USD or EUR, 1,000,000,000,000 JPY, KRW or VND, 1,000,000,000.000 KWD,
/// 100,000,000.0000 CLF. [`Money::parse_in_range`] and [`Money::check_range`]
/// enforce it; the source normalizers use them, so an amount beyond it is
/// quarantined ("amount out of range …") instead of reaching the store.
///
/// Why this value (`i64::MAX` = 9,223,372,036,854,775,807 ≈ 9.2 × 10^18):
/// - one amount: `10^12` minor units always fits the store's signed 64-bit
///   integer minor units (and Trupocket's integer cents);
/// - one day: even `10^6` rows of one account on one booking date, all at
///   the bound, sum to `10^12 × 10^6 = 10^18` minor units, which still fits
///   `i64` (with 9× headroom: up to 9.2 million such rows), whatever the
///   currency, since the bound is counted in minor units (CLF's 4 minor
///   digits included);
/// - in [`Decimal`] (96-bit mantissa, ≈ 7.9 × 10^28) exact sums of up to
///   ≈ 7.9 × 10^16 amounts at the bound cannot overflow.
///
/// The bound is counted in minor units rather than as one major-unit figure
/// because a single major-unit bound safe for 4-digit currencies
/// (≤ 9.2 × 10^8 major units at 10^6 rows) would refuse ordinary amounts in
/// high-denomination currencies (a used car in VND or IDR).
pub const MAX_ABS_MINOR_UNITS: i64 = 1_000_000_000_000;

/// An exact amount of one currency, always held at the currency's minor-unit
/// scale (`-4.75` USD, `-500` JPY, `-1.250` KWD). `Display` prints exactly
/// that many fraction digits and never prints `-0`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

/// Why an amount could not become [`Money`] or leave it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The value has a non-zero digit beyond the currency's minor units
    /// (e.g. `1.234` USD, `5.5` JPY). Nothing is rounded.
    #[error("{value} {currency} has more than {minor_units} fraction digit(s); refusing to round")]
    LosesDigits { value: String, currency: String, minor_units: u32 },
    /// The text is not a plain decimal number.
    #[error("{value:?} is not a decimal amount")]
    NotADecimal { value: String },
    /// The value does not fit the target integer or decimal range
    /// (`currency` is empty when no currency is involved yet).
    #[error("{value}{} overflows the supported range", with_code(currency))]
    Overflow { value: String, currency: String },
    /// The value has more significant digits than an exact [`Decimal`]
    /// holds (about 28); refusing to round.
    #[error("{value} has more significant digits than an exact decimal holds (28); refusing to round")]
    TooPrecise { value: String },
    /// The amount's absolute value exceeds [`MAX_ABS_MINOR_UNITS`] minor
    /// units (`max` is that bound in major units of `currency`).
    #[error(
        "amount out of range: {value} {currency} exceeds the maximum absolute amount of {max} {currency} (10^12 minor units)"
    )]
    OutOfRange { value: String, currency: String, max: String },
    /// Arithmetic between two currencies was attempted.
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch { left: String, right: String },
}

impl MoneyError {
    /// [`MoneyError::OutOfRange`] for `value` (as received) in `currency`.
    pub fn out_of_range(value: &str, currency: Currency) -> MoneyError {
        MoneyError::OutOfRange {
            value: excerpt(value),
            currency: currency.code().to_owned(),
            max: Money::max_in_range(currency).to_string(),
        }
    }
}

fn with_code(currency: &str) -> String {
    if currency.is_empty() {
        String::new()
    } else {
        format!(" {currency}")
    }
}

/// At most 64 characters of `text`, for error values.
fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
}

impl Money {
    /// Build money from a decimal, rescaling it to the currency's minor units.
    /// Trailing zeros beyond the minor units are dropped (`4.750` USD → `4.75`);
    /// fewer digits are padded (`5` USD → `5.00`). Not bounded by
    /// [`MAX_ABS_MINOR_UNITS`] (sums may exceed it); see [`Money::check_range`].
    ///
    /// # Errors
    /// [`MoneyError::LosesDigits`] when a non-zero digit lies beyond the minor
    /// units; [`MoneyError::Overflow`] when the padded value does not fit.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let scale = currency.minor_units();
        let mut exact = amount;
        if amount.scale() > scale {
            let cut = amount.round_dp_with_strategy(scale, RoundingStrategy::ToZero);
            if cut != amount {
                return Err(MoneyError::LosesDigits {
                    value: amount.to_string(),
                    currency: currency.code().to_owned(),
                    minor_units: scale,
                });
            }
            exact = cut;
        }
        exact.rescale(scale);
        if exact.scale() != scale || exact != amount {
            return Err(MoneyError::Overflow { value: amount.to_string(), currency: currency.code().to_owned() });
        }
        if exact.is_zero() {
            exact.set_sign_positive(true);
        }
        Ok(Money { amount: exact, currency })
    }

    /// Parse a plain decimal string (`"-4.75"`, `"100.00"`, `"+3"`) exactly
    /// in `currency`. Exponents, thousands separators and surrounding spaces
    /// are refused. Not bounded by [`MAX_ABS_MINOR_UNITS`]: amounts read from
    /// a source go through [`Money::parse_in_range`].
    ///
    /// # Errors
    /// [`MoneyError::NotADecimal`] for text that is not a plain decimal;
    /// [`MoneyError::LosesDigits`] for a non-zero digit beyond the currency's
    /// minor units (whatever the length of the text); [`MoneyError::Overflow`]
    /// when the value at the minor-unit scale does not fit a [`Decimal`].
    pub fn parse(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let (negative, int, frac) = split_plain(text)?;
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        if frac.len() > currency.minor_units() as usize {
            return Err(MoneyError::LosesDigits {
                value: excerpt(text),
                currency: currency.code().to_owned(),
                minor_units: currency.minor_units(),
            });
        }
        let overflow = || MoneyError::Overflow { value: excerpt(text), currency: currency.code().to_owned() };
        // At most 29 significant digits can fit a Decimal at all.
        if int.len() + currency.minor_units() as usize > 29 {
            return Err(overflow());
        }
        let value = match Decimal::from_str_exact(text) {
            Ok(v) => v,
            // Only insignificant zeros can make the text itself too long.
            Err(_) => Decimal::from_str_exact(&normalized(negative, int, frac)).map_err(|_| overflow())?,
        };
        Money::new(value, currency).map_err(|e| match e {
            MoneyError::Overflow { .. } => overflow(),
            other => other,
        })
    }

    /// [`Money::parse`], then [`Money::check_range`]: the way every amount
    /// and balance read from a source becomes money. An amount too large for
    /// a [`Decimal`] at all is reported as out of range too.
    ///
    /// # Errors
    /// As [`Money::parse`], except that [`MoneyError::Overflow`] becomes
    /// [`MoneyError::OutOfRange`]; and [`MoneyError::OutOfRange`] when the
    /// absolute value exceeds [`MAX_ABS_MINOR_UNITS`] minor units.
    pub fn parse_in_range(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        match Money::parse(text, currency) {
            Ok(m) => m.check_range(),
            Err(MoneyError::Overflow { .. }) => Err(MoneyError::out_of_range(text, currency)),
            Err(e) => Err(e),
        }
    }

    /// [`Money::new`], then [`Money::check_range`]; a value too large to be
    /// held at the minor-unit scale at all is out of range too.
    ///
    /// # Errors
    /// [`MoneyError::LosesDigits`] as [`Money::new`]; [`MoneyError::OutOfRange`]
    /// beyond [`MAX_ABS_MINOR_UNITS`] minor units.
    pub fn new_in_range(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        match Money::new(amount, currency) {
            Ok(m) => m.check_range(),
            Err(MoneyError::Overflow { .. }) => Err(MoneyError::out_of_range(&amount.to_string(), currency)),
            Err(e) => Err(e),
        }
    }

    /// The largest amount of `currency` within [`MAX_ABS_MINOR_UNITS`]
    /// (positive; e.g. `10000000000.00` USD, `1000000000000` JPY).
    pub fn max_in_range(currency: Currency) -> Money {
        Money::from_minor_units(MAX_ABS_MINOR_UNITS, currency)
    }

    /// `true` when `|amount| ≤ 10^12` minor units ([`MAX_ABS_MINOR_UNITS`]).
    pub fn is_in_range(&self) -> bool {
        self.amount.mantissa().unsigned_abs() <= MAX_ABS_MINOR_UNITS.unsigned_abs() as u128
    }

    /// This amount, if its absolute value is at most [`MAX_ABS_MINOR_UNITS`]
    /// minor units.
    ///
    /// # Errors
    /// [`MoneyError::OutOfRange`] naming the value, currency and bound.
    pub fn check_range(self) -> Result<Money, MoneyError> {
        if self.is_in_range() {
            Ok(self)
        } else {
            Err(MoneyError::out_of_range(&self.amount.to_string(), self.currency))
        }
    }

    /// Money from integer minor units (cents for USD): `from_minor_units(-475, USD)` is `-4.75`.
    /// Any `i64` is accepted (values read back from a store are not re-bounded).
    pub fn from_minor_units(minor: i64, currency: Currency) -> Money {
        let mut amount = Decimal::from_i128_with_scale(i128::from(minor), currency.minor_units());
        if amount.is_zero() {
            amount.set_sign_positive(true);
        }
        Money { amount, currency }
    }

    /// The amount as signed integer minor units (cents for USD, yen for JPY,
    /// fils for KWD). Exact by construction: money always sits at the minor
    /// scale, so no digit can be lost; every amount within
    /// [`MAX_ABS_MINOR_UNITS`] converts.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] when the value exceeds `i64`.
    pub fn to_minor_units(&self) -> Result<i64, MoneyError> {
        i64::try_from(self.amount.mantissa()).map_err(|_| MoneyError::Overflow {
            value: self.amount.to_string(),
            currency: self.currency.code().to_owned(),
        })
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Money {
        Money::from_minor_units(0, currency)
    }

    /// The signed decimal amount, at the currency's minor-unit scale.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The same amount with the sign flipped (zero stays `0`, never `-0`).
    #[must_use]
    pub fn negated(&self) -> Money {
        let mut amount = -self.amount;
        if amount.is_zero() {
            amount.set_sign_positive(true);
        }
        Money { amount, currency: self.currency }
    }

    /// The absolute value.
    #[must_use]
    pub fn abs(&self) -> Money {
        Money { amount: self.amount.abs(), currency: self.currency }
    }

    /// `true` when the amount is below zero (a debit).
    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// Exact sum of two amounts of the same currency. Never panics.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] for different currencies,
    /// [`MoneyError::Overflow`] beyond the decimal range.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency.code().to_owned(),
                right: other.currency.code().to_owned(),
            });
        }
        let overflow = || MoneyError::Overflow {
            value: format!("{} + {}", self.amount, other.amount),
            currency: self.currency.code().to_owned(),
        };
        let sum = self.amount.checked_add(other.amount).ok_or_else(overflow)?;
        // Both sides sit at the minor scale, so the exact sum does too unless
        // the decimal had to drop precision to hold it: that is an overflow.
        Money::new(sum, self.currency).map_err(|_| overflow())
    }
}

/// Split a plain decimal into (negative, integer digits, fraction digits),
/// or refuse it.
fn split_plain(text: &str) -> Result<(bool, &str, &str), MoneyError> {
    let not_decimal = || MoneyError::NotADecimal { value: excerpt(text) };
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let plain = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !body.ends_with('.');
    if plain {
        Ok((negative, int, frac))
    } else {
        Err(not_decimal())
    }
}

/// `[-]int[.frac]` with an empty integer part written `0`.
fn normalized(negative: bool, int: &str, frac: &str) -> String {
    let sign = if negative { "-" } else { "" };
    let int = if int.is_empty() { "0" } else { int };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// Parse a plain decimal number exactly: optional sign, digits, optional
/// fraction. Refuses exponents, spaces, separators and empty text. Leading
/// zeros of the integer part and trailing zeros of the fraction are not
/// significant (`"0001.500"` is 1.5).
///
/// # Errors
/// [`MoneyError::NotADecimal`] naming the text; [`MoneyError::Overflow`]
/// (without a currency) when the integer part exceeds a [`Decimal`];
/// [`MoneyError::TooPrecise`] when the digits cannot all be held exactly.
pub fn parse_decimal(text: &str) -> Result<Decimal, MoneyError> {
    let (negative, int, frac) = split_plain(text)?;
    if let Ok(v) = Decimal::from_str_exact(text) {
        return Ok(v);
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    Decimal::from_str_exact(&normalized(negative, int, frac)).map_err(|_| {
        if int.len() > 29 || (!int.is_empty() && Decimal::from_str_exact(int).is_err()) {
            MoneyError::Overflow { value: excerpt(text), currency: String::new() }
        } else {
            MoneyError::TooPrecise { value: excerpt(text) }
        }
    })
}

impl fmt::Display for Money {
    /// The signed amount with exactly the currency's minor digits, without the code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.amount, f)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency.code())
    }
}

impl FromStr for Currency {
    type Err = crate::currency::UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    #[test]
    fn prints_exactly_the_minor_digits() {
        assert_eq!(Money::parse("-4.75", c("USD")).unwrap().to_string(), "-4.75");
        assert_eq!(Money::parse("100", c("USD")).unwrap().to_string(), "100.00");
        assert_eq!(Money::parse("4.750", c("USD")).unwrap().to_string(), "4.75");
        assert_eq!(Money::parse("-500", c("JPY")).unwrap().to_string(), "-500");
        assert_eq!(Money::parse("-500.000", c("JPY")).unwrap().to_string(), "-500");
        assert_eq!(Money::parse("-1.25", c("KWD")).unwrap().to_string(), "-1.250");
        assert_eq!(Money::parse("-0.00", c("USD")).unwrap().to_string(), "0.00");
        assert_eq!(Money::parse("+3", c("USD")).unwrap().to_string(), "3.00");
        assert_eq!(Money::parse("007.50", c("USD")).unwrap().to_string(), "7.50");
    }

    #[test]
    fn refuses_to_round() {
        let err = Money::parse("1.234", c("USD")).unwrap_err();
        assert!(matches!(err, MoneyError::LosesDigits { minor_units: 2, .. }), "{err:?}");
        assert!(Money::parse("5.5", c("JPY")).is_err());
        assert!(Money::parse("0.0001", c("KWD")).is_err());
        assert!(Money::parse("12.340000000001", c("USD")).is_err());
        assert_eq!(Money::parse("12.340000000000", c("USD")).unwrap().to_string(), "12.34");
    }

    #[test]
    fn refuses_non_plain_decimals() {
        for bad in ["", "-", "1e3", " 1.00", "1,000.00", "abc", "1.", ".5", "--1", "NaN", "0x10"] {
            assert!(
                matches!(Money::parse(bad, c("USD")), Err(MoneyError::NotADecimal { .. })),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn minor_units_round_trip_exactly() {
        let usd = c("USD");
        assert_eq!(Money::parse("-4.75", usd).unwrap().to_minor_units().unwrap(), -475);
        assert_eq!(Money::parse("1.250", c("KWD")).unwrap().to_minor_units().unwrap(), 1250);
        assert_eq!(Money::parse("-500", c("JPY")).unwrap().to_minor_units().unwrap(), -500);
        assert_eq!(Money::from_minor_units(-475, usd).to_string(), "-4.75");
        assert_eq!(Money::from_minor_units(7, c("KWD")).to_string(), "0.007");
        assert_eq!(Money::from_minor_units(-0, usd).to_string(), "0.00");
        for minor in [i64::MIN, -1, 0, 1, 99, 12345, i64::MAX] {
            assert_eq!(Money::from_minor_units(minor, usd).to_minor_units().unwrap(), minor);
        }
    }

    #[test]
    fn minor_units_overflow_is_an_error_not_a_wrap() {
        let big = Money::parse("99999999999999999999.00", c("USD")).unwrap();
        assert!(matches!(big.to_minor_units(), Err(MoneyError::Overflow { .. })));
    }

    #[test]
    fn amounts_are_bounded_in_minor_units() {
        let usd = c("USD");
        assert_eq!(MAX_ABS_MINOR_UNITS, 10_i64.pow(12));
        assert_eq!(Money::max_in_range(usd).to_string(), "10000000000.00");
        assert_eq!(Money::max_in_range(c("JPY")).to_string(), "1000000000000");
        assert_eq!(Money::max_in_range(c("KWD")).to_string(), "1000000000.000");
        assert_eq!(Money::max_in_range(c("CLF")).to_string(), "100000000.0000");
        // The bound is inclusive, in both directions.
        assert!(Money::parse_in_range("10000000000.00", usd).is_ok());
        assert!(Money::parse_in_range("-10000000000", usd).is_ok());
        for bad in ["10000000000.01", "-10000000000.01", "-100000000000000000.00"] {
            let e = Money::parse_in_range(bad, usd).unwrap_err();
            assert!(matches!(e, MoneyError::OutOfRange { .. }), "{bad}: {e:?}");
            let text = e.to_string();
            assert!(text.starts_with("amount out of range: ") && text.contains("10000000000.00 USD"), "{text}");
        }
        // Too large for a decimal at all: out of range too, never "not a decimal".
        let huge = format!("-{}.00", "9".repeat(40));
        assert!(matches!(Money::parse_in_range(&huge, usd), Err(MoneyError::OutOfRange { .. })));
        assert!(matches!(Money::parse(&huge, usd), Err(MoneyError::Overflow { .. })));
        // The unbounded constructors still hold large values (sums, stored rows).
        let big = Money::parse("-100000000000000000.00", usd).unwrap();
        assert!(!big.is_in_range());
        assert!(matches!(big.check_range(), Err(MoneyError::OutOfRange { .. })));
        assert!(matches!(Money::new_in_range(Decimal::MAX, usd), Err(MoneyError::OutOfRange { .. })));
        assert!(matches!(Money::new_in_range(big.amount(), usd), Err(MoneyError::OutOfRange { .. })));
        assert_eq!(Money::new_in_range(Decimal::new(-475, 2), usd).unwrap().to_string(), "-4.75");
        assert!(matches!(Money::new_in_range(Decimal::new(-4751, 3), usd), Err(MoneyError::LosesDigits { .. })));
        // Every in-range amount has integer minor units.
        assert_eq!(Money::max_in_range(c("CLF")).negated().to_minor_units().unwrap(), -MAX_ABS_MINOR_UNITS);
    }

    #[test]
    fn long_texts_are_judged_exactly() {
        let usd = c("USD");
        // Many zeros are not significant; one digit far out is a lost digit.
        let zeros = format!("00012.34{}", "0".repeat(50));
        assert_eq!(Money::parse(&zeros, usd).unwrap().to_string(), "12.34");
        let far = format!("12.34{}1", "0".repeat(50));
        assert!(matches!(Money::parse(&far, usd), Err(MoneyError::LosesDigits { .. })));
        assert_eq!(parse_decimal("4.750").unwrap().to_string(), "4.750");
        assert_eq!(parse_decimal(&format!("-0004.75{}", "0".repeat(40))).unwrap().to_string(), "-4.75");
        assert!(matches!(parse_decimal(&format!("0000.{}1", "0".repeat(40))), Err(MoneyError::TooPrecise { .. })));
        assert!(matches!(parse_decimal(&"9".repeat(40)), Err(MoneyError::Overflow { .. })));
        assert!(matches!(parse_decimal(&format!("0.{}1", "0".repeat(40))), Err(MoneyError::TooPrecise { .. })));
        let e = parse_decimal(&"9".repeat(40)).unwrap_err().to_string();
        assert!(e.ends_with("9 overflows the supported range"), "{e}");
    }

    #[test]
    fn sums_never_panic() {
        let max = Money::new(Decimal::MAX, c("JPY")).unwrap();
        assert!(matches!(max.checked_add(&max), Err(MoneyError::Overflow { .. })));
        let usd_max =
            Money::new(Decimal::from_i128_with_scale(i128::from(i64::MAX) * 1_000_000_000, 2), c("USD")).unwrap();
        let one = Money::parse("0.01", c("USD")).unwrap();
        assert!(usd_max.checked_add(&one).is_ok());
        let top =
            Money::new(Decimal::from_i128_with_scale(79_228_162_514_264_337_593_543_950_335, 2), c("USD")).unwrap();
        assert!(matches!(top.checked_add(&one), Err(MoneyError::Overflow { .. })));
    }

    #[test]
    fn sums_are_exact_and_currency_checked() {
        let usd = c("USD");
        let a = Money::parse("0.10", usd).unwrap();
        let b = Money::parse("0.20", usd).unwrap();
        assert_eq!(a.checked_add(&b).unwrap().to_string(), "0.30");
        let yen = Money::parse("1", c("JPY")).unwrap();
        assert!(matches!(a.checked_add(&yen), Err(MoneyError::CurrencyMismatch { .. })));
        assert_eq!(a.negated().to_string(), "-0.10");
        assert_eq!(Money::zero(usd).negated().to_string(), "0.00");
    }
}
