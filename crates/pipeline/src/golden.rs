//! Golden checks (DESIGN §8: "compared to golden files; non-zero exit and
//! a readable diff on any change"): an output directory against a golden
//! one, file by file, row by row.
//!
//! Rows are matched by key, not by position, so one inserted row reads as
//! one added row, not as every later row changed:
//!
//! | file | key |
//! |---|---|
//! | `transactions.csv`, `*.jsonl` with an `id` | `id` (the canonical id) |
//! | `accounts.csv` | `source`, `source_account_id` |
//! | `daily_totals.csv` | `source`, `source_account_id`, `date`, `currency` |
//! | `quarantine.jsonl` | `source`, `record_id`, `file`, `pointer` |
//! | other `.csv` / `.jsonl` | the first column / the line number |
//! | `summary.json` | each field (`elapsed_seconds` is ignored: it is the wall time) |
//!
//! A changed row lists its changed columns with `old → new`. Other files
//! are compared byte for byte. The report is plain text, capped at
//! [`MAX_ROWS_SHOWN`] rows per file (the counts are always complete).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};

/// Rows listed per file and kind of change before "… and N more".
pub const MAX_ROWS_SHOWN: usize = 20;

/// Fields never compared: they differ between two runs of the same data.
const VOLATILE: &[&str] = &["elapsed_seconds"];

/// One row: its columns in file order.
type Row = Vec<(String, String)>;

/// One changed column: (column, golden value, output value).
pub type ChangedColumn = (String, String, String);

/// How one file differs from its golden copy.
#[derive(Debug, PartialEq)]
pub enum FileDiff {
    /// In the golden directory, not in the output.
    Missing,
    /// In the output, not in the golden directory.
    Unexpected,
    /// Rows added, removed or changed (keyed).
    Rows {
        /// Columns of the golden file → of the output, when they differ.
        columns: Option<(Vec<String>, Vec<String>)>,
        /// Rows only in the output: (key, row).
        added: Vec<(String, Row)>,
        /// Rows only in the golden file.
        removed: Vec<(String, Row)>,
        /// Rows in both with different values: (key, [(column, old, new)]).
        changed: Vec<(String, Vec<ChangedColumn>)>,
    },
    /// A file compared as bytes: it differs.
    Bytes,
}

/// Every difference between an output and a golden directory.
#[derive(Debug, Default, PartialEq)]
pub struct GoldenReport {
    /// (file name, its difference), in file-name order; identical files absent.
    pub files: Vec<(String, FileDiff)>,
}

impl GoldenReport {
    /// `true` when every file matches.
    pub fn is_clean(&self) -> bool {
        self.files.is_empty()
    }
}

/// Compare every file of `out` with the file of the same name in `golden`.
///
/// # Errors
/// A directory or file that cannot be read (named).
pub fn compare(out: &Path, golden: &Path) -> Result<GoldenReport> {
    let names = |dir: &Path| -> Result<BTreeSet<String>> {
        let mut set = BTreeSet::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only output files: a README or notes beside the goldens are
            // neither compared nor removed by `update`.
            let output = [".csv", ".jsonl", ".json"].iter().any(|x| name.ends_with(x));
            if output && entry.file_type().is_ok_and(|t| t.is_file()) {
                set.insert(name);
            }
        }
        Ok(set)
    };
    let (ours, theirs) = (names(out)?, names(golden)?);
    let mut report = GoldenReport::default();
    for name in ours.union(&theirs) {
        let diff = match (ours.contains(name), theirs.contains(name)) {
            (false, _) => Some(FileDiff::Missing),
            (_, false) => Some(FileDiff::Unexpected),
            _ => compare_file(name, &out.join(name), &golden.join(name))?,
        };
        if let Some(d) = diff {
            report.files.push((name.clone(), d));
        }
    }
    Ok(report)
}

