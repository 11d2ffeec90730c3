//! What to edit in one file: for the lint, renames of misspelled markers
//! and aliases and drops of a second hardware marker; for the advice,
//! markers replaced where they are written or added above the function.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use tree_sitter::{Node, Parser, Tree};

use super::sites::{sites, Scope, Site};
use super::{apply, Edit, FileFix, Goal};
use crate::analytics::advice::advise::{Decorator, Kind};
use crate::gpu::requirement::number;
use crate::gpu::Rules as GpuRules;
use crate::lint::collect::StaticTest;
use crate::lint::known::Spelled;
use crate::lint::source::Pos;
use crate::lint::syntax;
use crate::taxonomy::suggest;
use crate::taxonomy::{Resolved, Taxonomy};

pub struct Planner<'a> {
    pub taxonomy: &'a Taxonomy,
    pub registered: &'a HashSet<String>,
    pub gpu: &'a GpuRules,
    pub goal: &'a Goal<'a>,
}

#[derive(Default)]
pub struct FileResult {
    pub fix: Option<FileFix>,
    pub left: Vec<String>,
    pub errors: Vec<String>,
}

impl FileResult {
    pub fn error(message: String) -> Self {
        FileResult {
            errors: vec![message],
            ..FileResult::default()
        }
    }
}

/// The one known marker a misspelled name stands for: the closest by edit
/// distance, when no other is as close.
pub fn clear_suggestion<'t>(taxonomy: &'t Taxonomy, name: &str) -> Option<&'t str> {
    let best = taxonomy.suggest(name)?;
    let folded = suggest::fold(name);
    let distance = |c: &str| strsim::levenshtein(&folded, &suggest::fold(c));
    let d = distance(best);
    let tied = taxonomy
        .markers()
        .map(|m| m.name.as_str())
        .filter(|c| *c != best && *c != name)
        .any(|c| distance(c) == d);
    (!tied).then_some(best)
}

/// How a new decorator is written: `pytest.mark`, or the namespace the file already uses.
fn namespace(src: &[u8], found: &[Site]) -> Option<String> {
    let text = std::str::from_utf8(src).ok()?;
    if text
        .lines()
        .any(|l| l.trim_end() == "import pytest" || l.starts_with("import pytest  #"))
    {
        return Some("pytest.mark".to_string());
    }
    let site = found.first()?;
    let before = &text[..site.name_range.start];
    let start = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| i + 1);
    Some(before[start..].trim_end_matches('.').to_string())
}

/// The `def` of the test whose name is written at `pos`.
fn definition_at(tree: &Tree, pos: Pos) -> Option<Node<'_>> {
    let point = tree_sitter::Point {
        row: usize::try_from(pos.line).ok()?.checked_sub(1)?,
        column: usize::try_from(pos.col).ok()?.checked_sub(1)?,
    };
    let mut node = tree.root_node().descendant_for_point_range(point, point)?;
    while node.kind() != "function_definition" {
        node = node.parent()?;
    }
    Some(node)
}

/// A second hardware marker of some test (the first that has it so).
struct Drop<'s> {
    name: String,
    lowest: String,
    nodeid: String,
    site: Option<&'s Site>,
}

/// A change planned at a site, before the tests that want it are merged.
enum Want {
    Rename(String, u32),
    Value(f64, String),
}

