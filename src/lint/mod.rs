//! The static marker lint: the tests of a project found and their markers
//! resolved from source, in parallel, with nothing imported, then checked by
//! the very rules collection applies (`validate::resolve` and
//! `validate::check`, on the taxonomy `Engine::load` builds). What the source
//! cannot tell is reported as unresolved and left to collection.

mod bases;
mod classes;
mod collect;
mod conftest;
mod defs;
mod discover;
pub mod fix;
mod fixtures;
mod grammar;
mod ignore;
mod imports;
mod known;
mod literal;
mod marks;
mod params;
mod pytest_config;
pub mod report;
mod source;
mod syntax;

// Outside this folder (the bindings): `run`, `Request`, `LintReport`,
// `Finding` and `Severity` defined here, the report's formats (`report`) and
// the edits of `--fix` and `advise --apply` (`fix`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use regex::Regex;
use std::sync::LazyLock;
use tree_sitter::{Parser, Tree};

use crate::engine::Engine;
use crate::error::Result;
use crate::lint::bases::Modules;
use crate::lint::collect::{Context, Rules, StaticTest};
use crate::lint::fixtures::Fixture;
use crate::lint::ignore::{ConftestIgnore, Ignores};
use crate::lint::known::Unresolved;
use crate::lint::source::Pos;
use crate::taxonomy::validate::{self, code, Problem};
use crate::taxonomy::{Resolved, Taxonomy};

/// Markers the source cannot tell (left to collection-time validation).
pub const UNRESOLVED: &str = "DYN900";
/// A file that cannot be checked: it does not parse, cannot be read, is
/// not UTF-8 or nests too deeply.
pub const SYNTAX: &str = "DYN901";

/// How deeply a file's syntax tree may nest for the lint to check it. The
/// lint's walkers recurse over expressions; `CPython` 3.11 itself gives up
/// compiling at about this depth (3,000 terms of `a + a + ...`).
pub const MAX_DEPTH: usize = 3000;

/// The stack of the lint's worker threads: walkers recursing over a tree
/// [`MAX_DEPTH`] deep need more than rayon's default 2 MiB.
pub(crate) const WORKER_STACK: usize = 64 << 20;

const UNRESOLVED_FIX: &str =
    "spell the markers out where the test is defined (@pytest.mark.NAME), \
     or leave this test to collection-time validation";
const SYNTAX_FIX: &str = "fix the syntax error: pytest cannot import this file either";
const IGNORE_FIX: &str =
    "write collect_ignore / collect_ignore_glob as a list of strings at the top of the \
     conftest.py, or name the files to lint on the command line";

