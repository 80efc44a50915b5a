//! The Trupocket plan of one transaction, pure (no I/O): what the row
//! becomes — skipped (no sink account), refused (another currency than the
//! household's, a category that cannot be had, an amount that is not whole
//! cents), covered (the credit leg of a transfer row) or sent (which
//! request) — from facts the caller supplies.
//!
//! Both planners call [`plan`]: the live sink (`Sink::plan`, facts read from
//! Trupocket and the store, looked up only when [`plan`] asks for them with
//! [`Needs`]) and the offline plans (`crate::offline`: `replay
//! --sink-requests`, `sync --dry-run`), whose assumptions are facts too —
//! categories assumed to exist ([`Categories::AssumedToExist`]), no
//! transfer counterpart known ([`Transfer::None`]). So the same facts give
//! the same request, live or offline.

use std::collections::BTreeSet;

use bankpipe_config::TrupocketConfig;
use bankpipe_enrich::categorize::sink_maps::SinkCategoryMaps;
use bankpipe_model::{Currency, Kind, Transaction};

use super::payload;
use crate::sink::Plan;

/// What the configuration fixes for a run (`[[sinks]] kind = "trupocket"`).
#[derive(Clone, Copy, Debug)]
pub struct Settings<'a> {
    /// `household_id`.
    pub household: &'a str,
    /// The household's currency: amounts in any other are refused.
    pub currency: Currency,
    /// `create_categories`.
    pub create_categories: bool,
    /// `fallback_category`.
    pub fallback_category: &'a str,
    /// `[categories.trupocket]`: canonical category → Trupocket category name.
    pub maps: &'a SinkCategoryMaps,
}

impl<'a> Settings<'a> {
    /// The settings of the `kind = "trupocket"` keys `tp`, with the
    /// category names of `maps`.
    ///
    /// # Errors
    /// `currency` is not an ISO 4217 code (the message names it).
    pub fn of(tp: &'a TrupocketConfig, maps: &'a SinkCategoryMaps) -> Result<Settings<'a>, String> {
        Ok(Settings {
            household: &tp.household_id,
            currency: Currency::from_code(&tp.currency).map_err(|e| format!("currency: {e}"))?,
            create_categories: tp.create_categories,
            fallback_category: &tp.fallback_category,
            maps,
        })
    }
}

/// The household's categories, as far as the planner knows them.
#[derive(Clone, Copy, Debug)]
pub enum Categories<'a> {
    /// The names listed from Trupocket (live, once per run, plus those
    /// created since).
    Listed(&'a BTreeSet<String>),
    /// Offline: every mapped category is assumed to exist.
    AssumedToExist,
}

/// The other leg of a transfer, as far as it matters to this household.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// No other leg in an account this household maps (same currency,
    /// opposite sign) — or, offline, not known: the row goes on its own.
    None,
    /// This is the debit leg; the credit leg (canonical id `credit`) is in
    /// sink account `to`: one `cashflow: transfer` row, settling both.
    Debit { credit: String, to: String },
    /// This is the credit leg of the debit leg `debit`, delivered as
    /// `delivered` says.
    Credit { debit: String, delivered: DebitLeg },
}

/// How the debit leg of a transfer was delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DebitLeg {
    /// Not delivered yet: the credit leg waits for it.
    NotYet,
    /// As the transfer row naming this credit leg (sink row `remote_id`).
    AsTransfer { remote_id: Option<String> },
    /// As a row of its own (a plain expense): the credit leg goes out as
    /// its own income row.
    AsItsOwnRow,
}

/// The facts [`plan`] decides from.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// The sink account of the transaction's source account, or the notice
    /// printed when there is none (the row is skipped and stays queued).
    pub account: Result<&'a str, &'a str>,
    /// The transfer's other leg; `None` when not looked up (asked for with
    /// [`Needs::Transfer`] only for a transfer that would be sent).
    pub transfer: Option<&'a Transfer>,
    /// The household's categories.
    pub categories: Categories<'a>,
}

/// A fact [`plan`] needs and was not given: the live sink gets it (I/O)
/// and plans again; the offline planner gives every fact up front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Needs {
    /// The transfer's other leg ([`Facts::transfer`]).
    Transfer,
    /// The category of this name does not exist and may be created:
    /// create it, then plan again with it listed.
    Category(String),
}