impl Planner<'_> {
    pub fn file(
        &self,
        parser: &mut Parser,
        path: &Path,
        display: &str,
        src: Vec<u8>,
        tree: &Tree,
        tests: &[StaticTest],
    ) -> FileResult {
        let found = sites(&src, tree);
        let mut out = FileResult::default();
        let edits = match self.goal {
            Goal::Lint => self.lint(display, &found, tests, &mut out.left),
            Goal::Advice(advice) => {
                let wanted: Vec<(&str, &[Decorator])> = advice
                    .tests
                    .iter()
                    .filter(|t| tests.iter().any(|s| s.nodeid == t.nodeid))
                    .map(|t| (t.nodeid.as_str(), t.decorators.as_slice()))
                    .collect();
                for t in &advice.tests {
                    let file = t.nodeid.split("::").next().unwrap_or_default();
                    if tests
                        .first()
                        .is_some_and(|s| s.nodeid.starts_with(&format!("{file}::")))
                        && !tests.iter().any(|s| s.nodeid == t.nodeid)
                    {
                        out.left.push(format!(
                            "{display}: {} is not among the tests found in the file (renamed, or \
                             its parameters are computed): not edited",
                            t.nodeid
                        ));
                    }
                }
                self.advice(display, &src, tree, &found, tests, &wanted, &mut out.left)
            }
        };
        if edits.is_empty() {
            return out;
        }
        let original = String::from_utf8(src).expect("the lint parses UTF-8 only");
        let (fixed, kept) = apply(&original, edits);
        if fixed == original {
            return out;
        }
        let reparsed = parser.parse(&fixed, None);
        if let Some(problem) = reparsed
            .as_ref()
            .map_or(Some((Pos::default(), "no tree".to_string())), |t| {
                syntax::syntax_error(t, fixed.as_bytes())
            })
        {
            out.errors.push(format!(
                "{display}: the edits would not parse ({}): nothing written",
                problem.1
            ));
            return out;
        }
        let mut changes: Vec<(u32, String)> =
            kept.into_iter().map(|e| (e.line, e.change)).collect();
        changes.sort();
        changes.dedup();
        out.fix = Some(FileFix {
            path: display.to_string(),
            absolute: path.to_path_buf(),
            original,
            fixed,
            changes: changes
                .into_iter()
                .map(|(line, c)| format!("{display}:{line}: {c}"))
                .collect(),
        });
        out
    }

    /// What a marker name should be: an alias renamed to its marker, a
    /// clear misspelling to the marker it stands for; None to keep it.
    fn rename(&self, name: &str) -> Option<String> {
        match self.taxonomy.resolve(name) {
            Resolved::Alias(def) => Some(def.name.clone()),
            Resolved::Known(_) => None,
            Resolved::Unknown if self.registered.contains(name) => None,
            Resolved::Unknown => clear_suggestion(self.taxonomy, name).map(String::from),
        }
    }

    fn lint(
        &self,
        display: &str,
        found: &[Site],
        tests: &[StaticTest],
        left: &mut Vec<String>,
    ) -> Vec<Edit> {
        let by_pos: HashMap<Pos, usize> =
            found.iter().enumerate().map(|(i, s)| (s.pos, i)).collect();
        let mut edits = Vec::new();
        // What each name should be: aliases and clear misspellings renamed.
        for s in found {
            if let Some(new) = self.rename(&s.name) {
                edits.push(Edit {
                    range: s.name_range.clone(),
                    text: new.clone(),
                    change: format!("renamed '{}' to '{new}'", s.name),
                    line: s.pos.line,
                });
            }
        }
        let (drops, lowest_of) = self.second_hardware(display, found, &by_pos, tests, left);
        for (pos, d) in drops {
            drop_edit(display, pos, &d, lowest_of.get(&pos), &mut edits, left);
        }
        edits
    }

    /// Second hardware markers to drop, by where they are written, and the
    /// test each marker is the lowest of (there it stays); renames of
    /// computed markers are left to the user.
    fn second_hardware<'s>(
        &self,
        display: &str,
        found: &'s [Site],
        by_pos: &HashMap<Pos, usize>,
        tests: &[StaticTest],
        left: &mut Vec<String>,
    ) -> (BTreeMap<Pos, Drop<'s>>, HashMap<Pos, String>) {
        let mut reported = HashSet::new();
        // A second hardware marker goes unless it is the lowest of some test
        // it is written for (one written for the whole module may be).
        let mut drops: BTreeMap<Pos, Drop> = BTreeMap::new();
        let mut lowest_of: HashMap<Pos, String> = HashMap::new();
        for t in tests {
            for m in &t.marks {
                if !by_pos.contains_key(&m.pos)
                    && self.rename(&m.name).is_some()
                    && reported.insert(m.pos)
                {
                    left.push(format!(
                        "{display}:{}: '{}' is written in a computed marker: rename it by hand",
                        m.pos.line, m.name
                    ));
                }
            }
            let family: Vec<(u32, &Spelled, String)> = t
                .marks
                .iter()
                .filter_map(|m| {
                    let name = self.rename(&m.name).unwrap_or_else(|| m.name.clone());
                    self.gpu.gpus(&name).map(|d| (d, m, name))
                })
                .collect();
            let Some(lowest) = family.iter().min_by_key(|(d, _, _)| *d) else {
                continue;
            };
            for (_, m, name) in &family {
                if *name == lowest.2 {
                    lowest_of.entry(m.pos).or_insert_with(|| t.nodeid.clone());
                    continue;
                }
                drops.entry(m.pos).or_insert_with(|| Drop {
                    name: name.clone(),
                    lowest: lowest.2.clone(),
                    nodeid: t.nodeid.clone(),
                    site: by_pos.get(&m.pos).map(|&i| &found[i]),
                });
            }
        }
        (drops, lowest_of)
    }

    /// Does this marker name belong to the decorator's kind?
    fn same_kind(&self, d: &Decorator, name: &str) -> bool {
        match d.kind {
            Kind::Hardware => self.gpu.gpus(name).is_some(),
            Kind::Vram | Kind::Timeout => name == d.marker,
            Kind::Lifecycle => d.replaces.as_deref() == Some(name),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn advice(
        &self,
        display: &str,
        src: &[u8],
        tree: &Tree,
        found: &[Site],
        tests: &[StaticTest],
        wanted: &[(&str, &[Decorator])],
        left: &mut Vec<String>,
    ) -> Vec<Edit> {
        let by_pos: HashMap<Pos, usize> =
            found.iter().enumerate().map(|(i, s)| (s.pos, i)).collect();
        let mut g = Gathered {
            display,
            left,
            at_site: BTreeMap::new(),
            to_add: BTreeMap::new(),
            reported: HashSet::new(),
        };
        for (nodeid, decorators) in wanted {
            let Some(test) = tests.iter().find(|t| t.nodeid == *nodeid) else {
                continue;
            };
            for d in *decorators {
                self.gather(tree, found, &by_pos, test, d, &mut g);
            }
        }
        let mut edits = Vec::new();
        let at_site = std::mem::take(&mut g.at_site);
        for (i, wants) in at_site {
            site_edit(&found[i], wants, &mut edits, &mut g);
        }
        if !g.to_add.is_empty() {
            added_edits(src, found, &mut edits, &mut g);
        }
        edits
    }

    /// What one advised decorator of one test asks: a change where the
    /// test's marker of that kind is written, or a marker added above it.
    fn gather<'t, 'd>(
        &self,
        tree: &'t Tree,
        found: &[Site],
        by_pos: &HashMap<Pos, usize>,
        test: &StaticTest,
        d: &'d Decorator,
        gathered: &mut Gathered<'_, 't, 'd>,
    ) {
        let want = match d.kind {
            Kind::Hardware => Want::Rename(d.marker.clone(), self.gpu.gpus(&d.marker).unwrap_or(0)),
            Kind::Lifecycle => Want::Rename(d.marker.clone(), 0),
            Kind::Vram | Kind::Timeout => {
                let arg = d.arg.clone().unwrap_or_default();
                Want::Value(arg.parse().unwrap_or(0.0), arg)
            }
        };
        let existing: Vec<&Spelled> = test
            .marks
            .iter()
            .filter(|m| self.same_kind(d, &m.name))
            .collect();
        if existing.is_empty() && d.kind == Kind::Lifecycle {
            gathered.note(
                test.pos.line,
                format!(
                    "{} does not carry '{}' where the source shows it: {} not written",
                    test.nodeid,
                    d.replaces.as_deref().unwrap_or_default(),
                    d.text()
                ),
            );
            return;
        }
        if existing.is_empty() {
            to_add(tree, test, d, want, gathered);
            return;
        }
        for m in existing {
            let Some(&i) = by_pos.get(&m.pos) else {
                gathered.note(
                    m.pos.line,
                    format!(
                        "'{}' of {} is computed: {} not written",
                        m.name,
                        test.nodeid,
                        d.text()
                    ),
                );
                continue;
            };
            let s = &found[i];
            let needed = match &want {
                Want::Rename(name, _) => s.name != *name,
                Want::Value(v, _) => s.value.is_none_or(|x| (x - v).abs() > 1e-9),
            };
            if !needed {
                continue;
            }
            if s.scope < Scope::Function {
                gathered.note(
                    s.pos.line,
                    format!(
                        "'{}' is written for {}: {} of {} not written (move the marker to the tests)",
                        s.name,
                        s.scope.words(),
                        d.text(),
                        test.nodeid
                    ),
                );
                continue;
            }
            gathered.at_site.entry(i).or_default().push(want);
            break;
        }
    }
}

/// The advice's changes of one file as they are gathered.
struct Gathered<'l, 't, 'd> {
    display: &'l str,
    left: &'l mut Vec<String>,
    /// Per site: the changes the tests want.
    at_site: BTreeMap<usize, Vec<Want>>,
    /// Per (function, kind): the marker to add.
    to_add: BTreeMap<(usize, Kind), (Node<'t>, Want, &'d Decorator)>,
    /// Notes given, so each is said once.
    reported: HashSet<(u32, String)>,
}