/// Make `golden` a copy of `out` (created if missing; golden output files
/// — `.csv`, `.jsonl`, `.json` — the output no longer has are removed;
/// other files are left alone). Returns the files written.
///
/// # Errors
/// A file that cannot be read, written or removed (named).
pub fn update(out: &Path, golden: &Path) -> Result<usize> {
    std::fs::create_dir_all(golden).with_context(|| format!("creating {}", golden.display()))?;
    let report = compare(out, golden)?;
    for (name, diff) in &report.files {
        let target = golden.join(name);
        if *diff == FileDiff::Missing {
            std::fs::remove_file(&target).with_context(|| format!("removing {}", target.display()))?;
        } else if name.ends_with(".json") {
            // Volatile fields (the wall time) stay out of the golden copy.
            let source = out.join(name);
            let text = std::fs::read_to_string(&source).with_context(|| format!("reading {}", source.display()))?;
            let written = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(mut map)) => {
                    for v in VOLATILE {
                        map.remove(*v);
                    }
                    serde_json::to_string_pretty(&map)? + "\n"
                }
                _ => text,
            };
            std::fs::write(&target, written).with_context(|| format!("writing {}", target.display()))?;
        } else {
            std::fs::copy(out.join(name), &target).with_context(|| format!("writing {}", target.display()))?;
        }
    }
    Ok(report.files.iter().filter(|(_, d)| *d != FileDiff::Missing).count())
}

fn compare_file(name: &str, ours: &Path, theirs: &Path) -> Result<Option<FileDiff>> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let (a, b) = (read(ours)?, read(theirs)?);
    if a == b {
        return Ok(None);
    }
    let parsed = if name.ends_with(".csv") {
        parse_csv(name, &b).and_then(|g| Ok((g, parse_csv(name, &a)?)))
    } else if name.ends_with(".jsonl") {
        parse_jsonl(name, &b).and_then(|g| Ok((g, parse_jsonl(name, &a)?)))
    } else if name.ends_with(".json") {
        parse_json(&b).and_then(|g| Ok((g, parse_json(&a)?)))
    } else {
        return Ok(Some(FileDiff::Bytes));
    };
    // Unparseable on either side: the bytes differ, say so.
    let Ok(((golden_columns, golden_rows), (columns, rows))) = parsed else { return Ok(Some(FileDiff::Bytes)) };
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    for (key, row) in &rows {
        match golden_rows.get(key) {
            None => added.push((key.clone(), row.clone())),
            Some(old) => {
                let old: BTreeMap<&str, &str> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let new: BTreeMap<&str, &str> = row.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let fields: BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
                let mut cols = Vec::new();
                // Column order of the output first, then columns it lost.
                let order: Vec<&str> = row
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .chain(fields.iter().copied().filter(|f| !new.contains_key(f)))
                    .collect();
                for f in order {
                    if VOLATILE.contains(&f) {
                        continue;
                    }
                    let (o, n) = (old.get(f).copied(), new.get(f).copied());
                    if o != n {
                        cols.push((
                            f.to_owned(),
                            o.unwrap_or("(absent)").to_owned(),
                            n.unwrap_or("(absent)").to_owned(),
                        ));
                    }
                }
                if !cols.is_empty() {
                    changed.push((key.clone(), cols));
                }
            }
        }
    }
    for (key, row) in &golden_rows {
        if !rows.contains_key(key) {
            removed.push((key.clone(), row.clone()));
        }
    }
    // A document's fields are its one row's columns: the row change says it.
    let columns = (golden_columns != columns && !name.ends_with(".json")).then_some((golden_columns, columns));
    if columns.is_none() && added.is_empty() && removed.is_empty() && changed.is_empty() {
        // A JSON document equal but for volatile fields and layout: the same.
        // Rows files: same rows, other bytes (order or formatting): a change.
        return Ok((!name.ends_with(".json")).then_some(FileDiff::Bytes));
    }
    Ok(Some(FileDiff::Rows { columns, added, removed, changed }))
}

/// Parsed rows by key, and the column names.
type Parsed = (Vec<String>, BTreeMap<String, Row>);

fn key_columns(name: &str) -> &'static [&'static str] {
    match name {
        "accounts.csv" => &["source", "source_account_id"],
        "daily_totals.csv" => &["source", "source_account_id", "date", "currency"],
        "quarantine.jsonl" => &["source", "record_id", "file", "pointer"],
        _ => &["id"],
    }
}

