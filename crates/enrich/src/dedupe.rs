//! Dedupe across runs and sources (DESIGN §4, rules 2–4), pure.
//!
//! - **Pending → posted**: a posted row supersedes a pending row of the same
//!   source account and currency when their normalized merchant (else
//!   description) is equal, the posted row books 0–`pending_days` days
//!   later, and the amounts are equal — or, for tip-prone MCCs (restaurants,
//!   bars, fuel), within `tip_tolerance_percent`. A pairing needs evidence
//!   that the two rows are one movement (DESIGN §4.6): a posted row that was
//!   itself seen pending under its own id is its own settlement and
//!   supersedes nothing, and a posted row supersedes at most one pending
//!   row, ever (the store persists who already supersedes).
//! - **Cross-source**: for account pairs the config links (the same real
//!   account seen through Truv and Firefly), posted rows with the same
//!   amount and currency, booking dates within ±`cross_source_days` and
//!   similar descriptions are the same movement: the row with more data (an
//!   MCC) is kept, the other marked `duplicate_of`. Identical rows pair one by
//!   one, by count.
//! - **Twins are never merged**: rows of the same source account are never
//!   paired with each other except pending ↔ posted; identity beats
//!   similarity.
//!
//! Both matchers group rows by key and scan sorted dates: O(n log n).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;

pub use bankpipe_model::dedupe::{Candidate, DedupeLink, LinkKind};

/// Matching settings (config `[dedupe]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupeConfig {
    /// Days after the pending row within which its posted row may book. Default 7.
    pub pending_days: i64,
    /// Allowed difference for tip-prone MCCs, in percent of the pending amount. Default 20.
    pub tip_tolerance_percent: i64,
    /// MCCs whose final amount may differ from the authorization (restaurants
    /// 5812, bars 5813, fast food 5814, fuel 5541/5542).
    pub tip_prone_mccs: Vec<u16>,
    /// Days apart two sources may book the same movement. Default 2.
    pub cross_source_days: i64,
}

impl Default for DedupeConfig {
    fn default() -> Self {
        DedupeConfig {
            pending_days: 7,
            tip_tolerance_percent: 20,
            tip_prone_mccs: vec![5812, 5813, 5814, 5541, 5542],
            cross_source_days: 2,
        }
    }
}

/// Upper-case alphanumeric words of a merchant name (else description),
/// dropping store numbers and other all-digit words and `#` suffixes:
/// `"BLUE BOTTLE #12"` and `"Blue Bottle"` both become `"BLUE BOTTLE"`.
pub fn normalized_merchant(c: &Candidate) -> String {
    let text = c.merchant_name.as_deref().filter(|m| !m.trim().is_empty()).unwrap_or(&c.description);
    words(text).join(" ")
}

fn words(text: &str) -> Vec<String> {
    text.split(|ch: char| !ch.is_alphanumeric())
        .filter(|w| !w.is_empty() && !w.chars().all(|ch| ch.is_ascii_digit()))
        .map(|w| w.to_uppercase())
        .collect()
}

fn days(a: NaiveDate, b: NaiveDate) -> i64 {
    (b - a).num_days()
}