impl Gathered<'_, '_, '_> {
    /// What is not edited, and why (once).
    fn note(&mut self, line: u32, text: String) {
        if self.reported.insert((line, text.clone())) {
            self.left.push(format!("{}:{line}: {text}", self.display));
        }
    }
}

/// A marker to add above a test that has none of the decorator's kind:
/// the most any test of the function asks for.
fn to_add<'t, 'd>(
    tree: &'t Tree,
    test: &StaticTest,
    d: &'d Decorator,
    want: Want,
    g: &mut Gathered<'_, 't, 'd>,
) {
    if !test.unresolved.is_empty() {
        g.note(
            test.pos.line,
            format!(
                "{} has markers the source cannot tell ({}): {} not added",
                test.nodeid,
                test.unresolved[0].reason,
                d.text()
            ),
        );
        return;
    }
    let Some(def) = definition_at(tree, test.pos) else {
        g.note(
            test.pos.line,
            format!(
                "{}: its definition was not found: {} not added",
                test.nodeid,
                d.text()
            ),
        );
        return;
    };
    let slot = g.to_add.entry((def.start_byte(), d.kind)).or_insert((
        def,
        Want::Value(f64::NEG_INFINITY, String::new()),
        d,
    ));
    if more(&want, &slot.1) {
        *slot = (def, want, d);
    }
}

