//! The MCC table (`config/mcc_categories.csv`): every ISO 18245 code and the
//! private-use ranges mapped to a canonical category, looked up by direct
//! index (one array access per row).

use bankpipe_model::Mcc;

use super::taxonomy::{CategoryId, Taxonomy};
use super::CategorizeError;

/// The built-in table, embedded at build time.
pub const BUILTIN_MCC_TABLE: &str = include_str!("../../../../config/mcc_categories.csv");

/// One row of the table.
#[derive(Debug)]
pub struct MccRow {
    /// First code of the row.
    pub from: u16,
    /// Last code (inclusive).
    pub to: u16,
    /// Category.
    pub category: CategoryId,
    /// The code's description (public-domain MCC list).
    pub description: String,
}

/// Code → row, by direct index over 0..=9999.
#[derive(Debug)]
pub struct MccTable {
    rows: Vec<MccRow>,
    index: Box<[u16; 10_000]>,
}

const NONE: u16 = u16::MAX;

impl MccTable {
    /// Parse `mcc_from,mcc_to,category,subcategory,description` CSV text.
    /// Ranges must not overlap; every target must exist in `taxonomy`.
    ///
    /// # Errors
    /// [`CategorizeError::Data`] naming the file and line.
    pub fn parse(csv_text: &str, origin: &str, taxonomy: &Taxonomy) -> Result<MccTable, CategorizeError> {
        let mut rows = Vec::new();
        let mut index = Box::new([NONE; 10_000]);
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let bad = |problem: String| CategorizeError::Data { origin: origin.to_owned(), line, problem };
            let r = record.map_err(|e| bad(e.to_string()))?;
            let code = |k: usize| -> Result<u16, CategorizeError> {
                let v = r.get(k).unwrap_or("");
                v.parse::<u16>()
                    .ok()
                    .filter(|c| *c <= 9999)
                    .ok_or_else(|| bad(format!("{v:?} is not an MCC (0000-9999)")))
            };
            let (from, to) = (code(0)?, code(1)?);
            if to < from {
                return Err(bad(format!("range {from:04}-{to:04} runs backwards")));
            }
            let (parent, sub) = (r.get(2).unwrap_or(""), r.get(3).unwrap_or(""));
            let category =
                taxonomy.pair(parent, sub).ok_or_else(|| bad(format!("{parent}/{sub} is not in the taxonomy")))?;
            let row = u16::try_from(rows.len()).map_err(|_| bad("too many rows".into()))?;
            for c in from..=to {
                if index[c as usize] != NONE {
                    return Err(bad(format!("code {c:04} is already mapped by an earlier row")));
                }
                index[c as usize] = row;
            }
            rows.push(MccRow { from, to, category, description: r.get(4).unwrap_or("").trim().to_owned() });
        }
        Ok(MccTable { rows, index })
    }

    /// The built-in table over the built-in taxonomy.
    pub fn builtin(taxonomy: &Taxonomy) -> MccTable {
        MccTable::parse(BUILTIN_MCC_TABLE, "config/mcc_categories.csv", taxonomy)
            .expect("the built-in MCC table is valid")
    }

    /// The row covering `mcc`, if any.
    pub fn get(&self, mcc: Mcc) -> Option<&MccRow> {
        match self.index[mcc.get() as usize] {
            NONE => None,
            row => Some(&self.rows[row as usize]),
        }
    }

    /// All rows.
    pub fn rows(&self) -> &[MccRow] {
        &self.rows
    }
}
