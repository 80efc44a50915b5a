//! Bad input never blocks good input (issue 10): over-range amounts and
//! balances, group-level errors, blank ids, page-level oddities (blank
//! `next`, trailing data, byte-order marks) and withdrawn currencies.

use bankpipe_model::{QuarantineRecord, Transaction};
use bankpipe_sources::page::NormalizedPage;
use bankpipe_sources::{firefly, recorded, truv, NormalizeContext, SourceKind};
use serde_json::{json, Value};

fn truv_txn(id: &str, amount: &str, currency: &str) -> Value {
    json!({
        "id": id, "account_id": "acc-1", "amount": amount, "currency_code": currency,
        "type": "DEBIT", "status": "POSTED", "posted_at": "2024-03-01T10:00:00Z",
        "updated_at": "2024-03-01T10:00:00Z", "description": "Coffee"
    })
}

fn truv_page(transactions: Vec<Value>) -> Value {
    json!({ "count": transactions.len(), "next": null, "previous": null, "transactions": transactions })
}

fn truv(page: &Value) -> (NormalizedPage, truv::TruvCursor) {
    truv::normalize_page(&NormalizeContext::new("truv"), "page-001.json", page.to_string().as_bytes()).unwrap()
}

fn ids(txs: &[Transaction]) -> Vec<&str> {
    txs.iter().map(|t| t.source_transaction_id.as_str()).collect()
}

fn only(q: &[QuarantineRecord]) -> &QuarantineRecord {
    assert_eq!(q.len(), 1, "{q:#?}");
    &q[0]
}

#[test]
fn truv_amount_out_of_range_is_quarantined_and_the_page_proceeds() {
    for typed in [true, false] {
        let mut records = vec![
            truv_txn("ok-1", "-4.75", "USD"),
            truv_txn("huge", "-100000000000000000.00", "USD"),
            truv_txn("ok-2", "10000000000.00", "USD"),
            truv_txn("huge-yen", "1000000000001", "JPY"),
            truv_txn("beyond-decimal", &format!("-{}.00", "9".repeat(40)), "USD"),
        ];
        if !typed {
            // A mistyped record elsewhere sends the page down the slow path.
            records.push(json!({"id": "bad-type", "amount": {"x": 1}}));
        }
        let (page, _) = truv(&truv_page(records));
        assert_eq!(ids(&page.transactions), ["ok-1", "ok-2"]);
        let out: Vec<_> = page.quarantine.iter().filter(|q| q.field == "amount").collect();
        assert_eq!(out.len(), 3, "{out:#?}");
        assert_eq!(page.quarantine.len(), 3 + usize::from(!typed));
        for (q, (id, value)) in out.iter().zip([
            ("huge", "-100000000000000000.00"),
            ("huge-yen", "1000000000001"),
            ("beyond-decimal", &format!("-{}.00", "9".repeat(40))[..]),
        ]) {
            assert_eq!(q.record_id.as_deref(), Some(id));
            assert_eq!(q.value, value);
            assert!(q.reason.starts_with("amount out of range: "), "{}", q.reason);
            assert_eq!(q.file, "page-001.json");
        }
        assert!(out[0].reason.contains("10000000000.00 USD"), "{}", out[0].reason);
        assert!(out[1].reason.contains("1000000000000 JPY"), "{}", out[1].reason);
        // Every accepted amount fits the store's integer minor units.
        assert!(page.transactions.iter().all(|t| t.amount.to_minor_units().is_ok()));
    }
}

#[test]
fn truv_balance_out_of_range_is_dropped_with_a_warning_and_the_account_kept() {
    let mut page = truv_page(vec![truv_txn("t1", "1.00", "USD")]);
    page["accounts"] = json!([
        {"id": "acc-1", "balances": {"currency_code": "USD", "balance": "-100000000000000000.00",
            "available_balance": "12.00", "credit_limit": "99999999999999999999"}},
        {"id": "acc-2", "balances": {"currency_code": "USD", "balance": "1,000.00"}}
    ]);
    let (out, _) = truv(&page);
    assert_eq!(out.accounts.len(), 1);
    let a = &out.accounts[0];
    assert_eq!(a.source_account_id, "acc-1");
    assert_eq!(a.balance, None);
    assert_eq!(a.credit_limit, None);
    assert_eq!(a.available_balance.unwrap().to_string(), "12.00");
    assert_eq!(out.warnings.len(), 2, "{:#?}", out.warnings);
    let w = &out.warnings[0];
    for part in
        ["page-001.json", "/accounts/0", "acc-1", "balances.balance", "-100000000000000000.00", "amount out of range"]
    {
        assert!(w.contains(part), "{part} in {w}");
    }
    assert!(out.warnings[1].contains("balances.credit_limit"), "{}", out.warnings[1]);
    // A malformed (not out-of-range) balance still rejects its account.
    let q = only(&out.quarantine);
    assert_eq!((q.record_id.as_deref(), q.field.as_str()), (Some("acc-2"), "balances.balance"));
}

