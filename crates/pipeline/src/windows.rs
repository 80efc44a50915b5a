//! Fetch windows that never miss (DESIGN §8, issue #10): which walks a
//! sync makes of one source, per source account.
//!
//! An account's window starts at `min(oldest row still pending, watermark −
//! overlap)`: a hold or a check that settles weeks after its transaction
//! date is fetched again until it posts. Accounts whose starts lie within
//! [`GROUP_SLACK_DAYS`] of each other share one walk; the group with the
//! latest start is walked without an account filter, so a newly linked
//! account shows up, and an account first seen there gets its whole history
//! in a walk of its own. Sources without an account filter (Firefly) are
//! walked once from the earliest start. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};

/// Accounts whose window starts lie within this many days of a group's
/// earliest start share one walk (re-reading at most this many days more
/// for some of them, instead of one request chain per account).
pub const GROUP_SLACK_DAYS: u64 = 7;

/// One walk of a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedWalk {
    /// First transaction date (`None`: the whole history).
    pub from: Option<NaiveDate>,
    /// Only these accounts (Truv `account_ids`); `None`: every account of
    /// the source (or those the config lists).
    pub accounts: Option<Vec<String>>,
}

impl PlannedWalk {
    /// The whole history of every account.
    pub fn full() -> PlannedWalk {
        PlannedWalk { from: None, accounts: None }
    }
}

/// What the store knows of a source before a sync.
#[derive(Clone, Debug, Default)]
pub struct SourceState {
    /// Watermark per account: the latest booking date fetched.
    pub watermarks: BTreeMap<String, NaiveDate>,
    /// Oldest row still pending per account (within the lookback).
    pub oldest_pending: BTreeMap<String, NaiveDate>,
}

impl SourceState {
    /// Accounts the store knows for this source.
    pub fn known(&self) -> BTreeSet<String> {
        self.watermarks.keys().chain(self.oldest_pending.keys()).cloned().collect()
    }
}

/// Where each known account's window starts: `min(watermark − overlap,
/// oldest pending)`, never after `today`.
pub fn account_starts(state: &SourceState, overlap_days: u32, today: NaiveDate) -> BTreeMap<String, NaiveDate> {
    let mut starts = BTreeMap::new();
    for (account, mark) in &state.watermarks {
        let from = mark.checked_sub_days(Days::new(u64::from(overlap_days))).unwrap_or(NaiveDate::MIN);
        starts.insert(account.clone(), from.min(today));
    }
    for (account, pending) in &state.oldest_pending {
        let e = starts.entry(account.clone()).or_insert(*pending);
        *e = (*e).min(*pending).min(today);
    }
    starts
}

/// The walks of one sync of a source. `per_account`: the source can filter
/// by account (Truv); `full`: walk the whole history now (`sync --full`, a
/// due sweep, or nothing known yet).
pub fn plan_walks(
    state: &SourceState,
    overlap_days: u32,
    today: NaiveDate,
    per_account: bool,
    full: bool,
) -> Vec<PlannedWalk> {
    let starts = account_starts(state, overlap_days, today);
    if full || starts.is_empty() {
        return vec![PlannedWalk::full()];
    }
    if !per_account {
        return vec![PlannedWalk { from: starts.values().min().copied(), accounts: None }];
    }
    let mut sorted: Vec<(NaiveDate, &String)> = starts.iter().map(|(a, d)| (*d, a)).collect();
    sorted.sort();
    let mut groups: Vec<(NaiveDate, Vec<String>)> = Vec::new();
    for (start, account) in sorted {
        match groups.last_mut() {
            Some((first, members))
                if start <= first.checked_add_days(Days::new(GROUP_SLACK_DAYS)).unwrap_or(*first) =>
            {
                members.push(account.clone())
            }
            _ => groups.push((start, vec![account.clone()])),
        }
    }
    let last = groups.len() - 1;
    groups
        .into_iter()
        .enumerate()
        .map(|(i, (from, accounts))| PlannedWalk { from: Some(from), accounts: (i != last).then_some(accounts) })
        .collect()
}