/// The edit of a site that tests want changed: the most they ask for.
fn site_edit(s: &Site, wants: Vec<Want>, edits: &mut Vec<Edit>, g: &mut Gathered<'_, '_, '_>) {
    let Some(best) = wants
        .into_iter()
        .reduce(|a, b| if more(&b, &a) { b } else { a })
    else {
        return;
    };
    match best {
        Want::Rename(name, _) => edits.push(Edit {
            range: s.name_range.clone(),
            text: name.clone(),
            change: format!("'{}' replaced by '{name}'", s.name),
            line: s.pos.line,
        }),
        Want::Value(_, arg) => {
            let (range, text) = match (&s.value_range, &s.args) {
                (Some(r), _) => (r.clone(), arg.clone()),
                (None, None) => (s.expr_end..s.expr_end, format!("({arg})")),
                (None, Some(a)) if a.len() == 2 => (a.start + 1..a.start + 1, arg.clone()),
                (None, Some(_)) => {
                    g.note(
                        s.pos.line,
                        format!(
                            "'{}' has arguments that are not one number: {}({arg}) not written",
                            s.name, s.name
                        ),
                    );
                    return;
                }
            };
            edits.push(Edit {
                range,
                text,
                change: format!(
                    "{}({}) set to {}({arg})",
                    s.name,
                    s.value.map_or_else(String::new, number),
                    s.name
                ),
                line: s.pos.line,
            });
        }
    }
}