/// The test files pytest collects: those found, less those a conftest's
/// `collect_ignore` / `collect_ignore_glob` or `--ignore` / `--ignore-glob`
/// in `addopts` exclude (a path named on the command line is never excluded).
pub(crate) fn collected(
    files: &discover::Files,
    conftests: &[Conftest],
    config: &pytest_config::PytestConfig,
    cwd: &Path,
) -> Vec<PathBuf> {
    let (paths, globs) = ignore::from_addopts(&config.addopts());
    let ignores = Ignores {
        conftests: conftests
            .iter()
            .map(|c| (c.dir.as_path(), &c.ignore))
            .collect(),
        paths: paths
            .iter()
            .map(|p| ignore::normalize(&cwd.join(p)))
            .collect(),
        globs: globs
            .iter()
            .map(|g| {
                ignore::normalize(&cwd.join(g))
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
    };
    files
        .tests
        .iter()
        .filter(|t| {
            files
                .roots
                .iter()
                .filter(|r| t.starts_with(r))
                .max_by_key(|r| r.components().count())
                .is_none_or(|root| ignores.keeps(t, root))
        })
        .cloned()
        .collect()
}
const UNREADABLE_FIX: &str =
    "make the file readable, or keep it out of the test paths (`norecursedirs`, `python_files`)";
const NOT_UTF8_FIX: &str =
    "save the file as UTF-8 (the lint reads no other encoding; its tests are left to collection)";
const NOT_REGULAR_FIX: &str = "a test module is a regular file: remove this one or rename it \
     so that `python_files` does not match it";
const TOO_DEEP_FIX: &str = "split the deeply nested expression into named parts; \
     its tests are left to collection";

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
    /// How many tests it concerns: more than `tests` lists when one of them
    /// stands for parametrizations too many to expand (`name[*]`).
    pub count: u64,
}

#[derive(Debug, Clone, Default)]
pub struct LintReport {
    pub rootdir: String,
    pub findings: Vec<Finding>,
    pub files: usize,
    pub tests: usize,
    /// Tests whose markers are not all known statically.
    pub unresolved: usize,
    /// Node id of every test found, file by file.
    pub nodeids: Vec<String>,
    /// Where the configuration came from, when it is not the rootdir's own.
    pub config_note: Option<String>,
}

impl LintReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
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

pub(crate) fn shown(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

pub(crate) enum Parsed {
    Tree(Vec<u8>, Tree),
    /// Where, what, and the fix.
    Failed(Pos, String, &'static str),
}

/// What a path that is no regular file is, for the message.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Where the first byte that is not UTF-8 is (1-based line and column in bytes).
fn not_utf8(src: &[u8], error: &std::str::Utf8Error) -> (Pos, String) {
    let at = error.valid_up_to();
    let before = &src[..at];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let col = at
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    (
        Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        },
        format!(
            "the file is not UTF-8 (byte 0x{:02x}), so it cannot be checked",
            src[at]
        ),
    )
}

pub(crate) fn parse(parser: &mut Parser, path: &Path) -> Parsed {
    let start = Pos { line: 1, col: 1 };
    // Only regular files are opened: reading a FIFO waits for a writer forever.
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Parsed::Failed(
                start,
                format!("{}, not a module: skipped", file_kind(&meta)),
                NOT_REGULAR_FIX,
            )
        }
        Ok(_) => {}
        Err(e) => {
            return Parsed::Failed(start, format!("cannot read the file: {e}"), UNREADABLE_FIX)
        }
    }
    match std::fs::read(path) {
        Ok(src) => parse_source(parser, src),
        Err(e) => Parsed::Failed(start, format!("cannot read the file: {e}"), UNREADABLE_FIX),
    }
}

/// A module's bytes parsed, or why they cannot be checked.
fn parse_source(parser: &mut Parser, src: Vec<u8>) -> Parsed {
    let start = Pos { line: 1, col: 1 };
    if let Err(e) = std::str::from_utf8(&src) {
        let (pos, message) = not_utf8(&src, &e);
        return Parsed::Failed(pos, message, NOT_UTF8_FIX);
    }
    let Some(tree) = parser.parse(&src, None) else {
        return Parsed::Failed(start, "the file could not be parsed".into(), SYNTAX_FIX);
    };
    if let Some((pos, message)) = syntax::syntax_error(&tree, &src) {
        return Parsed::Failed(pos, message, SYNTAX_FIX);
    }
    if let Some(pos) = syntax::too_deep(&tree, MAX_DEPTH) {
        return Parsed::Failed(
            pos,
            format!("too deeply nested to check: more than {MAX_DEPTH} levels of syntax"),
            TOO_DEEP_FIX,
        );
    }
    Parsed::Tree(src, tree)
}

/// A finding before it is grouped: one problem of one test.
type Key = (String, Pos, &'static str, Severity, String, String);

struct Checker<'a> {
    taxonomy: &'a Taxonomy,
    registered: &'a HashSet<String>,
    strict_unresolved: bool,
    invocation_dir: &'a Path,
    modules: &'a Modules,
}

