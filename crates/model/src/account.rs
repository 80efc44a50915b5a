//! The canonical account.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::currency::Currency;
use crate::money::Money;

/// An account as a source describes it. Balances are signed from the holder's
/// view as the source reports them; `None` when the source gives none.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    /// Source name.
    pub source: Arc<str>,
    /// The source's account id.
    pub source_account_id: String,
    /// Source account type (Truv `CHECKING`, `CREDIT_CARD`, …; Firefly `Asset account`).
    pub account_type: Option<String>,
    /// Source subtype (Truv `MONEY_MARKET`, …).
    pub subtype: Option<String>,
    /// Display name (Truv `nickname`; Firefly account name).
    pub name: Option<String>,
    /// Last four characters of the account number at most — never more is kept.
    pub mask: Option<String>,
    /// Account currency.
    pub currency: Option<Currency>,
    /// Current balance.
    pub balance: Option<Money>,
    /// Available balance.
    pub available_balance: Option<Money>,
    /// Credit limit (credit accounts).
    pub credit_limit: Option<Money>,
    /// Opening balance (Firefly `opening balance` journals).
    pub opening_balance: Option<Money>,
    /// Date of the opening balance.
    pub opening_balance_date: Option<NaiveDate>,
    /// Source's last-modified instant (UTC).
    pub updated_at: Option<DateTime<Utc>>,
}

impl Account {
    /// An account known only by id (seen on a transaction, not in a list).
    pub fn bare(source: Arc<str>, source_account_id: String) -> Account {
        Account {
            source,
            source_account_id,
            account_type: None,
            subtype: None,
            name: None,
            mask: None,
            currency: None,
            balance: None,
            available_balance: None,
            credit_limit: None,
            opening_balance: None,
            opening_balance_date: None,
            updated_at: None,
        }
    }
}

/// Reduce an account number or mask to at most its last four characters, so
/// that no more of an account number than a mask is ever kept.
pub fn mask_account_number(raw: &str) -> String {
    let chars: Vec<char> = raw.trim().chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mask_keeps_last_four() {
        assert_eq!(super::mask_account_number("6789"), "6789");
        assert_eq!(super::mask_account_number("1234567890"), "7890");
        assert_eq!(super::mask_account_number("12"), "12");
        assert_eq!(super::mask_account_number(""), "");
    }
}