/// Key a row by `name`'s key columns (the first column, or the line number,
/// when it has none of them); a repeated key gets ` #2`, ` #3`, ….
fn insert(rows: &mut BTreeMap<String, Row>, name: &str, line: usize, row: Row) {
    let wanted = key_columns(name);
    let parts: Vec<String> =
        wanted.iter().filter_map(|k| row.iter().find(|(c, _)| c == k).map(|(c, v)| format!("{c}={v}"))).collect();
    let base = if !parts.is_empty() {
        parts.join(" ")
    } else if name.ends_with(".csv") && !row.is_empty() {
        format!("{}={}", row[0].0, row[0].1)
    } else {
        format!("line {line}")
    };
    let mut key = base.clone();
    let mut n = 1;
    while rows.contains_key(&key) {
        n += 1;
        key = format!("{base} #{n}");
    }
    rows.insert(key, row);
}

fn parse_csv(name: &str, bytes: &[u8]) -> Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    let mut rows = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record?;
        let row: Row = header.iter().cloned().zip(record.iter().map(str::to_owned)).collect();
        insert(&mut rows, name, i + 2, row);
    }
    Ok((header, rows))
}

fn flat(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_jsonl(name: &str, bytes: &[u8]) -> Result<Parsed> {
    let text = std::str::from_utf8(bytes)?;
    let mut rows = BTreeMap::new();
    let mut columns: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let row: Row = match serde_json::from_str::<serde_json::Value>(line)? {
            serde_json::Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), flat(v))).collect(),
            other => vec![("value".to_owned(), flat(&other))],
        };
        for (c, _) in &row {
            if !columns.contains(c) {
                columns.push(c.clone());
            }
        }
        insert(&mut rows, name, i + 1, row);
    }
    Ok((columns, rows))
}

fn parse_json(bytes: &[u8]) -> Result<Parsed> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    let row: Row = match &value {
        serde_json::Value::Object(map) => {
            map.iter().filter(|(k, _)| !VOLATILE.contains(&k.as_str())).map(|(k, v)| (k.clone(), flat(v))).collect()
        }
        other => vec![("value".to_owned(), flat(other))],
    };
    let columns = row.iter().map(|(c, _)| c.clone()).collect();
    Ok((columns, BTreeMap::from([("(document)".to_owned(), row)])))
}

impl fmt::Display for GoldenReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, diff) in &self.files {
            match diff {
                FileDiff::Missing => writeln!(f, "{name}: missing from the output (the golden directory has it)")?,
                FileDiff::Unexpected => writeln!(f, "{name}: not in the golden directory (new output file)")?,
                FileDiff::Bytes => {
                    writeln!(f, "{name}: differs (same rows in another order or format, or not row data)")?
                }
                FileDiff::Rows { columns, added, removed, changed } => {
                    writeln!(f, "{name}: {} added, {} removed, {} changed", added.len(), removed.len(), changed.len())?;
                    if let Some((old, new)) = columns {
                        writeln!(f, "  columns: {} → {}", old.join(","), new.join(","))?;
                    }
                    let show_row = |row: &Row| -> String {
                        row.iter().map(|(c, v)| format!("{c}={v}")).collect::<Vec<_>>().join(", ")
                    };
                    for (key, row) in added.iter().take(MAX_ROWS_SHOWN) {
                        writeln!(f, "  + {key}: {}", show_row(row))?;
                    }
                    more(f, added.len())?;
                    for (key, row) in removed.iter().take(MAX_ROWS_SHOWN) {
                        writeln!(f, "  - {key}: {}", show_row(row))?;
                    }
                    more(f, removed.len())?;
                    for (key, cols) in changed.iter().take(MAX_ROWS_SHOWN) {
                        let cols: Vec<String> = cols.iter().map(|(c, o, n)| format!("{c}: {o} → {n}")).collect();
                        writeln!(f, "  ~ {key}: {}", cols.join("; "))?;
                    }
                    more(f, changed.len())?;
                }
            }
        }
        Ok(())
    }
}

