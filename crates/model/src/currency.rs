//! ISO 4217 currencies and their minor units.
//!
//! The table lists the active ISO 4217 alphabetic codes that denote money
//! (precious metals, testing and "no currency" codes such as XAU, XTS and XXX
//! have no minor unit and are deliberately absent). Minor units follow the
//! ISO 4217 list ("List One"), e.g. USD 2, JPY 0, KWD/BHD/TND 3, CLF 4.

use std::fmt;

/// `(alphabetic code, minor units)`, sorted by code for binary search.
///
/// Codes recently withdrawn but still seen in bank data for years afterwards
/// (ANG, replaced by XCG in 2025; BGN, replaced by EUR in 2026; CUC, the
/// Cuban convertible peso, withdrawn 2021; HRK, the Croatian kuna, replaced
/// by EUR in 2023; SLL, ZWL) are kept so that history replays do not fail;
/// they are marked below.
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2), // ANG: withdrawn 2025, historical
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2), // BGN: withdrawn 2026, historical
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUC", 2), // CUC: withdrawn 2021, historical
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HRK", 2), // HRK: withdrawn 2023 (replaced by EUR), historical
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SLL", 2), // SLL: withdrawn, historical
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
    ("ZWL", 2), // ZWL: withdrawn 2024, historical
];

const NOT_A_CURRENCY: u8 = u8::MAX;

/// Index of an upper-case three-letter code in [`MINOR_UNITS_BY_CODE`].
const fn slot(a: u8, b: u8, c: u8) -> usize {
    ((a - b'A') as usize * 26 + (b - b'A') as usize) * 26 + (c - b'A') as usize
}

/// Minor units of every possible code `AAA`..`ZZZ` (17,576 bytes), built
/// from [`ISO_4217`] at compile time: lookups are one index, no search.
static MINOR_UNITS_BY_CODE: [u8; 26 * 26 * 26] = {
    let mut table = [NOT_A_CURRENCY; 26 * 26 * 26];
    let mut i = 0;
    while i < ISO_4217.len() {
        let (code, units) = ISO_4217[i];
        let b = code.as_bytes();
        table[slot(b[0], b[1], b[2])] = units;
        i += 1;
    }
    table
};

/// An ISO 4217 currency: its three-letter alphabetic code and the number of
/// minor-unit digits (USD 2 → cents, JPY 0, KWD 3 → fils).
///
/// Only codes in the built-in table can be constructed, so every `Currency`
/// has a known minor unit. `Copy`, 4 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    minor_units: u8,
}

/// A currency code that is not an active ISO 4217 code with minor units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency code {code:?}: not an ISO 4217 currency with minor units")]
pub struct UnknownCurrency {
    /// The code as received (trimmed to 16 characters).
    pub code: String,
}

impl Currency {
    /// US dollar (2 minor units), the most common case in tests and defaults.
    pub const USD: Currency = Currency { code: *b"USD", minor_units: 2 };

    /// Look a code up in the ISO 4217 table. Codes are matched exactly
    /// (upper case, three letters); `"usd"` is refused rather than guessed.
    ///
    /// # Errors
    /// [`UnknownCurrency`] when the code is not in the table.
    pub fn from_code(code: &str) -> Result<Currency, UnknownCurrency> {
        let unknown = || UnknownCurrency { code: code.chars().take(16).collect() };
        let b = code.as_bytes();
        if b.len() != 3 || !b.iter().all(u8::is_ascii_uppercase) {
            return Err(unknown());
        }
        match MINOR_UNITS_BY_CODE[slot(b[0], b[1], b[2])] {
            NOT_A_CURRENCY => Err(unknown()),
            minor_units => Ok(Currency { code: [b[0], b[1], b[2]], minor_units }),
        }
    }

    /// The three-letter alphabetic code, e.g. `"USD"`.
    pub fn code(&self) -> &str {
        // The table holds ASCII codes only.
        std::str::from_utf8(&self.code).expect("ISO 4217 codes are ASCII")
    }

    /// Number of minor-unit digits (USD 2, JPY 0, KWD 3).
    pub fn minor_units(&self) -> u32 {
        u32::from(self.minor_units)
    }

    /// Every currency in the table, in code order.
    pub fn all() -> impl Iterator<Item = Currency> {
        ISO_4217.iter().map(|(c, _)| Currency::from_code(c).expect("table entry"))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.code(), self.minor_units)
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for w in ISO_4217.windows(2) {
            assert!(w[0].0 < w[1].0, "{} must sort before {}", w[0].0, w[1].0);
        }
        for (code, _) in ISO_4217 {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
        }
    }

    #[test]
    fn well_known_minor_units() {
        for (code, units) in [
            ("USD", 2),
            ("EUR", 2),
            ("GBP", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("ISK", 0),
            ("CLP", 0),
            ("KWD", 3),
            ("BHD", 3),
            ("TND", 3),
            ("JOD", 3),
            ("OMR", 3),
            ("IQD", 3),
            ("LYD", 3),
            ("CLF", 4),
            ("UYW", 4),
            ("VND", 0),
            ("XOF", 0),
        ] {
            assert_eq!(Currency::from_code(code).unwrap().minor_units(), units, "{code}");
        }
    }

    #[test]
    fn every_table_entry_round_trips() {
        let all: Vec<Currency> = Currency::all().collect();
        assert_eq!(all.len(), ISO_4217.len());
        for (c, (code, units)) in all.iter().zip(ISO_4217) {
            assert_eq!((c.code(), c.minor_units()), (*code, u32::from(*units)));
        }
    }

    #[test]
    fn withdrawn_codes_seen_in_old_data_are_known() {
        for (code, units) in [("HRK", 2), ("CUC", 2), ("ANG", 2), ("BGN", 2), ("SLL", 2), ("ZWL", 2)] {
            let c = Currency::from_code(code).unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!((c.code(), c.minor_units()), (code, units));
            assert!(Currency::all().any(|a| a == c), "{code} listed by Currency::all");
        }
    }

    #[test]
    fn unknown_and_non_money_codes_are_refused() {
        for code in ["usd", "XAU", "XXX", "XTS", "US", "USDX", "", "BTC", "ÜSD", "U$D", "AAA", "ZZZ"] {
            assert!(Currency::from_code(code).is_err(), "{code} must be refused");
        }
    }
}