/// Pending rows superseded by their posted rows.
pub fn supersede_pending(candidates: &[Candidate], cfg: &DedupeConfig) -> Vec<DedupeLink> {
    type Key<'a> = (&'a str, &'a str, &'a str, String);
    let mut posted: HashMap<Key<'_>, Vec<&Candidate>> = HashMap::new();
    let mut pending: Vec<&Candidate> = Vec::new();
    for c in candidates.iter().filter(|c| !c.memo_only) {
        if c.posted {
            if c.seen_pending || c.supersedes {
                continue; // its own settlement, or already paired once
            }
            let key = (c.source.as_str(), c.source_account_id.as_str(), c.currency.as_str(), normalized_merchant(c));
            posted.entry(key).or_default().push(c);
        } else {
            pending.push(c);
        }
    }
    for list in posted.values_mut() {
        list.sort_by(|a, b| (a.booking_date, &a.id).cmp(&(b.booking_date, &b.id)));
    }
    pending.sort_by(|a, b| (a.booking_date, &a.id).cmp(&(b.booking_date, &b.id)));
    let mut used: HashSet<&str> = HashSet::new();
    let mut links = Vec::new();
    for p in pending {
        let key = (p.source.as_str(), p.source_account_id.as_str(), p.currency.as_str(), normalized_merchant(p));
        let Some(list) = posted.get(&key) else { continue };
        let tip_prone = p.mcc.is_some_and(|m| cfg.tip_prone_mccs.contains(&m));
        let start = list.partition_point(|q| q.booking_date < p.booking_date);
        let best = list[start..]
            .iter()
            .take_while(|q| days(p.booking_date, q.booking_date) <= cfg.pending_days)
            .filter(|q| q.id != p.id && !used.contains(q.id.as_str()))
            .filter(|q| (q.amount_minor < 0) == (p.amount_minor < 0))
            .filter(|q| {
                let diff = (q.amount_minor - p.amount_minor).abs();
                diff == 0 || (tip_prone && diff * 100 <= p.amount_minor.abs() * cfg.tip_tolerance_percent)
            })
            .min_by_key(|q| (days(p.booking_date, q.booking_date), (q.amount_minor - p.amount_minor).abs()));
        if let Some(q) = best {
            used.insert(q.id.as_str());
            links.push(DedupeLink {
                transaction_id: p.id.clone(),
                kind: LinkKind::Superseded,
                target_id: q.id.clone(),
                reason: format!(
                    "pending {} {} on {} ({:?}) posted as {} {} on {} ({} day(s) later{})",
                    p.amount_minor,
                    p.currency,
                    p.booking_date,
                    normalized_merchant(p),
                    q.amount_minor,
                    q.currency,
                    q.booking_date,
                    days(p.booking_date, q.booking_date),
                    if q.amount_minor != p.amount_minor {
                        format!(
                            ", amount within {}% for tip-prone MCC {:04}",
                            cfg.tip_tolerance_percent,
                            p.mcc.unwrap_or(0)
                        )
                    } else {
                        String::new()
                    }
                ),
            });
        }
    }
    links
}

/// `(source, account id)` of one side of an account link.
pub type AccountRef = (String, String);

/// Similar descriptions: equal normalized merchants, one containing the
/// other, or at least half of the words shared.
fn similar(a: &Candidate, b: &Candidate) -> bool {
    let (na, nb) = (normalized_merchant(a), normalized_merchant(b));
    if na == nb || (!na.is_empty() && !nb.is_empty() && (na.contains(&nb) || nb.contains(&na))) {
        return true;
    }
    let wa: HashSet<String> = words(&a.description).into_iter().chain(words(&na)).collect();
    let wb: HashSet<String> = words(&b.description).into_iter().chain(words(&nb)).collect();
    let shared = wa.intersection(&wb).count();
    shared * 2 >= wa.len().min(wb.len()).max(1)
}

