//! The taxonomy's slice of `[tool.pytest-dynamo]`: per category, the
//! markers a project adds or removes and how many a test carries
//! (`[taxonomy.<category>]`), and the old marker names a project keeps
//! working (`[aliases]`).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// `[aliases]`: old marker name -> canonical name; using the old one warns.
pub type Aliases = BTreeMap<String, String>;

/// `[taxonomy.<category>]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CategoryConfig {
    /// Needed when the table defines a new category.
    pub description: Option<String>,
    #[serde(deserialize_with = "deserialize_marker_specs")]
    pub add: Vec<MarkerSpec>,
    pub remove: Vec<String>,
    /// `true` means at least one marker (same as `min = 1`); `false`, none needed.
    pub required: Option<bool>,
    pub min: Option<u32>,
    pub max: Option<Limit>,
    /// Markers (of other categories) that meet this category's `required`
    /// on their own: a `k8s` test needs no `gpu_N` marker.
    pub satisfied_by: Vec<String>,
    /// Groups of this category's markers a test may not carry together.
    pub exclusive: Vec<Vec<String>>,
}

/// `max = 2` or `max = "unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Count(u32),
    Unlimited,
}

/// A marker to add: `"lmcache"` or `{ name = "canary", description = "...", after = "nightly" }`.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MarkerSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Hardware markers: devices needed (read from a `_N` suffix when absent).
    #[serde(default)]
    pub devices: Option<u32>,
    /// Place it in the category's order (the lifecycle order) after this marker.
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub before: Option<String>,
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or \"unlimited\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Limit, E> {
                u32::try_from(v)
                    .map(Limit::Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Limit, E> {
                if v == "unlimited" {
                    Ok(Limit::Unlimited)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Lets `add` hold plain names and tables side by side, keeping the key
/// names in errors (an untagged enum would lose them).
pub fn deserialize_marker_specs<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<MarkerSpec>, D::Error> {
    struct Item(MarkerSpec);
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Item;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a marker name or a table with a `name` key")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Item, E> {
                    Ok(Item(MarkerSpec {
                        name: v.to_string(),
                        ..MarkerSpec::default()
                    }))
                }
                fn visit_map<A: MapAccess<'de>>(self, m: A) -> std::result::Result<Item, A::Error> {
                    MarkerSpec::deserialize(de::value::MapAccessDeserializer::new(m)).map(Item)
                }
            }
            d.deserialize_any(V)
        }
    }
    Ok(Vec::<Item>::deserialize(d)?
        .into_iter()
        .map(|i| i.0)
        .collect())
}
