//! The static marker lint: the tests of a project found and their markers
//! resolved from source, in parallel, with nothing imported, then checked by
//! the very rules collection applies (`validate::resolve` and
//! `validate::check`, on the taxonomy `Engine::load` builds). What the source
//! cannot tell is reported as unresolved and left to collection.

pub mod collect;
pub mod conftest;
pub mod discover;
pub mod literal;
pub mod marks;
pub mod params;
pub mod pytest_config;
pub mod report;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tree_sitter::{Parser, Tree};

use crate::engine::Engine;
use crate::error::Result;
use crate::lint::collect::{Rules, StaticTest};
use crate::lint::marks::{Pos, Unresolved};
use crate::taxonomy::{Resolved, Taxonomy};
use crate::validate::{self, code, Problem};

/// Markers the source cannot tell (left to collection-time validation).
pub const UNRESOLVED: &str = "DYN900";
/// A file that does not parse.
pub const SYNTAX: &str = "DYN901";

const UNRESOLVED_FIX: &str = "spell the markers out where the test is defined (@pytest.mark.NAME), \
     or leave this test to collection-time validation";
const SYNTAX_FIX: &str = "fix the syntax error: pytest cannot import this file either";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// What to lint, and how.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub invocation_dir: PathBuf,
    pub paths: Vec<PathBuf>,
    pub rootdir: Option<PathBuf>,
    pub inifile: Option<PathBuf>,
    /// `--dynamo-config`: wins over the ini option `dynamo_config`.
    pub dynamo_config: Option<PathBuf>,
    /// Unresolved markers are errors, not warnings.
    pub strict_unresolved: bool,
}

/// One finding at one place, shared by every test it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file, relative to the invocation directory when under it.
    pub path: String,
    pub pos: Pos,
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub fix: String,
    /// Node ids of the tests concerned, in collection order.
    pub tests: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub rootdir: String,
    pub findings: Vec<Finding>,
    pub files: usize,
    pub tests: usize,
    /// Tests whose markers are not all known statically.
    pub unresolved: usize,
    /// Node id of every test found, file by file.
    pub nodeids: Vec<String>,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == severity).count()
    }
}

/// A problem that marks added later could still fix (too few markers of a
/// category), as opposed to one no added marker removes (a typo, too many,
/// a contradiction).
pub fn is_shortfall(p: &Problem) -> bool {
    matches!(
        p.code,
        code::LIFECYCLE | code::HARDWARE | code::TYPE | code::CATEGORY_COUNT
    ) && (p.message.starts_with("no ") || p.message.ends_with(" needed"))
}

/// Whether adding this marker to a test can change no rule's outcome.
pub fn is_inert<S: std::hash::BuildHasher>(
    taxonomy: &Taxonomy,
    registered: &HashSet<String, S>,
    name: &str,
) -> bool {
    matches!(taxonomy.resolve(name), Resolved::Unknown)
        && (registered.contains(name) || taxonomy.suggest(name).is_none())
}

