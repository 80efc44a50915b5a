//! Property: every input record ends up in the output or in quarantine —
//! never lost, never counted twice, never a panic — over random pages mixing
//! valid and malformed records (issue 10). 256 cases per property.

use std::collections::HashMap;

use bankpipe_model::{Currency, Money, MAX_ABS_MINOR_UNITS};
use bankpipe_sources::{firefly, truv, NormalizeContext};
use proptest::prelude::*;
use serde_json::{json, Value};

/// What a generated record is, and so where it must end up.
#[derive(Clone, Debug)]
enum Fault {
    None,
    BadAmount(&'static str),
    OutOfRange,
    BadDate,
    MissingId,
    BlankId,
    WrongType,
    BadCurrency,
    NotAnObject,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        6 => Just(Fault::None),
        1 => prop::sample::select(vec!["abc", "1.23456", "1e3", "", "1,000.00", " 1"]).prop_map(Fault::BadAmount),
        1 => Just(Fault::OutOfRange),
        1 => Just(Fault::BadDate),
        1 => Just(Fault::MissingId),
        1 => Just(Fault::BlankId),
        1 => Just(Fault::WrongType),
        1 => Just(Fault::BadCurrency),
        1 => Just(Fault::NotAnObject),
    ]
}

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(["USD", "JPY", "KWD", "CLF", "HRK", "CUC", "EUR"].to_vec())
        .prop_map(|c| Currency::from_code(c).unwrap())
}

fn in_range_minor() -> impl Strategy<Value = i64> {
    prop_oneof![-MAX_ABS_MINOR_UNITS..=MAX_ABS_MINOR_UNITS, -100_000_i64..100_000]
}