/// The plan of `tx` (a deliverable transaction) from `facts`, the request
/// carrying `marker` in its memo.
///
/// In order: no sink account → `Skip` with the account's notice; another
/// currency than the household's → `Refuse`; a transfer whose other leg
/// the household maps → one transfer row sent by the debit leg, the credit
/// leg `Covered` by it (or `Skip`ped, silently, until it is delivered);
/// else the row under its category (see [`category`]) in absolute cents
/// (`Refuse` when not whole cents).
///
/// # Errors
/// [`Needs`] a fact not given yet.
pub fn plan(settings: &Settings, facts: &Facts, tx: &Transaction, marker: &str) -> Result<Plan, Needs> {
    let account = match facts.account {
        Ok(account) => account,
        Err(notice) => {
            return Ok(Plan::Skip {
                account: format!("{}:{}", tx.source, tx.source_account_id),
                notice: notice.to_owned(),
            })
        }
    };
    if tx.amount.currency() != settings.currency {
        return Ok(Plan::Refuse(format!(
            "amount in {} but the Trupocket household is in {}; bankpipe never converts currencies",
            tx.amount.currency(),
            settings.currency
        )));
    }
    let transfer = match (tx.kind, facts.transfer) {
        (Kind::Transfer, None) => return Err(Needs::Transfer),
        (Kind::Transfer, Some(t)) => t,
        _ => &Transfer::None,
    };
    match transfer {
        Transfer::Debit { credit, to } => {
            // The debit leg sends the transfer, settling the credit leg.
            let category = match category(settings, facts.categories, tx)? {
                Ok(c) => c,
                Err(reason) => return Ok(Plan::Refuse(reason)),
            };
            let request = payload::transfer(tx, credit, marker, settings.household, account, to, &category);
            return Ok(request.map_or_else(Plan::Refuse, Plan::Send));
        }
        Transfer::Credit { debit, delivered: DebitLeg::AsTransfer { remote_id } } => {
            return Ok(Plan::Covered(format!(
                "delivered within the transfer row of its debit leg {debit}{}",
                remote_id.as_ref().map(|r| format!(" (sink row {r})")).unwrap_or_default()
            )))
        }
        // Waits for its debit leg, which settles it when delivered (no
        // notice: nothing for the user to do).
        Transfer::Credit { debit, delivered: DebitLeg::NotYet } => {
            return Ok(Plan::Skip { account: format!("transfer:{debit}"), notice: String::new() })
        }
        // A debit leg delivered earlier as a plain expense covers nothing:
        // this leg goes out as its own income row.
        Transfer::Credit { delivered: DebitLeg::AsItsOwnRow, .. } | Transfer::None => {}
    }
    let category = match category(settings, facts.categories, tx)? {
        Ok(c) => c,
        Err(reason) => return Ok(Plan::Refuse(reason)),
    };
    Ok(payload::transaction(tx, marker, settings.household, account, &category).map_or_else(Plan::Refuse, Plan::Send))
}

