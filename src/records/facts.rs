//! What collection knows about each test that its record carries: markers by
//! category, stage, gating, owner, quarantine, retries. Made in the process
//! that collected (`facts_table`), and handed to the process that writes
//! records (the xdist controller collects nothing) as one small JSON text
//! per test.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::{Owners, Quarantine, QuarantineEntry as Entry};
use crate::taxonomy::validate::Resolution;
use crate::taxonomy::Item;
use crate::taxonomy::Taxonomy;

/// Marker names by category, categories and markers in taxonomy order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Markers(pub Vec<(String, Vec<String>)>);

impl Serialize for Markers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (category, names) in &self.0 {
            map.serialize_entry(category, names)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Markers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Markers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of category to marker names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Markers, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Vec<String>>()? {
                    out.push((k, v));
                }
                Ok(Markers(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Markers {
    pub fn of(taxonomy: &Taxonomy, resolution: &Resolution) -> Markers {
        // (category position, marker position, category, marker): sorted,
        // that is taxonomy order.
        let mut found: Vec<(usize, usize, &str, &str)> = resolution
            .markers
            .iter()
            .filter_map(|(name, category)| {
                let c = taxonomy
                    .categories
                    .iter()
                    .position(|c| c.name == *category)?;
                let m = taxonomy.categories[c]
                    .markers
                    .iter()
                    .position(|m| m == name)
                    .unwrap_or(usize::MAX);
                Some((c, m, category.as_str(), name.as_str()))
            })
            .collect();
        found.sort_unstable();
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for (_, _, category, name) in found {
            match out.last_mut() {
                Some((c, names)) if c == category => names.push(name.to_string()),
                _ => out.push((category.to_string(), vec![name.to_string()])),
            }
        }
        Markers(out)
    }

    pub fn category(&self, name: &str) -> Option<&[String]> {
        self.0
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, n)| n.as_slice())
    }
}

/// The quarantine entry that covers a test, as its record shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRef {
    pub ticket: String,
    pub owner: String,
    pub reason: String,
    pub expires: String,
    pub expired: bool,
}

impl QuarantineRef {
    fn of(entry: &Entry, today: crate::clock::Date) -> QuarantineRef {
        QuarantineRef {
            ticket: entry.ticket.clone(),
            owner: entry.owner.clone(),
            reason: entry.reason.clone(),
            expires: entry.expires.to_string(),
            expired: entry.expires < today,
        }
    }
}

/// One test's facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The test's flow id (a UUID), made with the facts.
    #[serde(default)]
    pub flow_id: Option<String>,
    pub markers: Markers,
    pub stage: Option<String>,
    pub gating: bool,
    /// Why the test does not gate (a pipeline's or the quarantine's word).
    pub exempt: Option<String>,
    pub owner: Option<String>,
    pub quarantine: Option<QuarantineRef>,
    /// The test's `timeout` marker (pytest-timeout's), in seconds; null without one.
    #[serde(default)]
    pub timeout_s: Option<f64>,
}

/// The seconds of the test's closest `timeout` marker: `timeout(120)` or
/// `timeout(timeout=120)`; None without one (or with no number in it).
pub fn timeout_of(item: &Item) -> Option<f64> {
    let mark = item.marks.iter().find(|m| m.name == "timeout")?;
    mark.args
        .first()
        .or_else(|| mark.kwargs.get("timeout"))
        .and_then(crate::taxonomy::MarkValue::as_f64)
        .filter(|s| s.is_finite())
}

/// Facts as the recorder reads them back, borrowing from the JSON text: the
/// markers are kept as written, not parsed and written again.
#[derive(Debug, Deserialize)]
pub struct FactsRef<'a> {
    #[serde(default, borrow)]
    pub flow_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub markers: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow)]
    pub stage: Option<std::borrow::Cow<'a, str>>,
    #[serde(default = "gates")]
    pub gating: bool,
    #[serde(default, borrow)]
    pub owner: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub quarantine: Option<QuarantineRef>,
    /// Absent: facts that do not say (a crashed worker's test); the record leaves it out.
    #[serde(default, deserialize_with = "RecordedTimeout::deserialize")]
    pub timeout_s: RecordedTimeout,
}

fn gates() -> bool {
    true
}

impl Default for FactsRef<'_> {
    /// A test nobody described (a crashed worker's report): it gates.
    fn default() -> Self {
        FactsRef {
            flow_id: None,
            markers: None,
            stage: None,
            gating: true,
            owner: None,
            quarantine: None,
            timeout_s: RecordedTimeout::Unknown,
        }
    }
}

/// The markers a record shows: as the facts JSON wrote them (from an xdist
/// worker), as this process worked them out, or none.
#[derive(Debug, Clone, Copy)]
pub enum MarkersView<'a> {
    Raw(&'a serde_json::value::RawValue),
    Known(&'a Markers),
    Empty,
}

impl Serialize for MarkersView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MarkersView::Raw(raw) => raw.serialize(s),
            MarkersView::Known(markers) => markers.serialize(s),
            MarkersView::Empty => s.serialize_map(Some(0))?.end(),
        }
    }
}

/// A test's facts as its record reads them, wherever they came from.
#[derive(Debug, Clone, Copy)]
pub struct FactsView<'a> {
    pub flow_id: Option<&'a str>,
    pub markers: MarkersView<'a>,
    pub stage: Option<&'a str>,
    pub gating: bool,
    pub owner: Option<&'a str>,
    pub quarantine: Option<&'a QuarantineRef>,
    /// Unknown: the record leaves `timeout_s` out.
    pub timeout_s: RecordedTimeout,
}