fn shown(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn new_parser() -> Parser {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("the bundled Python grammar matches tree-sitter");
    parser
}

enum Parsed {
    Tree(Vec<u8>, Tree),
    Failed(Pos, String),
}

fn parse(parser: &mut Parser, path: &Path) -> Parsed {
    let src = match std::fs::read(path) {
        Ok(s) => s,
        Err(e) => return Parsed::Failed(Pos { line: 1, col: 1 }, format!("cannot read the file: {e}")),
    };
    match parser.parse(&src, None) {
        Some(tree) => match collect::syntax_error(&tree, &src) {
            Some((pos, message)) => Parsed::Failed(pos, message),
            None => Parsed::Tree(src, tree),
        },
        None => Parsed::Failed(Pos { line: 1, col: 1 }, "the file could not be parsed".into()),
    }
}

/// A finding before it is grouped: one problem of one test.
type Key = (String, Pos, &'static str, Severity, String, String);

struct Checker<'a> {
    taxonomy: &'a Taxonomy,
    registered: &'a HashSet<String>,
    strict_unresolved: bool,
    invocation_dir: &'a Path,
}

impl Checker<'_> {
    fn check(&self, path: &str, test: &StaticTest, out: &mut Vec<(Key, String)>) {
        let r = validate::resolve(
            self.taxonomy,
            test.marks.iter().map(|m| m.name.as_str()),
            self.registered,
        );
        let mut problems = validate::check(self.taxonomy, &r);
        if !test.unresolved.is_empty() {
            // Markers the source cannot see may still fill a category.
            problems.retain(|p| !is_shortfall(p));
        }
        let spelled = |name: &str| {
            test.marks
                .iter()
                .find(|m| m.name == name)
                .map_or(test.pos, |m| m.pos)
        };
        let at = test.param_pos.unwrap_or(test.pos);
        for p in problems {
            let pos = if p.code == code::UNKNOWN {
                r.typos
                    .keys()
                    .find(|name| p.message == format!("unknown marker '{name}'"))
                    .map_or(at, |name| spelled(name))
            } else {
                at
            };
            out.push((
                (path.to_string(), pos, p.code, Severity::Error, p.message, p.fix),
                test.nodeid.clone(),
            ));
        }
        for (alias, canonical) in &r.aliases {
            out.push((
                (
                    path.to_string(),
                    spelled(alias),
                    code::ALIAS,
                    Severity::Warning,
                    format!("marker '{alias}' is a deprecated alias of '{canonical}'"),
                    format!("rename it to @pytest.mark.{canonical}"),
                ),
                test.nodeid.clone(),
            ));
        }
        let severity = if self.strict_unresolved {
            Severity::Error
        } else {
            Severity::Warning
        };
        let mut seen = HashSet::new();
        for u in &test.unresolved {
            if !seen.insert(u) {
                continue;
            }
            let file = u
                .file
                .as_deref()
                .map_or_else(|| path.to_string(), |f| shown(f, self.invocation_dir));
            out.push((
                (
                    file,
                    u.pos,
                    UNRESOLVED,
                    severity,
                    format!("{}; left to collection-time validation", u.reason),
                    UNRESOLVED_FIX.to_string(),
                ),
                test.nodeid.clone(),
            ));
        }
    }
}