impl Checker<'_> {
    fn check(&self, path: &str, src: &[u8], test: &StaticTest, out: &mut Vec<(Key, String)>) {
        let r = validate::resolve(
            self.taxonomy,
            test.marks.iter().map(|m| m.name.as_str()),
            self.registered,
        );
        let mut problems = validate::check(self.taxonomy, &r);
        let vram = &self.taxonomy.vram_marker;
        if let Some(mark) = test.marks.iter().find(|m| &m.name == vram) {
            problems.extend(validate::vram_problem(
                self.taxonomy,
                &r,
                vram_at(src, mark.pos, vram),
            ));
        }
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
                (
                    path.to_string(),
                    pos,
                    p.code,
                    Severity::Error,
                    p.message,
                    p.fix,
                ),
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
        self.unresolved(path, test, out);
    }

    /// One finding per distinct reason the test's markers cannot all be
    /// known, in the file the reason is in.
    fn unresolved(&self, path: &str, test: &StaticTest, out: &mut Vec<(Key, String)>) {
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

/// The number a VRAM marker is written with, read from the source at the
/// marker's position (`vram_gib(3.8)`, `vram_gib(gib=3.8)`); None when it
/// is not a literal number there, which leaves the rule to collection.
fn vram_at(src: &[u8], pos: Pos, name: &str) -> Option<f64> {
    static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^\s*\(\s*(?:gib\s*=\s*)?([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)\s*[,)]")
            .expect("valid regex")
    });
    let text = std::str::from_utf8(src).ok()?;
    let line = text
        .lines()
        .nth(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
    let rest = line
        .get(usize::try_from(pos.col).ok()?.checked_sub(1)?..)?
        .strip_prefix(name)?;
    NUMBER.captures(rest)?.get(1)?.as_str().parse().ok()
}

/// What one test file gave: its tests' node ids, how many are unresolved,
/// and its findings before grouping.
#[derive(Default)]
struct FileResult {
    nodeids: Vec<String>,
    /// Tests, parametrizations counted.
    tests: u64,
    unresolved: u64,
    findings: Vec<(Key, String)>,
    /// Node ids that stand for more than one test, and for how many.
    counts: HashMap<String, u64>,
}

/// The conftests above `path`, nearest first.
pub(crate) fn conftests_above<'c>(conftests: &'c [Conftest], path: &Path) -> Vec<&'c Conftest> {
    let mut above: Vec<&Conftest> = conftests
        .iter()
        .filter(|c| path.starts_with(&c.dir))
        .collect();
    above.sort_by_key(|c| std::cmp::Reverse(c.dir.components().count()));
    above
}

/// What the test module at `path` sees from outside it: the fixtures of the
/// conftests `above` it and the project's modules.
pub(crate) fn context<'a>(
    path: &'a Path,
    above: &[&'a Conftest],
    modules: &'a Modules,
) -> Context<'a> {
    Context {
        path: Some(path),
        conftest_fixtures: above.iter().map(|c| c.fixtures.as_slice()).collect(),
        opaque_fixtures: above.iter().filter_map(|c| c.opaque.as_ref()).collect(),
        modules: Some(modules),
        depth: 0,
    }
}

/// What a conftest does to the tests below it.
pub(crate) struct Conftest {
    path: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) effects: Vec<Unresolved>,
    /// Its `collect_ignore` and `collect_ignore_glob`.
    ignore: ConftestIgnore,
    /// Its fixtures (their `params` may parametrize the tests below).
    pub(crate) fixtures: Vec<Fixture>,
    /// Where it gets fixtures the lint cannot read.
    pub(crate) opaque: Option<Unresolved>,
    /// A conftest that does not parse fails the whole collection.
    syntax_error: Option<(Pos, String, &'static str)>,
}

pub(crate) fn conftests(paths: &[PathBuf], inert: &(dyn Fn(&str) -> bool + Sync)) -> Vec<Conftest> {
    paths
        .par_iter()
        .map_init(grammar::parser, |parser, path| {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            match parse(parser, path) {
                Parsed::Tree(src, tree) => {
                    let root = tree.root_node();
                    let scope = source::Scope::new(&src, root);
                    let body = source::statements(root);
                    let mut fixtures = fixtures::module_fixtures(&scope, &body);
                    for f in &mut fixtures {
                        f.file = Some(path.clone());
                    }
                    let opaque = fixtures::opaque_source(&scope, &body).map(|mut u| {
                        u.file = Some(path.clone());
                        u
                    });
                    Conftest {
                        path: path.clone(),
                        dir,
                        effects: conftest::effects(path, &src, &tree, inert),
                        ignore: ignore::read(&src, &tree),
                        fixtures,
                        opaque,
                        syntax_error: None,
                    }
                }
                Parsed::Failed(pos, message, fix) => Conftest {
                    path: path.clone(),
                    dir,
                    effects: Vec::new(),
                    ignore: ConftestIgnore::default(),
                    fixtures: Vec::new(),
                    opaque: None,
                    syntax_error: Some((pos, message, fix)),
                },
            }
        })
        .collect()
}