impl<'a> From<&'a FactsRef<'a>> for FactsView<'a> {
    fn from(f: &'a FactsRef<'a>) -> Self {
        FactsView {
            flow_id: f.flow_id,
            markers: f.markers.map_or(MarkersView::Empty, MarkersView::Raw),
            stage: f.stage.as_deref(),
            gating: f.gating,
            owner: f.owner.as_deref(),
            quarantine: f.quarantine.as_ref(),
            timeout_s: f.timeout_s,
        }
    }
}

impl<'a> From<&'a Facts> for FactsView<'a> {
    fn from(f: &'a Facts) -> Self {
        FactsView {
            flow_id: f.flow_id.as_deref(),
            markers: MarkersView::Known(&f.markers),
            stage: f.stage.as_deref(),
            gating: f.gating,
            owner: f.owner.as_deref(),
            quarantine: f.quarantine.as_ref(),
            timeout_s: RecordedTimeout::present(f.timeout_s),
        }
    }
}

/// The run's rules that facts come from.
pub struct Rules<'a> {
    pub taxonomy: &'a Taxonomy,
    pub owners: &'a Owners,
    pub quarantine: &'a Quarantine,
    pub today: crate::clock::Date,
}

/// Flow ids: random (version 4) UUIDs, one per test position. Two keys are
/// drawn once from the OS (through the standard library's hasher seeds) and
/// mixed with the position by a bijective mixer, so positions get distinct,
/// random-looking ids for the cost of a few multiplications each. They tie
/// log lines together; they are not secrets.
pub struct FlowIds {
    hi: u64,
    lo: u64,
}

impl Default for FlowIds {
    fn default() -> Self {
        use std::hash::BuildHasher;
        let keys = std::collections::hash_map::RandomState::new();
        FlowIds {
            hi: keys.hash_one(0x666c_6f77_u32),
            lo: keys.hash_one(0x6964_7373_u32),
        }
    }
}

/// splitmix64's finalizer: a bijection on 64 bits that spreads every input bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl FlowIds {
    /// The flow id of position `n`: 128 mixed bits made a version 4 UUID
    /// (version and variant bits set, hyphenated lowercase) by the uuid crate.
    pub fn get(&self, n: u64) -> String {
        let hi = self.hi ^ mix(n);
        let lo = self.lo ^ mix(!n);
        let bytes = (u128::from(hi) << 64 | u128::from(lo)).to_be_bytes();
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        id.hyphenated().encode_lower(&mut text).to_owned()
    }

    /// A flow id of its own, for a test no table knows.
    pub fn fresh() -> String {
        FlowIds::default().get(0)
    }
}

/// One test's facts. `exempt`: a reason it does not gate already (a pipeline's).
pub fn facts(
    rules: &Rules<'_>,
    item: &Item,
    resolution: &Resolution,
    stage: Option<&str>,
    exempt: Option<&str>,
) -> Facts {
    let entry = rules.quarantine.entry_for(&item.nodeid);
    let exempt = exempt
        .map(String::from)
        .or_else(|| entry.map(Entry::exemption));
    Facts {
        flow_id: None,
        markers: Markers::of(rules.taxonomy, resolution),
        stage: stage.map(String::from),
        gating: exempt.is_none(),
        exempt,
        // A quarantined test's owner is the one who owns its fix.
        owner: entry.map(|e| e.owner.clone()).or_else(|| {
            rules
                .owners
                .owner_of(&item.nodeid, resolution)
                .map(String::from)
        }),
        quarantine: entry.map(|e| QuarantineRef::of(e, rules.today)),
        timeout_s: timeout_of(item),
    }
}

/// A test's `timeout` marker (pytest-timeout's) as its record tells it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum RecordedTimeout {
    /// The record does not say: written before records carried `timeout_s`.
    #[default]
    Unknown,
    /// No `timeout` marker, or `timeout(0)`, which pytest-timeout reads as none.
    None,
    Seconds(f64),
}

impl RecordedTimeout {
    /// From a `timeout_s` that is there: null or a number.
    pub fn present(value: Option<f64>) -> RecordedTimeout {
        match value {
            Some(s) if s > 0.0 => RecordedTimeout::Seconds(s),
            _ => RecordedTimeout::None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        *self == RecordedTimeout::Unknown
    }

    /// serde's reading of a `timeout_s` field (absent: `Unknown`, by `default`).
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<RecordedTimeout, D::Error> {
        <Option<f64> as serde::Deserialize>::deserialize(d).map(RecordedTimeout::present)
    }
}

/// Written as the record's `timeout_s`: the seconds, or null.
impl serde::Serialize for RecordedTimeout {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            RecordedTimeout::Seconds(v) => s.serialize_f64(*v),
            RecordedTimeout::None | RecordedTimeout::Unknown => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_ids_are_version_4_uuids() {
        let flows = FlowIds::default();
        let ids: std::collections::HashSet<String> = (0..10_000).map(|n| flows.get(n)).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'), "{id}");
            assert!(
                matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "{id}"
            );
        }
        assert_eq!(flows.get(7), flows.get(7));
        assert_ne!(flows.get(0), FlowIds::default().get(0));
        assert_ne!(FlowIds::fresh(), FlowIds::fresh());
    }

    #[test]
    fn flow_ids_parse_as_version_4_uuids() {
        let id = FlowIds::default().get(3);
        let parsed = uuid::Uuid::try_parse(&id).unwrap();
        assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
    }
}
