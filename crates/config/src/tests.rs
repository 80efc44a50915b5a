use std::path::Path;

use super::*;

#[test]
fn the_design_example_loads() {
    let text = include_str!("../../../config/bankpipe.example.toml");
    let c = Config::parse(text, Path::new("bankpipe.example.toml")).unwrap();
    assert_eq!(c.store.database_url, "sqlite://bankpipe.db");
    assert_eq!(c.sync.overlap_days, 14);
    assert_eq!(c.sources.len(), 2);
    assert_eq!(c.sinks.len(), 2);
    assert!(!c.rules.is_empty());
}

#[test]
fn empty_file_gets_defaults() {
    let c = Config::parse("", Path::new("x.toml")).unwrap();
    assert_eq!((c.sync.timezone.as_str(), c.sync.overlap_days), ("UTC", 14));
}

#[test]
fn errors_name_the_file_and_key() {
    let e = Config::parse("[sync]\noverlap_dayz = 3\n", Path::new("conf/b.toml")).unwrap_err().to_string();
    assert!(e.contains("conf/b.toml") && e.contains("overlap_dayz"), "{e}");
    let e = Config::parse("[sync]\ntimezone = \"Mars/Olympus\"\n", Path::new("b.toml")).unwrap_err().to_string();
    assert!(e.contains("sync.timezone") && e.contains("Mars/Olympus"), "{e}");
    let e = Config::parse("[[rules]]\nmatch_merchant = \"x\"\n", Path::new("b.toml")).unwrap_err().to_string();
    assert!(e.contains("category"), "{e}");
    let one = "name=\"a\"\nkind=\"firefly\"\nbase_url=\"https://ff.example\"\ntoken_env=\"T\"\n";
    let dup = format!("[[sources]]\n{one}[[sources]]\n{one}");
    let e = Config::parse(&dup, Path::new("b.toml")).unwrap_err().to_string();
    assert!(e.contains("sources[1].name"), "{e}");
}

#[test]
fn each_kind_needs_its_keys() {
    let e = Config::parse("[[sources]]\nname=\"t\"\nkind=\"truv\"\nbase_url=\"https://prod.truv.com\"\nlink_id=\"x\"\nclient_id_env=\"A\"\n", Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.toml") && e.contains("sources[0].secret_env") && e.contains("Truv"), "{e}");
    let e = Config::parse(
        "[[sources]]\nname=\"f\"\nkind=\"firefly\"\nbase_url=\"firefly.example.com\"\ntoken_env=\"T\"\n",
        Path::new("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sources[0].base_url") && e.contains("https://"), "{e}");
    let e = Config::parse(
        "[[sinks]]\nname=\"m\"\nkind=\"mibudge\"\nbase_url=\"https://m.example\"\nlogin_env=\"L\"\n",
        Path::new("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sinks[0].password_env"), "{e}");
}

#[test]
fn trupocket_refuses_deliver_pending_and_says_why() {
    let tp = "[[sinks]]\nname=\"tp\"\nkind=\"trupocket\"\nbase_url=\"https://api.trupocket.app/v1\"\ntoken_env=\"P\"\nhousehold_id=\"h\"\n";
    assert!(Config::parse(tp, Path::new("d.toml")).is_ok());
    let e = Config::parse(&format!("{tp}deliver_pending = true\n"), Path::new("d.toml")).unwrap_err().to_string();
    assert!(e.contains("d.toml") && e.contains("sinks[0].deliver_pending") && e.contains("no update or delete"), "{e}");
    let mb = "[[sinks]]\nname=\"m\"\nkind=\"mibudge\"\nbase_url=\"https://m.example\"\nlogin_env=\"L\"\npassword_env=\"P\"\ndeliver_pending = true\n";
    assert!(Config::parse(mb, Path::new("d.toml")).is_ok(), "mibudge can delete, so it can correct");
}

#[test]
fn account_links_name_known_sources() {
    let src = "[[sources]]\nname=\"f\"\nkind=\"firefly\"\nbase_url=\"https://ff.example\"\ntoken_env=\"T\"\n";
    let ok = format!("{src}[[account_links]]\naccounts = [\"f:1\", \"f:2\"]\n");
    let c = Config::parse(&ok, Path::new("c.toml")).unwrap();
    assert_eq!(c.account_links[0].sides().unwrap().1, ("f".to_owned(), "2".to_owned()));
    let bad = format!("{src}[[account_links]]\naccounts = [\"f:1\", \"truv:2\"]\n");
    let e = Config::parse(&bad, Path::new("c.toml")).unwrap_err().to_string();
    assert!(e.contains("account_links[0].accounts") && e.contains("\"truv\""), "{e}");
    let bad = format!("{src}[[account_links]]\naccounts = [\"f:1\"]\n");
    assert!(Config::parse(&bad, Path::new("c.toml")).is_err());
}

#[test]
fn a_database_url_of_another_kind_is_a_config_error_naming_file_and_key() {
    for url in ["mysql://u:hunter2@h/db", ""] {
        let e = Config::parse(&format!("[store]\ndatabase_url = \"{url}\"\n"), Path::new("e.toml")).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ConfigError::Invalid { .. }), "{text}");
        assert!(text.contains("e.toml") && text.contains("store.database_url") && !text.contains("hunter2"), "{text}");
    }
    let c = Config::parse("[store]\ndatabase_url_env = \"BP_TEST_DB_URL_UNSET\"\n", Path::new("e.toml")).unwrap();
    let e = c.store.url().unwrap_err();
    assert!(e.contains("BP_TEST_DB_URL_UNSET") && e.contains("store.database_url_env"), "{e}");
    std::env::set_var("BP_TEST_DB_URL_SET", "postgres://bp@db/bank");
    let c = Config::parse("[store]\ndatabase_url_env = \"BP_TEST_DB_URL_SET\"\n", Path::new("e.toml")).unwrap();
    assert_eq!(c.store.url().unwrap(), "postgres://bp@db/bank");
}

/// Every key of every configuration table appears in
/// `config/bankpipe.example.toml` (as `key = …`, commented or not, or as a
/// `[table]` header): adding a key without documenting it there fails here.
#[test]
fn the_example_config_shows_every_key() {
    use serde_reflection::{ContainerFormat, Tracer, TracerConfig};
    let example = include_str!("../../../config/bankpipe.example.toml");
    let mut tracer = Tracer::new(TracerConfig::default());
    tracer.trace_simple_type::<SourceKindConfig>().expect("traced");
    tracer.trace_simple_type::<SinkKindConfig>().expect("traced");
    tracer.trace_simple_type::<Config>().expect("the config types can be traced");
    let registry = tracer.registry().expect("complete");
    let mut missing = Vec::new();
    for (container, format) in &registry {
        let ContainerFormat::Struct(fields) = format else { continue };
        for field in fields {
            let name = &field.name;
            let shown = [format!("{name} ="), format!("[{name}]"), format!("[[{name}]]"), format!(".{name}]")]
                .iter()
                .any(|needle| example.contains(needle.as_str()));
            if !shown {
                missing.push(format!("{container}.{name}"));
            }
        }
    }
    assert!(missing.is_empty(), "keys missing from config/bankpipe.example.toml: {missing:?}");
}