impl Checker<'_> {
    fn file(
        &self,
        parser: &mut Parser,
        path: &Path,
        rootdir: &Path,
        rules: &Rules,
        conftests: &[Conftest],
    ) -> FileResult {
        let display = shown(path, self.invocation_dir);
        let mut out = FileResult::default();
        let (src, tree) = match parse(parser, path) {
            Parsed::Tree(src, tree) => (src, tree),
            Parsed::Failed(pos, message, fix) => {
                let key = (
                    display,
                    pos,
                    SYNTAX,
                    Severity::Error,
                    message,
                    fix.to_string(),
                );
                out.findings.push((key, String::new()));
                return out;
            }
        };
        let above = conftests_above(conftests, path);
        let ctx = context(path, &above, self.modules);
        let mut tests = collect::collect_in(&src, &tree, &shown(path, rootdir), rules, &ctx);
        let inherited: Vec<&Unresolved> = above.iter().flat_map(|c| &c.effects).collect();
        for test in &mut tests {
            test.unresolved
                .extend(inherited.iter().map(|u| (*u).clone()));
            out.tests += test.count;
            if !test.unresolved.is_empty() {
                out.unresolved += test.count;
            }
            if test.count > 1 {
                out.counts.insert(test.nodeid.clone(), test.count);
            }
            self.check(&display, &src, test, &mut out.findings);
        }
        out.nodeids = tests.into_iter().map(|t| t.nodeid).collect();
        out
    }
}

/// What the conftests themselves get: a syntax error, a `collect_ignore`
/// that cannot be read.
fn conftest_findings(
    conftests: &[Conftest],
    cwd: &Path,
    strict_unresolved: bool,
    grouped: &mut BTreeMap<Key, Vec<String>>,
) {
    let severity = if strict_unresolved {
        Severity::Error
    } else {
        Severity::Warning
    };
    for c in conftests {
        if let Some(u) = &c.ignore.unresolved {
            let key = (
                shown(&c.path, cwd),
                u.pos,
                UNRESOLVED,
                severity,
                format!("{}; left to collection", u.reason),
                IGNORE_FIX.to_string(),
            );
            grouped.entry(key).or_default();
        }
        if let Some((pos, message, fix)) = &c.syntax_error {
            let key = (
                shown(&c.path, cwd),
                *pos,
                SYNTAX,
                Severity::Error,
                message.clone(),
                (*fix).to_string(),
            );
            grouped.entry(key).or_default();
        }
    }
}

/// Lint the tests the request names, on worker threads with stacks deep
/// enough for the walkers.
pub fn run(request: &Request) -> Result<LintReport> {
    on_deep_stacks(|| lint(request))
}

/// Run `work` on a pool whose threads have stacks deep enough for the
/// walkers (a pool of rayon's default stacks when one with deeper ones
/// cannot be made).
pub(crate) fn on_deep_stacks<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new()
        .stack_size(WORKER_STACK)
        .build()
    {
        Ok(pool) => pool.install(work),
        Err(_) => work(),
    }
}

/// What the lint and `--fix` read of a project before its files: pytest's
/// configuration, the taxonomy, the registered markers and the test files.
pub(crate) struct Project {
    pub config: pytest_config::PytestConfig,
    pub engine: Engine,
    pub registered: HashSet<String>,
    pub files: discover::Files,
}

pub(crate) fn load_project(request: &Request) -> Result<Project> {
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
    Ok(Project {
        config,
        engine,
        registered,
        files,
    })
}