/// The walk that gives accounts first seen in this sync their whole
/// history, if any is new: filtered to them where the source can filter,
/// else the whole source.
pub fn catch_up(known: &BTreeSet<String>, seen: &BTreeSet<String>, per_account: bool) -> Option<PlannedWalk> {
    let new: Vec<String> = seen.difference(known).cloned().collect();
    if new.is_empty() {
        return None;
    }
    Some(PlannedWalk { from: None, accounts: per_account.then_some(new) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn state(marks: &[(&str, &str)], pending: &[(&str, &str)]) -> SourceState {
        SourceState {
            watermarks: marks.iter().map(|(a, x)| (a.to_string(), d(x))).collect(),
            oldest_pending: pending.iter().map(|(a, x)| (a.to_string(), d(x))).collect(),
        }
    }

    #[test]
    fn nothing_known_walks_the_whole_history() {
        assert_eq!(plan_walks(&state(&[], &[]), 14, d("2024-03-31"), true, false), [PlannedWalk::full()]);
        let s = state(&[("a", "2024-03-30")], &[]);
        assert_eq!(plan_walks(&s, 14, d("2024-03-31"), true, true), [PlannedWalk::full()], "--full");
    }

    #[test]
    fn a_late_settlement_widens_only_its_accounts_window() {
        // "hotel" holds a hold transacted 29 days before the newest posting.
        let s = state(
            &[("chk", "2024-03-30"), ("card", "2024-03-29"), ("hotel", "2024-03-30")],
            &[("hotel", "2024-03-01")],
        );
        let walks = plan_walks(&s, 14, d("2024-03-31"), true, false);
        assert_eq!(
            walks,
            [
                PlannedWalk { from: Some(d("2024-03-01")), accounts: Some(vec!["hotel".into()]) },
                PlannedWalk { from: Some(d("2024-03-15")), accounts: None },
            ],
            "the hold's account from the hold's date; the rest, unfiltered, from watermark − 14"
        );
        // Without an account filter (Firefly): one walk from the earliest start.
        assert_eq!(
            plan_walks(&s, 14, d("2024-03-31"), false, false),
            [PlannedWalk { from: Some(d("2024-03-01")), accounts: None }]
        );
        // A hold a few days older than the others' starts shares their walk.
        let s = state(&[("chk", "2024-03-30"), ("hotel", "2024-03-30")], &[("hotel", "2024-03-12")]);
        assert_eq!(
            plan_walks(&s, 14, d("2024-03-31"), true, false),
            [PlannedWalk { from: Some(d("2024-03-12")), accounts: None }]
        );
    }

    #[test]
    fn starts_within_the_slack_share_one_walk() {
        let s = state(&[("a", "2024-03-30"), ("b", "2024-03-25"), ("c", "2024-01-10")], &[]);
        let walks = plan_walks(&s, 14, d("2024-03-31"), true, false);
        assert_eq!(
            walks,
            [
                PlannedWalk { from: Some(d("2023-12-27")), accounts: Some(vec!["c".into()]) },
                PlannedWalk { from: Some(d("2024-03-11")), accounts: None },
            ],
            "a lagging account catches up on its own; a and b (5 days apart) share one walk"
        );
    }

    #[test]
    fn a_pending_row_in_the_future_never_starts_after_today() {
        let s = state(&[], &[("a", "2024-04-05")]);
        assert_eq!(account_starts(&s, 14, d("2024-03-31"))["a"], d("2024-03-31"));
    }

    #[test]
    fn new_accounts_catch_up_on_their_whole_history() {
        let known: BTreeSet<String> = ["a".to_owned()].into();
        let seen: BTreeSet<String> = ["a".to_owned(), "new".to_owned()].into();
        assert_eq!(catch_up(&known, &seen, true), Some(PlannedWalk { from: None, accounts: Some(vec!["new".into()]) }));
        assert_eq!(catch_up(&known, &seen, false), Some(PlannedWalk::full()));
        assert_eq!(catch_up(&seen, &known, true), None);
    }
}