#[test]
fn truv_blank_next_is_the_last_page_not_a_loop() {
    let mut page = truv_page(vec![truv_txn("t1", "1.00", "USD")]);
    page["next"] = json!("");
    page["previous"] = json!("  ");
    let (_, cursor) = truv(&page);
    assert_eq!((cursor.next, cursor.previous), (None, None));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("page-001.json"), page.to_string()).unwrap();
    let stats = recorded::walk_dir(SourceKind::Truv, &NormalizeContext::new("truv"), dir.path(), |_, _| {
        Ok::<(), bankpipe_sources::PageError>(())
    })
    .unwrap();
    assert_eq!((stats.pages, stats.records_read), (1, 1));
}

#[test]
fn trailing_data_after_the_document_names_its_byte() {
    let ctx = NormalizeContext::new("truv");
    let body = format!("{}\n{{\"more\": 1}}", truv_page(vec![truv_txn("t1", "1.00", "USD")]));
    let at = body.find("\n{").unwrap() + 1;
    let e = truv::normalize_page(&ctx, "page-007.json", body.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("page-007.json"), "{e}");
    assert!(e.contains(&format!("trailing data after the JSON document at byte {at}")), "{e}");
    let ff = format!("{}garbage", firefly_page(vec![]));
    let e = firefly::normalize_page(&NormalizeContext::new("firefly"), "ff.json", ff.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("trailing data after the JSON document at byte"), "{e}");
}

#[test]
fn a_utf8_byte_order_mark_is_stripped_and_named() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(truv_page(vec![truv_txn("t1", "1.00", "USD")]).to_string().as_bytes());
    let (page, _) = truv::normalize_page(&NormalizeContext::new("truv"), "bom.json", &bytes).unwrap();
    assert_eq!(ids(&page.transactions), ["t1"]);
    assert!(page.warnings.iter().any(|w| w.contains("bom.json") && w.contains("starts with a UTF-8 byte-order mark")));

    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(
        firefly_page(vec![group("1", "2024-03-06T10:00:00+01:00", vec![split("11", "1.00")])]).to_string().as_bytes(),
    );
    let (page, _) = firefly::normalize_page(&NormalizeContext::new("firefly"), "bom.json", &bytes).unwrap();
    assert_eq!(ids(&page.transactions), ["11"]);
    assert!(page.warnings.iter().any(|w| w.contains("starts with a UTF-8 byte-order mark")));
}

#[test]
fn withdrawn_currencies_from_old_data_are_read() {
    let (page, _) = truv(&truv_page(vec![truv_txn("kuna", "12.50", "HRK"), truv_txn("cuc", "3", "CUC")]));
    assert!(page.quarantine.is_empty(), "{:#?}", page.quarantine);
    let amounts: Vec<String> = page.transactions.iter().map(|t| format!("{:?}", t.amount)).collect();
    assert_eq!(amounts, ["-12.50 HRK", "-3.00 CUC"]);
}

fn split(journal: &str, amount: &str) -> Value {
    json!({
        "transaction_journal_id": journal, "type": "withdrawal", "date": "2024-03-05T00:00:00+01:00",
        "amount": amount, "currency_code": "USD", "currency_decimal_places": 2,
        "source_id": "1", "source_name": "Checking", "source_type": "Asset account",
        "destination_id": "10", "destination_name": "Grocer", "destination_type": "Expense account",
        "description": "Groceries"
    })
}

fn group(id: &str, updated_at: &str, splits: Vec<Value>) -> Value {
    json!({"type": "transactions", "id": id, "attributes": {"updated_at": updated_at, "transactions": splits}})
}

fn firefly_page(groups: Vec<Value>) -> Value {
    json!({
        "data": groups,
        "meta": {"pagination": {"total": 0, "count": 0, "per_page": 50, "current_page": 1, "total_pages": 1}},
        "links": {}
    })
}

fn firefly(page: &Value) -> NormalizedPage {
    firefly::normalize_page(&NormalizeContext::new("firefly"), "ff-001.json", page.to_string().as_bytes()).unwrap().0
}

