//! The mibudge plan of one transaction, pure (no I/O): skipped (no bank
//! account mapped), refused (a currency the server does not take, another
//! currency than the bank account's, more than 2 decimals, no such bank
//! account) or sent (which request, with which budget split), from facts
//! the caller supplies.
//!
//! Both planners call [`plan`]: the live sink (`Sink::plan`: the server's
//! currency list read once per run, a bank account's currency read when
//! [`plan`] asks for it with [`Needs`]) and the offline plans
//! (`crate::offline`), whose assumptions are facts too — the server's
//! currencies and the bank account's currency not known (not checked), no
//! budget ids (no split). So the same facts give the same request, live or
//! offline.

use std::collections::BTreeSet;

use bankpipe_model::{Currency, Transaction};
use chrono_tz::Tz;

use super::payload;
use crate::sink::Plan;

/// The facts [`plan`] decides from.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// The bank account `[sinks.accounts]` maps the transaction's source
    /// account to, or the notice printed when there is none (the row is
    /// skipped and stays queued).
    pub account: Result<&'a str, &'a str>,
    /// The currency codes the server accepts (`GET /api/v1/currencies/`);
    /// `None` when not known (offline): not checked.
    pub accepted: Option<&'a BTreeSet<String>>,
    /// The bank account's currency: `None` when not read yet (asked for
    /// with [`Needs::AccountCurrency`]); `Some(Ok(None))` when not known
    /// (offline, or the server does not say): not checked;
    /// `Some(Err(reason))` when the server has no such account.
    pub account_currency: Option<&'a Result<Option<Currency>, String>>,
    /// The id of the budget the transaction's category splits to; `None`:
    /// no split, the server's Unallocated default stands (offline: budget
    /// ids are not known).
    pub budget: Option<&'a str>,
}

/// A fact [`plan`] needs and was not given: the live sink reads it and
/// plans again; the offline planner gives every fact up front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Needs {
    /// The currency of this bank account ([`Facts::account_currency`]).
    AccountCurrency(String),
}

/// The plan of `tx` (a deliverable transaction) from `facts`: the request
/// (see `payload::transaction`) carrying `marker` in its memo, dates in the
/// booking zone `zone`.
///
/// In order: no bank account → `Skip` with the notice; a currency the server
/// does not accept, another currency than the bank account's, no such bank
/// account, or more than 2 decimals (mibudge stores 2; bankpipe never
/// rounds) → `Refuse`; else `Send`.
///
/// # Errors
/// [`Needs`] a fact not given yet.
pub fn plan(facts: &Facts, tx: &Transaction, marker: &str, zone: Tz) -> Result<Plan, Needs> {
    let account = match facts.account {
        Ok(account) => account,
        Err(notice) => {
            return Ok(Plan::Skip {
                account: format!("{}:{}", tx.source, tx.source_account_id),
                notice: notice.to_owned(),
            })
        }
    };
    let currency = tx.amount.currency();
    if let Some(accepted) = facts.accepted.filter(|a| !a.contains(currency.code())) {
        return Ok(Plan::Refuse(format!(
            "mibudge does not accept {currency} (its currencies: {})",
            accepted.iter().cloned().collect::<Vec<_>>().join(" ")
        )));
    }
    match facts.account_currency {
        None => return Err(Needs::AccountCurrency(account.to_owned())),
        Some(Err(reason)) => return Ok(Plan::Refuse(reason.clone())),
        Some(Ok(Some(c))) if *c != currency => {
            return Ok(Plan::Refuse(format!(
                "amount in {currency} but mibudge bank account {account} is in {c}; bankpipe never converts currencies"
            )))
        }
        Some(Ok(_)) => {}
    }
    if tx.amount.amount().normalize().scale() > 2 {
        return Ok(Plan::Refuse(format!(
            "amount {} has more than 2 decimals; mibudge stores amounts with 2 and bankpipe never rounds",
            tx.amount
        )));
    }
    Ok(Plan::Send(payload::transaction(tx, marker, account, zone, facts.budget)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tx;

    #[test]
    fn unknown_facts_are_asked_for_or_not_checked() {
        let zone = chrono_tz::UTC;
        let t = tx("-4.75", "USD", Some("Starbucks"));
        let offline = Facts { account: Ok("b1"), accepted: None, account_currency: Some(&Ok(None)), budget: None };
        let Ok(Plan::Send(r)) = plan(&offline, &t, "m", zone) else { panic!() };
        assert_eq!((r.body["bank_account"].as_str(), r.follow_up.as_ref()), (Some("b1"), None));
        let unread = Facts { account_currency: None, ..offline };
        assert_eq!(plan(&unread, &t, "m", zone), Err(Needs::AccountCurrency("b1".into())));
        let skipped = Facts { account: Err("not mapped"), ..unread };
        assert_eq!(
            plan(&skipped, &t, "m", zone),
            Ok(Plan::Skip { account: "truv:a".into(), notice: "not mapped".into() })
        );
        let usd_only: BTreeSet<String> = ["USD".to_owned()].into();
        let euro = tx("-4.75", "EUR", None);
        assert!(
            matches!(plan(&Facts { accepted: Some(&usd_only), ..unread }, &euro, "m", zone), Ok(Plan::Refuse(r)) if r.contains("does not accept EUR"))
        );
        let in_usd = Ok(Some(Currency::from_code("USD").unwrap()));
        let known =
            Facts { accepted: Some(&usd_only), account_currency: Some(&in_usd), budget: Some("bud"), ..offline };
        let Ok(Plan::Send(r)) = plan(&known, &t, "m", zone) else { panic!() };
        assert_eq!(r.follow_up, Some(serde_json::json!({"splits": {"bud": "4.75"}})));
        let gone = Err("no such bank account".to_owned());
        assert_eq!(
            plan(&Facts { account_currency: Some(&gone), ..known }, &t, "m", zone),
            Ok(Plan::Refuse("no such bank account".into()))
        );
        let all = ["USD".to_owned(), "KWD".to_owned()].into();
        let dinar = tx("-1.125", "KWD", None);
        assert!(
            matches!(plan(&Facts { accepted: Some(&all), ..offline }, &dinar, "m", zone), Ok(Plan::Refuse(r)) if r.contains("more than 2 decimals"))
        );
    }
}
