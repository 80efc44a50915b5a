//! Account dedupe: one account per (source, source account id).

use bankpipe_model::Account;

/// Merge a newer sighting of an account into the one already held: the
/// sighting with the newer (or equal) `updated_at` provides the fields, and
/// fields it lacks (opening balance, name, currency, mask) are kept from
/// the older one.
pub fn merge_account(held: &mut Account, seen: Account) {
    let newer = seen.updated_at >= held.updated_at;
    let mut old = std::mem::replace(held, seen);
    if !newer {
        std::mem::swap(held, &mut old);
    }
    macro_rules! keep {
        ($($f:ident),*) => { $( if held.$f.is_none() { held.$f = old.$f.take(); } )* };
    }
    keep!(account_type, subtype, name, mask, currency, balance, available_balance, credit_limit, updated_at);
    if held.opening_balance.is_none() {
        held.opening_balance = old.opening_balance;
        held.opening_balance_date = old.opening_balance_date;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bankpipe_model::{Currency, Money};

    use super::*;

    #[test]
    fn newer_sighting_wins_and_keeps_what_it_lacks() {
        let src: Arc<str> = Arc::from("firefly");
        let mut held = Account::bare(src.clone(), "2".into());
        held.opening_balance = Some(Money::parse("1000", Currency::USD).unwrap());
        held.name = Some("Savings".into());
        held.updated_at = Some("2024-01-01T00:00:00Z".parse().unwrap());
        let mut seen = Account::bare(src.clone(), "2".into());
        seen.balance = Some(Money::parse("5", Currency::USD).unwrap());
        seen.updated_at = Some("2024-02-01T00:00:00Z".parse().unwrap());
        merge_account(&mut held, seen);
        assert_eq!(held.balance.unwrap().to_string(), "5.00");
        assert_eq!(held.opening_balance.unwrap().to_string(), "1000.00");
        assert_eq!(held.name.as_deref(), Some("Savings"));

        let mut older = Account::bare(src, "2".into());
        older.balance = Some(Money::parse("1", Currency::USD).unwrap());
        older.updated_at = Some("2023-01-01T00:00:00Z".parse().unwrap());
        merge_account(&mut held, older);
        assert_eq!(held.balance.unwrap().to_string(), "5.00", "an older sighting does not overwrite");
    }
}