fn more(f: &mut fmt::Formatter<'_>, n: usize) -> fmt::Result {
    if n > MAX_ROWS_SHOWN {
        writeln!(f, "  … and {} more", n - MAX_ROWS_SHOWN)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(golden: &[(&str, &str)], out: &[(&str, &str)]) -> (tempfile::TempDir, tempfile::TempDir) {
        let (g, o) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for (n, t) in golden {
            std::fs::write(g.path().join(n), t).unwrap();
        }
        for (n, t) in out {
            std::fs::write(o.path().join(n), t).unwrap();
        }
        (g, o)
    }

    const TX: &str = "id,amount,category\nt:1,-4.75,food\nt:2,10.00,income\nt:3,-1.00,fees\n";

    #[test]
    fn identical_directories_are_clean() {
        let (g, o) = dirs(&[("transactions.csv", TX)], &[("transactions.csv", TX)]);
        assert!(compare(o.path(), g.path()).unwrap().is_clean());
    }

    #[test]
    fn rows_are_matched_by_key_and_changes_name_their_columns() {
        // t:2's amount changes, t:3 is gone, t:4 is new, and t:4 sits
        // before t:1: only those three rows are reported.
        let out = "id,amount,category\nt:4,2.00,food\nt:1,-4.75,food\nt:2,11.00,income\n";
        let (g, o) = dirs(&[("transactions.csv", TX)], &[("transactions.csv", out)]);
        let report = compare(o.path(), g.path()).unwrap();
        let FileDiff::Rows { added, removed, changed, columns } = &report.files[0].1 else { panic!("{report:?}") };
        assert_eq!(columns, &None);
        assert_eq!(added.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["id=t:4"]);
        assert_eq!(removed.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["id=t:3"]);
        assert_eq!(changed, &[("id=t:2".to_owned(), vec![("amount".into(), "10.00".into(), "11.00".into())])]);
        let text = report.to_string();
        assert!(text.contains("transactions.csv: 1 added, 1 removed, 1 changed"), "{text}");
        assert!(text.contains("~ id=t:2: amount: 10.00 → 11.00"), "{text}");
        assert!(text.contains("+ id=t:4: id=t:4, amount=2.00, category=food"), "{text}");
        assert!(text.contains("- id=t:3:"), "{text}");
    }

    #[test]
    fn missing_and_new_files_and_volatile_fields() {
        let (g, o) = dirs(
            &[
                ("summary.json", r#"{"transactions": 3, "elapsed_seconds": 1.5}"#),
                ("accounts.csv", "source\n"),
                ("README.md", "how these goldens were checked"),
            ],
            &[("summary.json", r#"{"transactions": 3, "elapsed_seconds": 0.2}"#), ("explain.jsonl", "{}\n")],
        );
        let report = compare(o.path(), g.path()).unwrap();
        assert_eq!(
            report.files,
            vec![("accounts.csv".to_owned(), FileDiff::Missing), ("explain.jsonl".to_owned(), FileDiff::Unexpected)]
        );
        update(o.path(), g.path()).unwrap();
        assert!(g.path().join("README.md").exists(), "not an output file: left alone");
        assert!(!g.path().join("accounts.csv").exists());
    }

    #[test]
    fn jsonl_rows_are_keyed_by_id_and_update_makes_them_equal() {
        let (g, o) = dirs(
            &[("transactions.jsonl", "{\"id\":\"a\",\"amount\":\"1.00\"}\n{\"id\":\"b\",\"amount\":\"2.00\"}\n")],
            &[("transactions.jsonl", "{\"id\":\"b\",\"amount\":\"2.00\"}\n{\"id\":\"a\",\"amount\":\"1.50\"}\n")],
        );
        let report = compare(o.path(), g.path()).unwrap();
        assert!(report.to_string().contains("~ id=a: amount: 1.00 → 1.50"), "{report}");
        assert_eq!(update(o.path(), g.path()).unwrap(), 1);
        assert!(compare(o.path(), g.path()).unwrap().is_clean());
    }
}
