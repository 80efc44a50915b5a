//! Per-sink category maps (DESIGN §5): canonical category → Trupocket
//! category name (default: the subcategory name, else the parent) and
//! canonical category → mibudge budget name (no default: without a mapping
//! mibudge's Unallocated stands, since its category enum is read-only).

use std::collections::HashMap;

use bankpipe_config::CategoriesConfig;

use super::taxonomy::Taxonomy;
use super::CategorizeError;

/// Validated per-sink maps.
#[derive(Debug, Default)]
pub struct SinkCategoryMaps {
    trupocket: HashMap<String, String>,
    mibudge: HashMap<String, String>,
}

impl SinkCategoryMaps {
    /// Build from `[categories.trupocket]` and `[categories.mibudge]`; every
    /// key must be a canonical category.
    ///
    /// # Errors
    /// [`CategorizeError::Map`] naming the table and key.
    pub fn from_config(config: &CategoriesConfig, taxonomy: &Taxonomy) -> Result<SinkCategoryMaps, CategorizeError> {
        let check = |table: &str, map: &std::collections::BTreeMap<String, String>| {
            map.iter()
                .map(|(k, v)| {
                    if taxonomy.by_path(k).is_none() {
                        return Err(CategorizeError::Map {
                            table: table.to_owned(),
                            key: k.clone(),
                            problem: "not a category of config/taxonomy.csv".into(),
                        });
                    }
                    if v.trim().is_empty() {
                        return Err(CategorizeError::Map {
                            table: table.to_owned(),
                            key: k.clone(),
                            problem: "empty name".into(),
                        });
                    }
                    Ok((k.clone(), v.clone()))
                })
                .collect::<Result<HashMap<_, _>, _>>()
        };
        Ok(SinkCategoryMaps {
            trupocket: check("categories.trupocket", &config.trupocket)?,
            mibudge: check("categories.mibudge", &config.mibudge)?,
        })
    }

    /// The Trupocket category name for a canonical path: the configured
    /// name, else the subcategory (`Food & Dining/Coffee Shops` → `Coffee
    /// Shops`), else the path itself (`Transfer`).
    pub fn trupocket<'a>(&'a self, category: &'a str) -> &'a str {
        match self.trupocket.get(category) {
            Some(name) => name,
            None => category.rsplit_once('/').map_or(category, |(_, sub)| sub),
        }
    }

    /// `true` when any category is mapped to a mibudge budget.
    pub fn has_mibudge_budgets(&self) -> bool {
        !self.mibudge.is_empty()
    }

    /// Every mibudge budget name the configuration maps a category to, sorted.
    pub fn mibudge_budgets(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.mibudge.values().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The mibudge budget for a canonical path, when one is configured.
    pub fn mibudge(&self, category: &str) -> Option<&str> {
        self.mibudge.get(category).map(String::as_str)
    }
}
