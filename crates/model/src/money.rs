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
    /// The value does not fit the target integer or decimal range.
    #[error("{value} {currency} overflows the supported range")]
    Overflow { value: String, currency: String },
    /// Arithmetic between two currencies was attempted.
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch { left: String, right: String },
}

impl Money {
    /// Build money from a decimal, rescaling it to the currency's minor units.
    /// Trailing zeros beyond the minor units are dropped (`4.750` USD → `4.75`);
    /// fewer digits are padded (`5` USD → `5.00`).
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

    /// Parse a plain decimal string (`"-4.75"`, `"100.00"`, `"+3"`) exactly.
    /// Exponents, thousands separators and surrounding spaces are refused.
    ///
    /// # Errors
    /// [`MoneyError::NotADecimal`] for text that is not a plain decimal, and
    /// the errors of [`Money::new`].
    pub fn parse(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        Money::new(parse_decimal(text)?, currency)
    }

    /// Money from integer minor units (cents for USD): `from_minor_units(-475, USD)` is `-4.75`.
    pub fn from_minor_units(minor: i64, currency: Currency) -> Money {
        let mut amount = Decimal::from_i128_with_scale(i128::from(minor), currency.minor_units());
        if amount.is_zero() {
            amount.set_sign_positive(true);
        }
        Money { amount, currency }
    }

    /// The amount as signed integer minor units (cents for USD, yen for JPY,
    /// fils for KWD). Exact by construction.
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

    /// Exact sum of two amounts of the same currency.
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
        let sum = self.amount.checked_add(other.amount).ok_or_else(|| MoneyError::Overflow {
            value: format!("{} + {}", self.amount, other.amount),
            currency: self.currency.code().to_owned(),
        })?;
        Money::new(sum, self.currency)
    }
}

/// Parse a plain decimal number exactly: optional sign, digits, optional
/// fraction. Refuses exponents, spaces, separators and empty text.
///
/// # Errors
/// [`MoneyError::NotADecimal`] naming the text.
pub fn parse_decimal(text: &str) -> Result<Decimal, MoneyError> {
    let not_decimal = || MoneyError::NotADecimal { value: text.chars().take(64).collect() };
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let plain = !body.is_empty()
        && !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(body.ends_with('.'));
    if !plain {
        return Err(not_decimal());
    }
    Decimal::from_str_exact(text).map_err(|_| not_decimal())
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