#[test]
fn firefly_group_level_errors_quarantine_every_split_by_journal_id() {
    let good = group("1", "2024-03-06T10:00:00+01:00", vec![split("11", "1.00")]);
    let bad_stamp = group("2", "last tuesday", vec![split("21", "1.00"), split("22", "2.00"), split("", "3.00")]);
    let mut no_id = group("", "2024-03-06T10:00:00+01:00", vec![split("31", "1.00")]);
    no_id["id"] = json!("  ");
    let mut mistyped = group("4", "2024-03-06T10:00:00+01:00", vec![split("41", "1.00"), split("42", "1.00")]);
    mistyped["attributes"]["updated_at"] = json!(20240306);
    let no_attributes = json!({"type": "transactions", "id": "5"});
    let page = firefly(&firefly_page(vec![good, bad_stamp, no_id, mistyped, no_attributes]));
    assert_eq!(ids(&page.transactions), ["11"]);
    let got: Vec<(&str, &str, Option<&str>)> =
        page.quarantine.iter().map(|q| (q.pointer.as_str(), q.field.as_str(), q.record_id.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("/data/1", "attributes.updated_at", Some("2/21")),
            ("/data/1", "attributes.updated_at", Some("2/22")),
            ("/data/1", "attributes.updated_at", Some("2/#2")),
            ("/data/2", "id", Some("31")),
            ("/data/3", "attributes.updated_at", Some("4/41")),
            ("/data/3", "attributes.updated_at", Some("4/42")),
            ("/data/4", "", Some("5")),
        ]
    );
    let q = &page.quarantine[0];
    assert_eq!(q.value, "last tuesday");
    assert!(q.reason.contains("not an ISO 8601 timestamp"), "{}", q.reason);
    assert!(q.reason.contains("/data/1/attributes/transactions/0") && q.reason.contains("\"21\""), "{}", q.reason);
    // Every split is counted, once.
    assert_eq!(page.records_read, 1 + 3 + 1 + 2 + 1);
}

#[test]
fn firefly_blank_journal_ids_are_rejected() {
    let page = firefly(&firefly_page(vec![group(
        "1",
        "2024-03-06T10:00:00+01:00",
        vec![split("", "1.00"), split("   ", "2.00"), split("13", "3.00")],
    )]));
    assert_eq!(ids(&page.transactions), ["13"]);
    assert_eq!(page.quarantine.len(), 2);
    for (q, value) in page.quarantine.iter().zip(["", "   "]) {
        assert_eq!((q.field.as_str(), q.value.as_str()), ("transaction_journal_id", value));
        assert!(q.reason.contains("blank"), "{}", q.reason);
    }
    assert_eq!(page.quarantine[0].record_id.as_deref(), Some("1/#0"));
    assert_eq!(page.quarantine[1].record_id.as_deref(), Some("1/#1"));
}

#[test]
fn firefly_amounts_and_foreign_amounts_out_of_range_are_quarantined() {
    let mut foreign = split("13", "1.00");
    foreign["foreign_amount"] = json!("100000000000000000.000000000000");
    foreign["foreign_currency_code"] = json!("EUR");
    let mut foreign_ok = split("14", "1.00");
    foreign_ok["foreign_amount"] = json!("16.900000000000");
    foreign_ok["foreign_currency_code"] = json!("EUR");
    let mut foreign_garbage = split("15", "1.00");
    foreign_garbage["foreign_amount"] = json!("lots");
    let page = firefly(&firefly_page(vec![group(
        "1",
        "2024-03-06T10:00:00+01:00",
        vec![
            split("11", "100000000000000000.000000000000"),
            split("12", &format!("{}.00", "9".repeat(40))),
            foreign,
            foreign_ok,
            foreign_garbage,
            split("16", "10000000000.000000000000"),
        ],
    )]));
    assert_eq!(ids(&page.transactions), ["14", "16"]);
    let got: Vec<(&str, Option<&str>)> =
        page.quarantine.iter().map(|q| (q.field.as_str(), q.record_id.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("amount", Some("1/11")),
            ("amount", Some("1/12")),
            ("foreign_amount", Some("1/13")),
            ("foreign_amount", Some("1/15"))
        ]
    );
    for q in &page.quarantine[..3] {
        assert!(q.reason.starts_with("amount out of range: "), "{}", q.reason);
    }
    assert!(page.quarantine[2].reason.contains("EUR"), "{}", page.quarantine[2].reason);
    let kept = page.transactions[0].source_fields.as_ref().unwrap();
    assert_eq!(kept.foreign_amount.as_deref(), Some("16.900000000000"));
}
