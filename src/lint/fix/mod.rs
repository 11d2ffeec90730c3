//! `pytest-dynamo lint --fix` and `pytest-dynamo advise --apply`: test files
//! edited by byte ranges of the syntax tree the lint builds, so formatting,
//! comments, tabs and line ends stay as they are. Only literal markers are
//! edited; a marker that is computed (a variable, `getattr`, a helper, a
//! conftest hook) or written for more tests than the edit concerns is
//! reported and left alone. An edit whose result does not parse is refused
//! for the whole file. Nothing here writes files: the caller does, from
//! `FileFix::fixed`.

mod plan;
mod sites;

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tree_sitter::Parser;

use crate::analytics::advice::advise::Advice;
use crate::error::Result;
use crate::lint::bases::Modules;
use crate::lint::collect;
use crate::lint::{
    collected, conftests, conftests_above, context, grammar, is_inert, parse, shown, Parsed,
    Request,
};

/// One replacement of a byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
    /// What it does, for the report (`renamed 'gpu1' to 'gpu_1'`).
    pub change: String,
    pub line: u32,
}

/// One file's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFix {
    /// As the report shows it: relative to the invocation directory.
    pub path: String,
    pub absolute: PathBuf,
    pub original: String,
    pub fixed: String,
    /// `line: what`, in line order.
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixReport {
    /// Files with a change, in path order.
    pub files: Vec<FileFix>,
    /// `path:line: what was not edited, and why`.
    pub left: Vec<String>,
    /// `path:line: why the file could not be read or parsed`: nothing done to it.
    pub errors: Vec<String>,
    /// Test files looked at.
    pub checked: usize,
}

/// What to edit for.
pub enum Goal<'a> {
    /// The lint's fixable findings: misspelled markers with one clear
    /// suggestion, deprecated aliases, a second hardware marker.
    Lint,
    /// The markers `pytest-dynamo advise` recommends.
    Advice(&'a Advice),
}

/// `edits` applied to `src`; overlapping edits keep the first (a removal
/// that contains a rename keeps the removal). Returns the text and the edits kept.
pub fn apply(src: &str, mut edits: Vec<Edit>) -> (String, Vec<Edit>) {
    // Removals (widest) first among edits starting at one place.
    edits.sort_by(|a, b| {
        a.range
            .start
            .cmp(&b.range.start)
            .then(b.range.end.cmp(&a.range.end))
    });
    edits.dedup_by(|b, a| a.range == b.range && a.text == b.text);
    let mut kept: Vec<Edit> = Vec::new();
    for e in edits {
        match kept.last() {
            // Inside the previous edit's range: already decided by it.
            Some(last) if e.range.start < last.range.end => {}
            // Two insertions at one place both stay, in order.
            _ => kept.push(e),
        }
    }
    let mut out = String::with_capacity(src.len() + 64);
    let mut at = 0;
    for e in &kept {
        out.push_str(&src[at..e.range.start]);
        out.push_str(&e.text);
        at = e.range.end;
    }
    out.push_str(&src[at..]);
    (out, kept)
}

/// Edit the test files the request names (as the lint finds them) for
/// `goal`, on worker threads with the lint's deep stacks.
pub fn fix(request: &Request, goal: &Goal<'_>) -> Result<FixReport> {
    crate::lint::on_deep_stacks(|| run(request, goal))
}

