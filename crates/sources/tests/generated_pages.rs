//! The generator's pages (crates/gen) are clean input for the normalizers:
//! deterministic per seed, nothing quarantined, realistic mixes.

use bankpipe_gen::{FireflyGenerator, GenConfig, TruvGenerator};
use bankpipe_sources::{firefly, truv, NormalizeContext};

fn cfg(seed: u64) -> GenConfig {
    GenConfig { accounts: 8, transactions: 3_000, page_size: 250, seed, ..GenConfig::default() }
}

#[test]
fn same_seed_same_pages() {
    let a: Vec<String> = TruvGenerator::new(cfg(7)).collect();
    assert_eq!(a, TruvGenerator::new(cfg(7)).collect::<Vec<_>>());
    assert_ne!(a, TruvGenerator::new(cfg(8)).collect::<Vec<_>>());
    let f: Vec<String> = FireflyGenerator::new(cfg(7)).collect();
    assert_eq!(f, FireflyGenerator::new(cfg(7)).collect::<Vec<_>>());
}

#[test]
fn generated_truv_pages_are_clean_and_realistic() {
    let ctx = NormalizeContext::new("truv");
    let (mut records, mut pending, mut memo, mut currencies) = (0, 0, 0, std::collections::BTreeSet::new());
    let mut chain = truv::TruvChain::new();
    for (i, p) in TruvGenerator::new(cfg(1)).enumerate() {
        let (page, cursor) = truv::normalize_page(&ctx, &format!("p{i}"), p.as_bytes()).unwrap();
        chain.accept(&format!("p{i}"), &cursor).unwrap();
        assert!(page.quarantine.is_empty(), "{:?}", page.quarantine.first());
        records += page.records_read;
        for t in &page.transactions {
            pending += u64::from(t.status == bankpipe_model::Status::Pending);
            memo += u64::from(t.memo_only);
            currencies.insert(t.amount.currency().code().to_owned());
        }
    }
    assert_eq!(chain.finish().unwrap(), 12);
    assert_eq!(records, 3_000);
    assert!(pending > 30 && memo > 5, "pending {pending}, memo {memo}");
    assert!(currencies.len() >= 3, "{currencies:?}");
}

#[test]
fn generated_firefly_pages_are_clean() {
    let ctx = NormalizeContext::new("firefly");
    let mut chain = firefly::FireflyChain::new();
    let mut splits = 0;
    for (i, p) in FireflyGenerator::new(cfg(1)).enumerate() {
        let (page, cursor) = firefly::normalize_page(&ctx, &format!("p{i}"), p.as_bytes()).unwrap();
        chain.accept(&format!("p{i}"), &cursor).unwrap();
        assert!(page.quarantine.is_empty() && page.warnings.is_empty(), "{:?}", page.quarantine.first());
        splits += page.records_read;
    }
    chain.finish().unwrap();
    assert_eq!(splits, 3_000);
}