/// Cross-source duplicates between linked accounts.
pub fn cross_source(
    candidates: &[Candidate],
    links: &[(AccountRef, AccountRef)],
    cfg: &DedupeConfig,
) -> Vec<DedupeLink> {
    let mut by_account: HashMap<(&str, &str), Vec<&Candidate>> = HashMap::new();
    for c in candidates.iter().filter(|c| c.posted && !c.memo_only) {
        by_account.entry((c.source.as_str(), c.source_account_id.as_str())).or_default().push(c);
    }
    let mut out = Vec::new();
    let mut used: HashSet<&str> = HashSet::new();
    for ((sa, aa), (sb, ab)) in links {
        let (Some(left), Some(right)) =
            (by_account.get(&(sa.as_str(), aa.as_str())), by_account.get(&(sb.as_str(), ab.as_str())))
        else {
            continue;
        };
        // Right side indexed by (currency, amount), dates sorted.
        let mut index: BTreeMap<(&str, i64), Vec<&Candidate>> = BTreeMap::new();
        for c in right {
            index.entry((c.currency.as_str(), c.amount_minor)).or_default().push(c);
        }
        for list in index.values_mut() {
            list.sort_by(|a, b| (a.booking_date, &a.id).cmp(&(b.booking_date, &b.id)));
        }
        let mut lefts: Vec<&&Candidate> = left.iter().collect();
        lefts.sort_by(|a, b| (a.booking_date, &a.id).cmp(&(b.booking_date, &b.id)));
        for l in lefts {
            if used.contains(l.id.as_str()) {
                continue;
            }
            let Some(list) = index.get(&(l.currency.as_str(), l.amount_minor)) else { continue };
            let best = list
                .iter()
                .filter(|r| !used.contains(r.id.as_str()))
                .filter(|r| days(l.booking_date, r.booking_date).abs() <= cfg.cross_source_days)
                .filter(|r| similar(l, r))
                .min_by_key(|r| days(l.booking_date, r.booking_date).abs());
            let Some(r) = best else { continue };
            used.insert(l.id.as_str());
            used.insert(r.id.as_str());
            // Keep the row with more data (an MCC), else one already kept, else the left side.
            let keep_right = (r.mcc.is_some() && l.mcc.is_none()) || (r.kept_for_duplicate && !l.kept_for_duplicate);
            let (kept, dup) = if keep_right { (*r, *l) } else { (*l, *r) };
            if dup.kept_for_duplicate {
                continue;
            }
            out.push(DedupeLink {
                transaction_id: dup.id.clone(),
                kind: LinkKind::Duplicate,
                target_id: kept.id.clone(),
                reason: format!(
                    "same movement as {}:{} {} {} on {} ({:?}); kept the row {}",
                    kept.source,
                    kept.source_account_id,
                    kept.amount_minor,
                    kept.currency,
                    kept.booking_date,
                    kept.description,
                    if kept.mcc.is_some() && dup.mcc.is_none() { "with an MCC" } else { "of the first linked account" }
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)] // a test row builder: one argument per column
    fn c(
        id: &str,
        source: &str,
        account: &str,
        posted: bool,
        date: &str,
        minor: i64,
        merchant: &str,
        mcc: Option<u16>,
    ) -> Candidate {
        Candidate {
            id: id.into(),
            source: source.into(),
            source_account_id: account.into(),
            posted,
            booking_date: date.parse().unwrap(),
            amount_minor: minor,
            currency: "USD".into(),
            description: merchant.to_uppercase(),
            merchant_name: Some(merchant.into()),
            mcc,
            memo_only: false,
            kept_for_duplicate: false,
            seen_pending: !posted,
            supersedes: false,
        }
    }

    #[test]
    fn a_posted_row_seen_pending_under_its_own_id_supersedes_nothing() {
        // Two daily coffees: c1 was pending and posted under its own id; c2 is
        // still pending. c1 must not swallow c2.
        let mut own = c("c1", "truv", "a", true, "2024-03-02", -450, "Blue Bottle", Some(5814));
        own.seen_pending = true;
        let rows = [own, c("c2", "truv", "a", false, "2024-03-02", -450, "Blue Bottle", Some(5814))];
        assert!(supersede_pending(&rows, &DedupeConfig::default()).is_empty());
    }

    #[test]
    fn a_posted_row_supersedes_at_most_one_pending_row_ever() {
        let mut used = c("q1", "truv", "a", true, "2024-03-02", -450, "Transit", None);
        used.supersedes = true; // decided in an earlier run
        let rows = [used, c("p2", "truv", "a", false, "2024-03-02", -450, "Transit", None)];
        assert!(supersede_pending(&rows, &DedupeConfig::default()).is_empty());
    }

    fn pairs(links: &[DedupeLink]) -> Vec<(&str, &str)> {
        links.iter().map(|l| (l.transaction_id.as_str(), l.target_id.as_str())).collect()
    }

    #[test]
    fn pending_is_superseded_by_its_posted_row_within_the_window() {
        let rows = [
            c("p1", "truv", "a", false, "2024-03-01", -1000, "Corner Shop", Some(5411)),
            c("q1", "truv", "a", true, "2024-03-03", -1000, "CORNER SHOP #12", Some(5411)),
            c("p2", "truv", "a", false, "2024-03-01", -500, "Far Away", None),
            c("q2", "truv", "a", true, "2024-03-09", -500, "Far Away", None),
            c("p3", "truv", "a", false, "2024-03-01", -700, "Other", None),
            c("q3", "truv", "b", true, "2024-03-01", -700, "Other", None),
        ];
        let links = supersede_pending(&rows, &DedupeConfig::default());
        assert_eq!(pairs(&links), [("p1", "q1")], "8 days is too late; another account never matches");
        assert!(links[0].reason.contains("2 day(s) later"), "{}", links[0].reason);
    }

    #[test]
    fn tips_are_tolerated_only_for_tip_prone_mccs() {
        let rows = [
            c("p1", "truv", "a", false, "2024-03-01", -4210, "Trattoria Roma", Some(5812)),
            c("q1", "truv", "a", true, "2024-03-02", -4810, "Trattoria Roma", Some(5812)),
            c("p2", "truv", "a", false, "2024-03-01", -1000, "Bookshop", Some(5942)),
            c("q2", "truv", "a", true, "2024-03-02", -1100, "Bookshop", Some(5942)),
            c("p3", "truv", "a", false, "2024-03-01", -1000, "Shell", Some(5541)),
            c("q3", "truv", "a", true, "2024-03-02", -1300, "Shell", Some(5541)),
        ];
        let links = supersede_pending(&rows, &DedupeConfig::default());
        assert_eq!(pairs(&links), [("p1", "q1")], "14% tip ok at 5812; 10% at a bookshop no; 30% at fuel no");
    }

    #[test]
    fn twins_pair_one_by_one_and_are_never_merged_with_each_other() {
        let rows = [
            c("p1", "truv", "a", false, "2024-03-01", -550, "Blue Bottle", Some(5814)),
            c("p2", "truv", "a", false, "2024-03-01", -550, "Blue Bottle", Some(5814)),
            c("q1", "truv", "a", true, "2024-03-02", -550, "Blue Bottle", Some(5814)),
            c("q2", "truv", "a", true, "2024-03-02", -550, "Blue Bottle", Some(5814)),
            c("q3", "truv", "a", true, "2024-03-02", -550, "Blue Bottle", Some(5814)),
        ];
        let links = supersede_pending(&rows, &DedupeConfig::default());
        assert_eq!(links.len(), 2, "two pendings, two postings used, the third posting stays");
        let targets: HashSet<&str> = links.iter().map(|l| l.target_id.as_str()).collect();
        assert_eq!(targets.len(), 2);
        assert!(links.iter().all(|l| l.transaction_id.starts_with('p') && l.target_id.starts_with('q')));
        assert!(cross_source(&rows, &[], &DedupeConfig::default()).is_empty(), "no link, no cross-source pairing");
    }

    #[test]
    fn linked_accounts_keep_the_row_with_an_mcc() {
        let rows = [
            c("t1", "truv", "chk", true, "2024-03-05", -2345, "Grocer", Some(5411)),
            c("f1", "firefly", "1", true, "2024-03-04", -2345, "Grocer", None),
            c("t2", "truv", "chk", true, "2024-03-05", -999, "Bakery", None),
            c("f2", "firefly", "1", true, "2024-03-09", -999, "Bakery", None),
            c("t3", "truv", "chk", true, "2024-03-06", -100, "Coffee", None),
            c("f3", "firefly", "1", true, "2024-03-06", -100, "Completely different", None),
            c("t4", "truv", "chk", true, "2024-03-07", -700, "Twin Cafe", None),
            c("t5", "truv", "chk", true, "2024-03-07", -700, "Twin Cafe", None),
            c("f4", "firefly", "1", true, "2024-03-07", -700, "Twin Cafe", None),
        ];
        let link = (("truv".to_owned(), "chk".to_owned()), ("firefly".to_owned(), "1".to_owned()));
        let links = cross_source(&rows, &[link], &DedupeConfig::default());
        let mut got = pairs(&links);
        got.sort();
        assert_eq!(
            got,
            [("f1", "t1"), ("f4", "t4")],
            "dates 4 days apart and dissimilar descriptions do not pair; one twin pairs, one stays"
        );
    }
}