/// One Truv record: (json, id it can be found by, valid?).
fn truv_record(i: usize, fault: &Fault, minor: i64, c: Currency, kind: &str, status: &str) -> (Value, Option<String>) {
    let id = format!("r{i}");
    let amount = Money::from_minor_units(minor, c).to_string();
    let mut r = json!({
        "id": id, "account_id": format!("acc-{}", i % 3), "amount": amount, "currency_code": c.code(),
        "type": kind, "status": status, "transacted_at": "2024-03-01T10:00:00Z",
        "posted_at": "2024-03-01 12:00:00+00:00", "updated_at": "2024-03-02T00:00:00Z",
        "description": format!("record {i}"), "categories": ["Food"], "merchant_category_code": 5411
    });
    let mut findable = Some(id.clone());
    match fault {
        Fault::None => {}
        Fault::BadAmount(text) => r["amount"] = json!(text),
        Fault::OutOfRange => {
            let beyond = Money::from_minor_units(MAX_ABS_MINOR_UNITS, c).amount() + rust_decimal::Decimal::ONE;
            r["amount"] = json!(format!("-{beyond}"));
        }
        Fault::BadDate => r["posted_at"] = json!("yesterday"),
        Fault::MissingId => {
            r.as_object_mut().unwrap().remove("id");
            findable = None;
        }
        Fault::BlankId => {
            r["id"] = json!("  ");
            findable = None;
        }
        Fault::WrongType => r["categories"] = json!("Food"),
        Fault::BadCurrency => r["currency_code"] = json!("XBT"),
        Fault::NotAnObject => {
            r = json!(i);
            findable = None;
        }
    }
    (r, findable)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_truv_record_is_a_transaction_or_quarantined(
        records in prop::collection::vec(
            (fault(), in_range_minor(), currency(),
             prop::sample::select(vec!["DEBIT", "CREDIT", "MEMO"]),
             prop::sample::select(vec!["POSTED", "PENDING", "AUTHORIZATION", "MEMO"])),
            0..24),
    ) {
        let mut body = Vec::new();
        let mut expect = Vec::new();
        for (i, (f, minor, c, kind, status)) in records.iter().enumerate() {
            let (r, id) = truv_record(i, f, *minor, *c, kind, status);
            body.push(r);
            expect.push((f.clone(), id));
        }
        let page = json!({"count": body.len(), "next": null, "previous": null, "transactions": body});
        let (out, _) = truv::normalize_page(&NormalizeContext::new("truv"), "p.json", page.to_string().as_bytes())
            .expect("a page of records is never refused as a whole");
        prop_assert_eq!(out.records_read, expect.len() as u64);
        prop_assert_eq!(out.transactions.len() + out.quarantine.len(), expect.len());
        let by_pointer: HashMap<&str, &bankpipe_model::QuarantineRecord> =
            out.quarantine.iter().map(|q| (q.pointer.as_str(), q)).collect();
        prop_assert_eq!(by_pointer.len(), out.quarantine.len(), "one quarantine record per input record");
        for (i, (f, id)) in expect.iter().enumerate() {
            let pointer = format!("/transactions/{i}");
            let accepted = id.as_deref().is_some_and(|id| out.transactions.iter().any(|t| t.source_transaction_id == id));
            let quarantined = by_pointer.get(pointer.as_str());
            prop_assert!(accepted != quarantined.is_some(), "record {} ({:?}) accepted={} quarantined={:?}", i, f, accepted, quarantined);
            match f {
                Fault::None => prop_assert!(accepted, "valid record {} was not accepted: {:?}", i, quarantined),
                _ => {
                    let q = quarantined.expect("a malformed record is quarantined");
                    prop_assert_eq!(&q.record_id, id, "quarantine carries the record's own id");
                    if matches!(f, Fault::OutOfRange) {
                        prop_assert!(q.reason.starts_with("amount out of range"), "{}", q.reason);
                    }
                }
            }
        }
        for t in &out.transactions {
            prop_assert!(t.amount.is_in_range());
            prop_assert!(t.amount.to_minor_units().is_ok());
        }
    }

    #[test]
    fn every_firefly_split_is_a_leg_or_quarantined(
        groups in prop::collection::vec(
            (prop::sample::select(vec!["ok", "ok", "ok", "bad-stamp", "blank-id", "mistyped-stamp", "no-attributes"]),
             prop::collection::vec(
                 (fault(), 0_i64..MAX_ABS_MINOR_UNITS, prop::sample::select(vec!["withdrawal", "deposit", "transfer"])),
                 0..4)),
            0..10),
    ) {
        let mut data = Vec::new();
        // (group pointer index, group fault, splits: (journal id if readable, fault))
        let mut expect = Vec::new();
        for (g, (group_fault, splits)) in groups.iter().enumerate() {
            let mut raw_splits = Vec::new();
            let mut expected_splits = Vec::new();
            for (j, (f, minor, kind)) in splits.iter().enumerate() {
                let journal = format!("j{g}-{j}");
                let (destination_type, source_type) = match *kind {
                    "deposit" => ("Asset account", "Revenue account"),
                    "transfer" => ("Asset account", "Asset account"),
                    _ => ("Expense account", "Asset account"),
                };
                let mut s = json!({
                    "transaction_journal_id": journal, "type": kind, "date": "2024-03-05T00:00:00+01:00",
                    "amount": format!("{}0000000000", Money::from_minor_units(*minor, Currency::USD)),
                    "currency_code": "USD", "currency_decimal_places": 2,
                    "source_id": "1", "source_name": "Checking", "source_type": source_type,
                    "destination_id": "2", "destination_name": "Other", "destination_type": destination_type,
                    "description": "d", "tags": []
                });
                let mut findable = Some(journal.clone());
                match f {
                    Fault::None => {}
                    Fault::BadAmount(text) => s["amount"] = json!(text),
                    Fault::OutOfRange => s["amount"] = json!("10000000000.01"),
                    Fault::BadDate => s["date"] = json!("2024-13-45"),
                    Fault::MissingId => {
                        s.as_object_mut().unwrap().remove("transaction_journal_id");
                        findable = None;
                    }
                    Fault::BlankId => {
                        s["transaction_journal_id"] = json!(" ");
                        findable = None;
                    }
                    Fault::WrongType => s["tags"] = json!("weekly"),
                    Fault::BadCurrency => s["currency_code"] = json!("XBT"),
                    Fault::NotAnObject => {
                        s = json!(j);
                        findable = None;
                    }
                }
                raw_splits.push(s);
                expected_splits.push((findable, f.clone()));
            }
            let mut group = json!({"type": "transactions", "id": format!("g{g}"),
                "attributes": {"updated_at": "2024-03-06T10:00:00+01:00", "transactions": raw_splits}});
            match *group_fault {
                "bad-stamp" => group["attributes"]["updated_at"] = json!("soon"),
                "blank-id" => group["id"] = json!(""),
                "mistyped-stamp" => group["attributes"]["updated_at"] = json!(17),
                "no-attributes" => { group.as_object_mut().unwrap().remove("attributes"); }
                _ => {}
            }
            data.push(group);
            expect.push((*group_fault, expected_splits));
        }
        let total: usize = expect.iter().map(|(_, s)| s.len()).sum();
        let page = json!({"data": data, "meta": {"pagination": {"total": total, "count": total, "per_page": 50,
            "current_page": 1, "total_pages": 1}}});
        let (out, _) = firefly::normalize_page(&NormalizeContext::new("firefly"), "f.json", page.to_string().as_bytes())
            .expect("a page of groups is never refused as a whole");

        let mut records = 0u64;
        let mut quarantine_expected = 0usize;
        for (g, (group_fault, splits)) in expect.iter().enumerate() {
            let group_id = format!("g{g}");
            if *group_fault == "no-attributes" || (*group_fault != "ok" && splits.is_empty()) {
                // No split can be listed: one record for the group.
                records += 1;
                quarantine_expected += 1;
                let group_pointer = format!("/data/{g}");
                let found = out.quarantine.iter().any(|q| q.pointer == group_pointer);
                prop_assert!(found, "group {} quarantined", g);
                continue;
            }
            for (j, (journal, f)) in splits.iter().enumerate() {
                records += 1;
                let legs: Vec<_> = match journal {
                    Some(jid) => out.transactions.iter().filter(|t| &t.source_transaction_id == jid).collect(),
                    None => Vec::new(),
                };
                let record_id = match (*group_fault, journal) {
                    ("blank-id", Some(jid)) => Some(jid.clone()),
                    ("blank-id", None) => None,
                    (_, Some(jid)) => Some(format!("{group_id}/{jid}")),
                    (_, None) => Some(format!("{group_id}/#{j}")),
                };
                let group_pointer = format!("/data/{g}");
                let quarantined: Vec<_> = out.quarantine.iter()
                    .filter(|q| q.pointer.starts_with(&group_pointer) && q.record_id == record_id)
                    .collect();
                let group_ok = *group_fault == "ok";
                if group_ok && matches!(f, Fault::None) {
                    prop_assert!(!legs.is_empty() && quarantined.is_empty(), "valid split g{} #{} lost: {:?}", g, j, quarantined);
                } else if record_id.is_some() {
                    prop_assert!(legs.is_empty(), "split g{} #{} both accepted and faulty", g, j);
                    prop_assert_eq!(quarantined.len(), 1, "split g{} #{} ({:?}, group {}) quarantined once", g, j, f, group_fault);
                    quarantine_expected += 1;
                } else {
                    prop_assert!(legs.is_empty());
                    quarantine_expected += 1;
                }
            }
        }
        prop_assert_eq!(out.records_read, records);
        prop_assert_eq!(out.quarantine.len(), quarantine_expected);
        for t in &out.transactions {
            prop_assert!(t.amount.is_in_range());
        }
    }

    /// Arbitrary bytes never panic either normalizer.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = truv::normalize_page(&NormalizeContext::new("truv"), "x", &bytes);
        let _ = firefly::normalize_page(&NormalizeContext::new("firefly"), "x", &bytes);
    }
}