/// The category `tx` is filed under: its canonical category mapped by
/// `[categories.trupocket]` when the household has it; else, with
/// `create_categories`, that one once created ([`Needs::Category`]); else
/// `fallback_category` when the household has it; else `Err` with the
/// reason the row is refused.
///
/// # Errors
/// [`Needs::Category`]: create it first.
pub fn category(
    settings: &Settings,
    categories: Categories,
    tx: &Transaction,
) -> Result<Result<String, String>, Needs> {
    let wanted = settings.maps.trupocket(tx.category.as_deref().unwrap_or("Uncategorized")).to_owned();
    let listed = match categories {
        Categories::AssumedToExist => return Ok(Ok(wanted)),
        Categories::Listed(listed) => listed,
    };
    if listed.contains(&wanted) {
        return Ok(Ok(wanted));
    }
    if settings.create_categories {
        return Err(Needs::Category(wanted));
    }
    if listed.contains(settings.fallback_category) {
        return Ok(Ok(settings.fallback_category.to_owned()));
    }
    Ok(Err(format!(
        "category {wanted:?} does not exist in Trupocket, create_categories is false and the fallback {:?} does not exist either",
        settings.fallback_category
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tx;

    fn settings(maps: &SinkCategoryMaps, create_categories: bool) -> Settings<'_> {
        Settings {
            household: "h1",
            currency: Currency::from_code("USD").unwrap(),
            create_categories,
            fallback_category: "Uncategorized",
            maps,
        }
    }

    fn facts<'a>(transfer: Option<&'a Transfer>, categories: Categories<'a>) -> Facts<'a> {
        Facts { account: Ok("acc"), transfer, categories }
    }

    #[test]
    fn skip_then_refuse_then_the_category_decides() {
        let maps = SinkCategoryMaps::default();
        let t = tx("-4.75", "USD", Some("Starbucks"));
        let all = Categories::AssumedToExist;
        let skipped = plan(&settings(&maps, false), &Facts { account: Err("not mapped"), ..facts(None, all) }, &t, "m");
        assert_eq!(skipped, Ok(Plan::Skip { account: "truv:a".into(), notice: "not mapped".into() }));
        let euro = tx("-4.75", "EUR", None);
        assert!(
            matches!(plan(&settings(&maps, false), &facts(None, all), &euro, "m"), Ok(Plan::Refuse(r)) if r.contains("household is in USD"))
        );
        let Ok(Plan::Send(r)) = plan(&settings(&maps, false), &facts(None, all), &t, "m") else { panic!() };
        assert_eq!(r.body["categories"][0]["name"], "Coffee Shops", "offline: the mapped category is assumed to exist");

        let listed: BTreeSet<String> = ["Uncategorized".to_owned()].into();
        let have = Categories::Listed(&listed);
        assert_eq!(
            plan(&settings(&maps, true), &facts(None, have), &t, "m"),
            Err(Needs::Category("Coffee Shops".into()))
        );
        let Ok(Plan::Send(r)) = plan(&settings(&maps, false), &facts(None, have), &t, "m") else { panic!() };
        assert_eq!(r.body["categories"][0]["name"], "Uncategorized", "the fallback");
        let none = BTreeSet::new();
        assert!(matches!(
            plan(&settings(&maps, false), &facts(None, Categories::Listed(&none)), &t, "m"),
            Ok(Plan::Refuse(r)) if r.contains("create_categories is false")
        ));
    }

    #[test]
    fn a_transfer_asks_for_its_other_leg_and_is_one_row_from_the_debit_leg() {
        let maps = SinkCategoryMaps::default();
        let s = settings(&maps, false);
        let all = Categories::AssumedToExist;
        let mut debit = tx("-50.00", "USD", None);
        debit.kind = Kind::Transfer;
        assert_eq!(plan(&s, &facts(None, all), &debit, "m"), Err(Needs::Transfer));
        let to = Transfer::Debit { credit: "c1".into(), to: "acc2".into() };
        let Ok(Plan::Send(r)) = plan(&s, &facts(Some(&to), all), &debit, "m") else { panic!() };
        assert_eq!(
            (r.body["cashflow"].as_str(), r.body["toAccountID"].as_str(), r.covers.as_deref()),
            (Some("transfer"), Some("acc2"), Some("c1"))
        );
        let mut credit = tx("50.00", "USD", None);
        credit.kind = Kind::Transfer;
        let waiting = Transfer::Credit { debit: "d1".into(), delivered: DebitLeg::NotYet };
        assert_eq!(
            plan(&s, &facts(Some(&waiting), all), &credit, "m"),
            Ok(Plan::Skip { account: "transfer:d1".into(), notice: String::new() })
        );
        let covered =
            Transfer::Credit { debit: "d1".into(), delivered: DebitLeg::AsTransfer { remote_id: Some("r9".into()) } };
        assert!(
            matches!(plan(&s, &facts(Some(&covered), all), &credit, "m"), Ok(Plan::Covered(r)) if r.contains("d1") && r.contains("r9"))
        );
        let own = Transfer::Credit { debit: "d1".into(), delivered: DebitLeg::AsItsOwnRow };
        let Ok(Plan::Send(r)) = plan(&s, &facts(Some(&own), all), &credit, "m") else { panic!() };
        assert_eq!(r.body["cashflow"], "income");
        let Ok(Plan::Send(r)) = plan(&s, &facts(Some(&Transfer::None), all), &credit, "m") else { panic!() };
        assert_eq!(r.body["cashflow"], "income");
    }
}