/// Lint the tests the request names.
pub fn run(request: &Request) -> Result<Report> {
    let cwd = request.invocation_dir.as_path();
    let config = pytest_config::determine(
        cwd,
        &request.paths,
        request.inifile.as_deref(),
        request.rootdir.as_deref(),
    )?;
    let explicit = request
        .dynamo_config
        .clone()
        .or_else(|| config.dynamo_config().map(PathBuf::from));
    let engine = Engine::load(&config.rootdir, explicit.as_deref())?;
    let registered: HashSet<String> = config.registered_markers().into_iter().collect();
    let files = discover::discover(cwd, &request.paths, &config)?;
    let rules = Rules {
        python_classes: config.python_classes(),
        python_functions: config.python_functions(),
        collect_imported_tests: config.collect_imported_tests(),
    };
    let inert = |name: &str| is_inert(&engine.taxonomy, &registered, name);
    let mut findings: Vec<(Key, String)> = Vec::new();
    // Each conftest's effect on the tests of its directory and below.
    let conftests: Vec<(PathBuf, Vec<Unresolved>)> = files
        .conftests
        .par_iter()
        .map_init(new_parser, |parser, path| {
            let dir = path.parent().unwrap_or(cwd).to_path_buf();
            match parse(parser, path) {
                Parsed::Tree(src, tree) => (dir, conftest::effects(path, &src, &tree, &inert)),
                Parsed::Failed(pos, message) => (
                    dir,
                    vec![Unresolved {
                        file: Some(path.clone()),
                        pos,
                        reason: format!("conftest.py does not parse ({message})"),
                    }],
                ),
            }
        })
        .collect();
    let checker = Checker {
        taxonomy: &engine.taxonomy,
        registered: &registered,
        strict_unresolved: request.strict_unresolved,
        invocation_dir: cwd,
    };
    let per_file: Vec<(Vec<String>, usize, Vec<(Key, String)>)> = files
        .tests
        .par_iter()
        .map_init(new_parser, |parser, path| {
            let display = shown(path, cwd);
            let mut out = Vec::new();
            let (src, tree) = match parse(parser, path) {
                Parsed::Tree(src, tree) => (src, tree),
                Parsed::Failed(pos, message) => {
                    out.push((
                        (display, pos, SYNTAX, Severity::Error, message, SYNTAX_FIX.to_string()),
                        String::new(),
                    ));
                    return (Vec::new(), 0, out);
                }
            };
            let nodeid_file = shown(path, &config.rootdir);
            let mut tests = collect::collect(&src, &tree, &nodeid_file, &rules);
            let inherited: Vec<&Unresolved> = conftests
                .iter()
                .filter(|(dir, _)| path.starts_with(dir))
                .flat_map(|(_, u)| u)
                .collect();
            let mut unresolved = 0;
            for test in &mut tests {
                test.unresolved.extend(inherited.iter().map(|u| (*u).clone()));
                unresolved += usize::from(!test.unresolved.is_empty());
                checker.check(&display, test, &mut out);
            }
            (tests.into_iter().map(|t| t.nodeid).collect(), unresolved, out)
        })
        .collect();
    let mut nodeids = Vec::new();
    let mut unresolved = 0;
    for (ids, u, f) in per_file {
        nodeids.extend(ids);
        unresolved += u;
        findings.extend(f);
    }
    let mut grouped: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    for (key, nodeid) in findings {
        let entry = grouped.entry(key).or_default();
        if !nodeid.is_empty() {
            entry.push(nodeid);
        }
    }
    Ok(Report {
        rootdir: config.rootdir.to_string_lossy().into_owned(),
        findings: grouped
            .into_iter()
            .map(|((path, pos, code, severity, message, fix), tests)| Finding {
                path,
                pos,
                code,
                severity,
                message,
                fix,
                tests,
            })
            .collect(),
        files: files.tests.len(),
        tests: nodeids.len(),
        unresolved,
        nodeids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::resolve;

    #[test]
    fn shortfalls_are_told_from_certain_problems() {
        let t = Taxonomy::builtin();
        let registered: HashSet<String> = HashSet::new();
        let problems = |marks: &[&str]| validate::check(&t, &resolve(&t, marks.iter().copied(), &registered));
        for p in problems(&[]) {
            assert!(is_shortfall(&p), "{p:?}");
        }
        for p in problems(&["nightly", "unit", "gpu_1", "gpu_2"])
            .into_iter()
            .chain(problems(&["nightly", "unit", "gpu_0", "h100"]))
            .chain(problems(&["premerge", "gpu_0", "unit"]))
        {
            assert!(!is_shortfall(&p), "{p:?}");
        }
        let mut t2 = t.clone();
        t2.category_mut("framework").unwrap().min = 2;
        let p = validate::check(&t2, &resolve(&t2, ["nightly", "unit", "gpu_0", "vllm"].into_iter(), &registered));
        assert_eq!(p.len(), 1);
        assert!(is_shortfall(&p[0]), "{p:?}");
    }

    #[test]
    fn inert_markers_change_no_rule() {
        let t = Taxonomy::builtin();
        let registered: HashSet<String> = ["skip".to_string()].into();
        assert!(is_inert(&t, &registered, "skip"));
        assert!(is_inert(&t, &registered, "asyncio"));
        assert!(!is_inert(&t, &registered, "unit"));
        assert!(!is_inert(&t, &registered, "premerge"));
    }
}