fn lint(request: &Request) -> Result<LintReport> {
    let cwd = request.invocation_dir.as_path();
    let Project {
        config,
        engine,
        registered,
        files,
    } = load_project(request)?;
    let rules = Rules {
        python_classes: config.python_classes(),
        python_functions: config.python_functions(),
        collect_imported_tests: config.collect_imported_tests(),
    };
    let inert = |name: &str| is_inert(&engine.taxonomy, &registered, name);
    let mut conftests = conftests(&files.conftests, &inert);
    let tests = collected(&files, &conftests, &config, cwd);
    // A conftest.py of an ignored directory is never loaded.
    conftests.retain(|c| tests.iter().any(|t| t.starts_with(&c.dir)));
    let modules = Modules::new(&config.rootdir);
    let checker = Checker {
        taxonomy: &engine.taxonomy,
        registered: &registered,
        strict_unresolved: request.strict_unresolved,
        invocation_dir: cwd,
        modules: &modules,
    };
    let collected_files = tests.len();
    let per_file: Vec<FileResult> = tests
        .par_iter()
        .map_init(grammar::parser, |parser, path| {
            checker.file(parser, path, &config.rootdir, &rules, &conftests)
        })
        .collect();
    let mut grouped: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    conftest_findings(&conftests, cwd, request.strict_unresolved, &mut grouped);
    let total = merge(per_file, &mut grouped);
    Ok(LintReport {
        rootdir: config.rootdir.to_string_lossy().into_owned(),
        findings: findings(grouped, &total.counts),
        files: collected_files,
        tests: usize::try_from(total.tests).unwrap_or(usize::MAX),
        unresolved: usize::try_from(total.unresolved).unwrap_or(usize::MAX),
        nodeids: total.nodeids,
        config_note: engine.note.as_ref().map(|note| {
            format!(
                "{note}: {}",
                engine.source.as_deref().unwrap_or("built-in defaults")
            )
        }),
    })
}

/// The files' results together: their findings grouped by what they say,
/// with the tests each concerns.
fn merge(per_file: Vec<FileResult>, grouped: &mut BTreeMap<Key, Vec<String>>) -> FileResult {
    let mut total = FileResult {
        nodeids: Vec::new(),
        tests: 0,
        unresolved: 0,
        findings: Vec::new(),
        counts: HashMap::new(),
    };
    for result in per_file {
        total.nodeids.extend(result.nodeids);
        total.tests = total.tests.saturating_add(result.tests);
        total.unresolved = total.unresolved.saturating_add(result.unresolved);
        total.counts.extend(result.counts);
        for (key, nodeid) in result.findings {
            let entry = grouped.entry(key).or_default();
            if !nodeid.is_empty() {
                entry.push(nodeid);
            }
        }
    }
    total
}