fn run(request: &Request, goal: &Goal<'_>) -> Result<FixReport> {
    let cwd = request.invocation_dir.as_path();
    let crate::lint::Project {
        config,
        engine,
        registered,
        files,
    } = crate::lint::load_project(request)?;
    let gpu = crate::gpu::Rules::new(&engine.config.gpu, &engine.taxonomy, engine.source_name())?;
    let rules = collect::Rules {
        python_classes: config.python_classes(),
        python_functions: config.python_functions(),
        collect_imported_tests: config.collect_imported_tests(),
    };
    let inert = |name: &str| is_inert(&engine.taxonomy, &registered, name);
    let mut conftests = conftests(&files.conftests, &inert);
    let mut tests = collected(&files, &conftests, &config, cwd);
    conftests.retain(|c| tests.iter().any(|t| t.starts_with(&c.dir)));
    let rootdir = config.rootdir.as_path();
    let mut report = FixReport::default();
    if let Goal::Advice(advice) = goal {
        advised_files(advice, &mut tests, rootdir, &mut report.left);
    }
    report.checked = tests.len();
    let modules = Modules::new(rootdir);
    let fixer = Fixer {
        plan: plan::Planner {
            taxonomy: &engine.taxonomy,
            registered: &registered,
            gpu: &gpu,
            goal,
        },
        cwd,
        rootdir,
        rules: &rules,
        conftests: &conftests,
        modules: &modules,
    };
    let results: Vec<plan::FileResult> = tests
        .par_iter()
        .map_init(grammar::parser, |parser, path| fixer.file(parser, path))
        .collect();
    for r in results {
        report.left.extend(r.left);
        report.errors.extend(r.errors);
        report.files.extend(r.fix);
    }
    report.files.sort_by(|a, b| a.path.cmp(&b.path));
    report.left.sort();
    report.left.dedup();
    Ok(report)
}

/// Only the files of the advised tests are edited; an advised file the lint
/// does not find is said.
fn advised_files(
    advice: &Advice,
    tests: &mut Vec<PathBuf>,
    rootdir: &Path,
    left: &mut Vec<String>,
) {
    let wanted: std::collections::BTreeSet<&str> = advice
        .tests
        .iter()
        .map(|t| t.nodeid.split("::").next().unwrap_or(&t.nodeid))
        .collect();
    let found: HashSet<String> = tests.iter().map(|t| shown(t, rootdir)).collect();
    for file in &wanted {
        if !found.contains(*file) {
            left.push(format!(
                "{file}: advised tests are in this file, but it is not among the test files \
                 found (run from the rootdir, or name it on the command line)"
            ));
        }
    }
    tests.retain(|t| wanted.contains(shown(t, rootdir).as_str()));
}

/// What every file's edits are planned with.
struct Fixer<'a> {
    plan: plan::Planner<'a>,
    cwd: &'a Path,
    rootdir: &'a Path,
    rules: &'a collect::Rules,
    conftests: &'a [crate::lint::Conftest],
    modules: &'a Modules,
}

impl Fixer<'_> {
    /// One test file: its tests found as the lint finds them (with what the
    /// conftests above it do), then its edits planned.
    fn file(&self, parser: &mut Parser, path: &Path) -> plan::FileResult {
        let display = shown(path, self.cwd);
        let (src, tree) = match parse(parser, path) {
            Parsed::Tree(src, tree) => (src, tree),
            Parsed::Failed(pos, message, _) => {
                return plan::FileResult::error(format!(
                    "{display}:{}: {message}: not edited",
                    pos.line
                ))
            }
        };
        let above = conftests_above(self.conftests, path);
        let ctx = context(path, &above, self.modules);
        let mut found =
            collect::collect_in(&src, &tree, &shown(path, self.rootdir), self.rules, &ctx);
        for t in &mut found {
            t.unresolved
                .extend(above.iter().flat_map(|c| c.effects.iter().cloned()));
        }
        self.plan.file(parser, path, &display, src, &tree, &found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(range: Range<usize>, text: &str) -> Edit {
        Edit {
            range,
            text: text.into(),
            change: String::new(),
            line: 1,
        }
    }

    #[test]
    fn edits_apply_in_order_and_a_removal_wins_over_what_it_contains() {
        let src = "abcdefgh";
        let (out, kept) = apply(
            src,
            vec![
                edit(6..7, "G"),
                edit(1..2, "B"),
                edit(2..5, ""),
                edit(3..4, "D"),
                edit(0..0, ">"),
            ],
        );
        assert_eq!(out, ">aBfGh");
        assert_eq!(kept.len(), 4);
        // Two insertions at one place both stay.
        let (out, _) = apply("ab", vec![edit(1..1, "x"), edit(1..1, "y")]);
        assert_eq!(out, "axyb");
    }
}