/// The markers to add, each on a line of its own above its definition,
/// written as the file writes its markers.
fn added_edits(src: &[u8], found: &[Site], edits: &mut Vec<Edit>, g: &mut Gathered<'_, '_, '_>) {
    let Some(ns) = namespace(src, found) else {
        g.note(
            1,
            "the module does not `import pytest`: no marker added".to_string(),
        );
        return;
    };
    for ((start, _), (def, want, d)) in std::mem::take(&mut g.to_add) {
        let line_start = src[..start]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let indent = &src[line_start..start];
        if !indent.iter().all(|b| matches!(b, b' ' | b'\t')) {
            g.note(
                pos_line(def),
                format!(
                    "the definition does not start its line: {} not added",
                    d.text()
                ),
            );
            continue;
        }
        let line_end = src[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(src.len(), |i| start + i);
        let eol = if line_end > 0 && src.get(line_end - 1) == Some(&b'\r') {
            "\r\n"
        } else {
            "\n"
        };
        let written = match &want {
            Want::Rename(name, _) => format!("@{ns}.{name}"),
            Want::Value(_, arg) => format!("@{ns}.{}({arg})", d.marker),
        };
        edits.push(Edit {
            range: line_start..line_start,
            text: format!("{}{written}{eol}", String::from_utf8_lossy(indent)),
            change: format!("added {written}"),
            line: pos_line(def),
        });
    }
}

/// A second hardware marker dropped, or why it stays.
fn drop_edit(
    display: &str,
    pos: Pos,
    d: &Drop<'_>,
    lowest_of: Option<&String>,
    edits: &mut Vec<Edit>,
    left: &mut Vec<String>,
) {
    let why = match (d.site, lowest_of) {
        (None, _) => Some("it is computed".to_string()),
        (Some(s), Some(other)) => Some(format!(
            "it is written for {} and is the lowest of {other}",
            s.scope.words()
        )),
        (Some(s), None) if s.removal.is_none() => Some("it cannot be cut out cleanly".to_string()),
        (Some(_), None) => None,
    };
    match (why, d.site.and_then(|s| s.removal.clone())) {
        (None, Some(range)) => edits.push(Edit {
            range,
            text: String::new(),
            change: format!(
                "dropped '{}': a second hardware marker (kept the lowest, '{}')",
                d.name, d.lowest
            ),
            line: pos.line,
        }),
        (Some(why), _) => left.push(format!(
            "{display}:{}: '{}' is a second hardware marker of {} (the lowest is \
             '{}'), but {why}: not edited",
            pos.line, d.name, d.nodeid, d.lowest
        )),
        (None, None) => {}
    }
}

fn pos_line(node: Node<'_>) -> u32 {
    u32::try_from(node.start_position().row + 1).unwrap_or(u32::MAX)
}

/// Whether `a` asks for more than `b`: more GPUs, a larger value.
fn more(a: &Want, b: &Want) -> bool {
    match (a, b) {
        (Want::Rename(_, x), Want::Rename(_, y)) => x > y,
        (Want::Value(x, _), Want::Value(y, _)) => x > y,
        _ => true,
    }
}