/// One finding per group, counting the tests a node id stands for.
fn findings(grouped: BTreeMap<Key, Vec<String>>, counts: &HashMap<String, u64>) -> Vec<Finding> {
    grouped
        .into_iter()
        .map(
            |((path, pos, code, severity, message, fix), tests)| Finding {
                count: tests.iter().fold(0u64, |n, t| {
                    n.saturating_add(counts.get(t).copied().unwrap_or(1))
                }),
                path,
                pos,
                code,
                severity,
                message,
                fix,
                tests,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taxonomy::validate::resolve;

    #[test]
    fn shortfalls_are_told_from_certain_problems() {
        let t = Taxonomy::builtin();
        let registered: HashSet<String> = HashSet::new();
        let problems =
            |marks: &[&str]| validate::check(&t, &resolve(&t, marks.iter().copied(), &registered));
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
        let p = validate::check(
            &t2,
            &resolve(
                &t2,
                ["nightly", "unit", "gpu_0", "vllm"].into_iter(),
                &registered,
            ),
        );
        assert_eq!(p.len(), 1);
        assert!(is_shortfall(&p[0]), "{p:?}");
    }

    fn project(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("dynamo-lint-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    fn lint(root: &Path, strict: bool) -> LintReport {
        run(&Request {
            invocation_dir: root.to_path_buf(),
            strict_unresolved: strict,
            ..Request::default()
        })
        .unwrap()
    }

    /// `(test, code, line, col, severity)` of every finding.
    fn seen(report: &LintReport) -> Vec<(String, &'static str, u32, u32, Severity)> {
        let mut out = Vec::new();
        for f in &report.findings {
            let tests = if f.tests.is_empty() {
                vec![String::new()]
            } else {
                f.tests.clone()
            };
            for t in tests {
                let short = t.rsplit("::").next().unwrap_or("").to_string();
                out.push((short, f.code, f.pos.line, f.pos.col, f.severity));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_rule_is_found_where_it_is_written() {
        let root = project(
            "rules",
            &[
                (
                    "pyproject.toml",
                    "[tool.pytest-dynamo.aliases]\nold_nightly = \"nightly\"\n[tool.pytest-dynamo.taxonomy.component]\nmax = 1\n",
                ),
                (
                    "tests/test_rules.py",
                    "import pytest\n\
                     @pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_lifecycle(): pass\n\
                     @pytest.mark.nightly\n@pytest.mark.unit\ndef test_hardware(): pass\n\
                     @pytest.mark.nightly\n@pytest.mark.gpu_0\ndef test_type(): pass\n\
                     @pytest.mark.nightly\n@pytest.mark.gpu_0\n@pytest.mark.unit\n@pytest.mark.h100\ndef test_contradiction(): pass\n\
                     @pytest.mark.nightly\n@pytest.mark.gpu1\n@pytest.mark.unit\ndef test_typo(): pass\n\
                     @pytest.mark.nightly\n@pytest.mark.gpu_0\n@pytest.mark.unit\n@pytest.mark.router\n@pytest.mark.api\ndef test_count(): pass\n\
                     @pytest.mark.old_nightly\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_alias(): pass\n",
                ),
                ("tests/test_syntax.py", "def test_x(:\n    pass\n"),
                (
                    "tests/hooked/conftest.py",
                    "import pytest\ndef pytest_itemcollected(item):\n    item.add_marker(pytest.mark.unit)\n",
                ),
                (
                    "tests/hooked/test_hooked.py",
                    "import pytest\n@pytest.mark.nightly\n@pytest.mark.gpu_0\ndef test_hooked(): pass\n",
                ),
            ],
        );
        let report = lint(&root, false);
        let e = Severity::Error;
        let w = Severity::Warning;
        assert_eq!(
            seen(&report),
            [
                (String::new(), SYNTAX, 1, 12, e),
                ("test_alias".into(), code::ALIAS, 26, 14, w),
                ("test_contradiction".into(), code::CONTRADICTION, 15, 5, e),
                ("test_count".into(), code::CATEGORY_COUNT, 25, 5, e),
                ("test_hardware".into(), code::HARDWARE, 7, 5, e),
                ("test_hooked".into(), UNRESOLVED, 3, 5, w),
                ("test_lifecycle".into(), code::LIFECYCLE, 4, 5, e),
                ("test_type".into(), code::TYPE, 10, 5, e),
                ("test_typo".into(), code::UNKNOWN, 17, 14, e),
            ]
        );
        let hook = report
            .findings
            .iter()
            .find(|f| f.code == UNRESOLVED)
            .unwrap();
        assert_eq!(hook.path, "tests/hooked/conftest.py");
        assert_eq!((report.files, report.tests, report.unresolved), (3, 8, 1));
        assert_eq!(report.count(Severity::Error), 7);
        let strict = lint(&root, true);
        assert_eq!(strict.count(Severity::Error), 8);
    }

    /// The front end on one source, as a worker thread runs it: parsed,
    /// refused with a finding, or collected; never a panic.
    fn front_end(src: Vec<u8>) -> std::result::Result<usize, (Pos, String)> {
        std::thread::Builder::new()
            .stack_size(WORKER_STACK)
            .spawn(move || {
                let mut parser = grammar::parser();
                match parse_source(&mut parser, src) {
                    Parsed::Tree(src, tree) => {
                        let rules = Rules {
                            python_classes: vec!["Test".into()],
                            python_functions: vec!["test".into()],
                            collect_imported_tests: true,
                        };
                        Ok(collect::collect(&src, &tree, "t.py", &rules).len())
                    }
                    Parsed::Failed(pos, message, _) => Err((pos, message)),
                }
            })
            .expect("a thread")
            .join()
            .expect("no panic")
    }

    /// Python-ish pieces that nest: the walkers recurse into each.
    fn nested(kinds: &[u8]) -> String {
        let mut inner = String::from("pytest.mark.unit");
        for k in kinds {
            inner = match k % 6 {
                0 => format!("[{inner}]"),
                1 => format!("({inner})"),
                2 => format!("{inner}.with_args(1)"),
                3 => format!("[m] + {inner}"),
                4 => format!("{inner} + [m]"),
                _ => format!("pytest.param(1, marks={inner})"),
            };
        }
        inner
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        #[test]
        fn property_arbitrary_bytes_never_panic(src in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = front_end(src);
        }

        #[test]
        fn property_arbitrary_text_never_panics(src in "(?s)[ -~\n\t\u{e9}\u{65e5}]{0,300}") {
            let _ = front_end(src.into_bytes());
        }

        #[test]
        fn property_arbitrary_nesting_is_checked_or_refused(
            kinds in proptest::collection::vec(0u8..6, 0..2500),
            place in 0u8..3,
        ) {
            let value = nested(&kinds);
            let src = match place {
                0 => format!("import pytest\nm = pytest.mark.unit\npytestmark = {value}\ndef test_a(): pass\n"),
                1 => format!("import pytest\nm = pytest.mark.unit\n@pytest.mark.parametrize('x', [{value}])\ndef test_a(x): pass\n"),
                _ => format!("import pytest\nm = pytest.mark.unit\nclass TestA:\n    pytestmark = {value}\n    def test_a(self): pass\n"),
            };
            match front_end(src.into_bytes()) {
                Ok(tests) => proptest::prop_assert!(tests >= 1),
                Err((_, message)) => proptest::prop_assert!(
                    message.starts_with("too deeply nested") || message.starts_with("invalid syntax"),
                    "{message}"
                ),
            }
        }
    }

    #[test]
    fn the_depth_limit_is_what_the_walkers_can_take() {
        // Just under the limit, each recursive construct on the stack a
        // worker thread has; just over, one finding.
        for piece in 0..6u8 {
            // Levels of syntax per piece: `x.with_args(1)` is a call of an
            // attribute, `pytest.param(1, marks=x)` a call, its arguments
            // and a keyword argument.
            let per_level = match piece {
                2 => 2,
                5 => 3,
                _ => 1,
            };
            let under = vec![piece; (MAX_DEPTH - 20) / per_level];
            let src = format!(
                "import pytest\nm = 1\npytestmark = {}\ndef test_a(): pass\n",
                nested(&under)
            );
            let under = front_end(src.into_bytes());
            assert!(under.is_ok(), "piece {piece}: {under:?}");
            let over = vec![piece; MAX_DEPTH];
            let src = format!(
                "import pytest\nm = 1\npytestmark = {}\ndef test_a(): pass\n",
                nested(&over)
            );
            let (pos, message) = front_end(src.into_bytes()).unwrap_err();
            assert!(
                message.starts_with("too deeply nested to check"),
                "piece {piece}: {message}"
            );
            assert_eq!(pos.line, 3);
        }
    }

    #[test]
    fn a_vram_number_is_read_where_the_marker_is_written() {
        let src = b"@pytest.mark.vram_gib(2.5)\n@pytest.mark.vram_gib( gib = 0 )\n@pytest.mark.vram_gib(X)\n";
        let at = |line| Pos { line, col: 14 };
        assert_eq!(vram_at(src, at(1), "vram_gib"), Some(2.5));
        assert_eq!(vram_at(src, at(2), "vram_gib"), Some(0.0));
        assert_eq!(vram_at(src, at(3), "vram_gib"), None);
        assert_eq!(vram_at(src, at(1), "other"), None);
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
