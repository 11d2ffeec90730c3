//! pytest's own configuration, as far as the lint needs it: the rootdir and
//! config file found the way pytest finds them, and the ini values that decide
//! which files, classes and functions are tests and which markers are
//! registered. Read without pytest, so the lint needs nothing installed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Config files pytest looks for in each directory, in its order of precedence.
const NAMES: &[&str] = &[
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
];

/// Markers pytest itself registers.
pub const BUILTIN_MARKERS: &[&str] = &[
    "filterwarnings",
    "parametrize",
    "skip",
    "skipif",
    "tryfirst",
    "trylast",
    "usefixtures",
    "xfail",
];

/// An ini value: the text of an ini file, or a TOML list.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    List(Vec<String>),
}

/// The configuration of one pytest project.
#[derive(Debug, Clone, PartialEq)]
pub struct PytestConfig {
    pub rootdir: PathBuf,
    pub inifile: Option<PathBuf>,
    values: HashMap<String, Value>,
}

impl PytestConfig {
    /// No configuration file: pytest's defaults.
    pub fn defaults(rootdir: PathBuf) -> Self {
        PytestConfig {
            rootdir,
            inifile: None,
            values: HashMap::new(),
        }
    }

    /// An `args`-type option (whitespace separated, or a TOML list).
    fn args(&self, key: &str, default: &[&str]) -> Vec<String> {
        match self.values.get(key) {
            None => default.iter().map(|s| (*s).to_string()).collect(),
            Some(Value::List(items)) => items.clone(),
            // Checked when the file is read (`check_args`).
            Some(Value::Text(text)) => split_args(text).unwrap_or_default(),
        }
    }

    /// A `linelist`-type option (one entry a line, or a TOML list).
    fn lines(&self, key: &str) -> Vec<String> {
        match self.values.get(key) {
            None => Vec::new(),
            Some(Value::List(items)) => items.clone(),
            Some(Value::Text(text)) => text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        }
    }

    fn string(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Value::Text(t) => Some(t.trim().to_string()).filter(|t| !t.is_empty()),
            Value::List(items) => items.first().cloned(),
        }
    }

    pub fn python_files(&self) -> Vec<String> {
        self.args("python_files", &["test_*.py", "*_test.py"])
    }

    pub fn python_classes(&self) -> Vec<String> {
        self.args("python_classes", &["Test"])
    }

    pub fn python_functions(&self) -> Vec<String> {
        self.args("python_functions", &["test"])
    }

    pub fn testpaths(&self) -> Vec<String> {
        self.args("testpaths", &[])
    }

    pub fn norecursedirs(&self) -> Vec<String> {
        self.args(
            "norecursedirs",
            &[
                "*.egg",
                ".*",
                "_darcs",
                "build",
                "CVS",
                "dist",
                "node_modules",
                "venv",
                "{arch}",
            ],
        )
    }

    /// pytest collects test functions and classes imported into a module
    /// unless `collect_imported_tests` is false.
    pub fn collect_imported_tests(&self) -> bool {
        self.string("collect_imported_tests")
            .is_none_or(|v| !matches!(v.to_ascii_lowercase().as_str(), "false" | "0" | "no"))
    }

    /// The `addopts` ini option, split as pytest splits it.
    pub fn addopts(&self) -> Vec<String> {
        self.args("addopts", &[])
    }

    /// The `dynamo_config` ini option of pytest-dynamo.
    pub fn dynamo_config(&self) -> Option<String> {
        self.string("dynamo_config")
    }

    /// Marker names registered with the ini `markers` option, plus pytest's own.
    pub fn registered_markers(&self) -> Vec<String> {
        let mut names: Vec<String> = BUILTIN_MARKERS.iter().map(|s| (*s).to_string()).collect();
        for line in self.lines("markers") {
            let name = line.split(':').next().unwrap_or("");
            let name = name.split('(').next().unwrap_or("").trim();
            if !name.is_empty() {
                names.push(name.to_string());
            }
        }
        names
    }
}

/// Python's `shlex.split(text)` (POSIX rules, as pytest reads `args`
/// options), by the `shlex` crate. Python's default has no comments, the
/// crate's has: `#` goes through as a placeholder and comes back. None for
/// an unclosed quote or a trailing backslash, which Python refuses too.
fn split_args(text: &str) -> Option<Vec<String>> {
    // A private-use character: not in any real ini value.
    const HASH: char = '\u{F8FF}';
    if text.contains(HASH) {
        return shlex::split(text);
    }
    let words = shlex::split(&text.replace('#', "\u{F8FF}"))?;
    Some(words.into_iter().map(|w| w.replace(HASH, "#")).collect())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), &e))
}

/// The sections of an ini file, the way pytest's `iniconfig` reads them.
fn parse_ini(path: &Path, text: &str) -> Result<HashMap<String, HashMap<String, String>>> {
    let shown = path.display().to_string();
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for (index, raw) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let line = raw.trim_end();
        let first = line.trim_start().chars().next();
        if line.is_empty() || matches!(first, Some('#' | ';')) {
            continue;
        }
        let bad = |what: &str| {
            Error::config(
                &shown,
                format!("line {}: {what}", index + 1),
                "fix the file so pytest can read it",
            )
        };
        if line.starts_with('[') {
            let head = line.split(['#', ';']).next().unwrap_or("").trim_end();
            if let Some(name) = head.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                sections.entry(name.to_string()).or_default();
                section = Some(name.to_string());
                last_key = None;
                continue;
            }
        }
        if line.starts_with(char::is_whitespace) {
            let (Some(s), Some(k)) = (&section, &last_key) else {
                return Err(bad("unexpected value continuation"));
            };
            let value = sections
                .get_mut(s)
                .and_then(|m| m.get_mut(k))
                .expect("the key was inserted");
            if !value.is_empty() {
                value.push('\n');
            }
            value.push_str(line.trim());
            continue;
        }
        let split = match (line.find('='), line.find(':')) {
            (Some(e), Some(c)) if c < e => c,
            (Some(e), _) => e,
            (None, Some(c)) => c,
            (None, None) => return Err(bad(&format!("unexpected line: {line:?}"))),
        };
        let Some(s) = &section else {
            return Err(bad("no section header defined"));
        };
        let key = line[..split].trim().to_string();
        let value = line[split + 1..].trim().to_string();
        sections
            .get_mut(s)
            .expect("the section exists")
            .insert(key.clone(), value);
        last_key = Some(key);
    }
    Ok(sections)
}

fn ini_section(path: &Path, section: &str) -> Result<Option<HashMap<String, Value>>> {
    let sections = parse_ini(path, &read(path)?)?;
    Ok(sections.get(section).map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), Value::Text(v.clone())))
            .collect()
    }))
}

fn toml_value(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::Text(s.clone()),
        toml::Value::Array(items) => Value::List(
            items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        ),
        other => Value::Text(other.to_string()),
    }
}

fn toml_table(table: &toml::Table) -> HashMap<String, Value> {
    table
        .iter()
        .map(|(k, v)| (k.clone(), toml_value(v)))
        .collect()
}

fn parse_toml(path: &Path) -> Result<toml::Table> {
    let shown = path.display().to_string();
    toml::from_str(&read(path)?).map_err(|e| {
        Error::config(
            &shown,
            format!("invalid TOML\n{}", e.to_string().trim_end()),
            "fix the file so pytest can read it",
        )
    })
}

/// `[tool.pytest]` (native TOML) or `[tool.pytest.ini_options]`.
fn tool_pytest(doc: &toml::Table) -> Option<HashMap<String, Value>> {
    let table = doc.get("tool")?.as_table()?.get("pytest")?.as_table()?;
    if let Some(ini) = table.get("ini_options").and_then(toml::Value::as_table) {
        return Some(toml_table(ini));
    }
    let native: toml::Table = table
        .iter()
        .filter(|(k, _)| k.as_str() != "ini_options")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!native.is_empty()).then(|| toml_table(&native))
}

/// The pytest configuration in one file, None when the file holds none.
fn load_file(path: &Path) -> Result<Option<HashMap<String, Value>>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let suffix = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match name {
        "pytest.toml" | ".pytest.toml" => Ok(Some(
            parse_toml(path)?
                .get("pytest")
                .and_then(toml::Value::as_table)
                .map(toml_table)
                .unwrap_or_default(),
        )),
        "pytest.ini" | ".pytest.ini" => Ok(Some(ini_section(path, "pytest")?.unwrap_or_default())),
        "pyproject.toml" => Ok(tool_pytest(&parse_toml(path)?)),
        "setup.cfg" => ini_section(path, "tool:pytest"),
        _ => match suffix {
            "ini" => ini_section(path, "pytest"),
            "cfg" => ini_section(path, "tool:pytest"),
            "toml" => {
                let doc = parse_toml(path)?;
                Ok(tool_pytest(&doc).or_else(|| {
                    doc.get("pytest")
                        .and_then(toml::Value::as_table)
                        .map(toml_table)
                }))
            }
            _ => Err(Error::config(
                path.display().to_string(),
                "unsupported config file format",
                "name a .ini, .cfg or .toml file",
            )),
        },
    }
}

fn common_ancestor(invocation_dir: &Path, dirs: &[PathBuf]) -> PathBuf {
    let mut common: Option<PathBuf> = None;
    for dir in dirs {
        common = Some(match common {
            None => dir.clone(),
            Some(c) => c
                .ancestors()
                .find(|a| dir.starts_with(a))
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
        });
    }
    common.unwrap_or_else(|| invocation_dir.to_path_buf())
}

type Found = (PathBuf, PathBuf, HashMap<String, Value>);

fn locate(start: &Path) -> Result<(Option<Found>, Option<PathBuf>)> {
    let mut pyproject = None;
    for base in start.ancestors() {
        for name in NAMES {
            let path = base.join(name);
            if !path.is_file() {
                continue;
            }
            if *name == "pyproject.toml" && pyproject.is_none() {
                pyproject = Some(path.clone());
            }
            if let Some(values) = load_file(&path)? {
                return Ok((Some((base.to_path_buf(), path, values)), pyproject));
            }
        }
    }
    Ok((None, pyproject))
}

/// Find the rootdir and config file as pytest does for these arguments:
/// `-c` wins, then the first config file upwards from the arguments' common
/// ancestor, then a `pyproject.toml`, a `setup.py`, or the ancestor itself.
pub fn determine(
    invocation_dir: &Path,
    args: &[PathBuf],
    inifile: Option<&Path>,
    rootdir: Option<&Path>,
) -> Result<PytestConfig> {
    let dirs: Vec<PathBuf> = args
        .iter()
        .map(|a| invocation_dir.join(a))
        .filter(|a| a.exists())
        .map(|a| {
            if a.is_dir() {
                a
            } else {
                a.parent().map(Path::to_path_buf).unwrap_or(a)
            }
        })
        .collect();
    let ancestor = common_ancestor(invocation_dir, &dirs);
    let mut config = if let Some(file) = inifile {
        let file = invocation_dir.join(file);
        if !file.is_file() {
            return Err(Error::config(
                "-c/--config-file",
                format!("config file {} not found", file.display()),
                "name an existing pytest config file",
            ));
        }
        let values = load_file(&file)?.unwrap_or_default();
        PytestConfig {
            rootdir: file.parent().unwrap_or(invocation_dir).to_path_buf(),
            inifile: Some(file),
            values,
        }
    } else {
        match locate(&ancestor)? {
            (Some((root, file, values)), _) => PytestConfig {
                rootdir: root,
                inifile: Some(file),
                values,
            },
            (None, Some(pyproject)) => PytestConfig {
                rootdir: pyproject.parent().unwrap_or(&ancestor).to_path_buf(),
                inifile: Some(pyproject),
                values: HashMap::new(),
            },
            (None, None) => {
                let root = ancestor
                    .ancestors()
                    .find(|a| a.join("setup.py").is_file())
                    .map_or_else(
                        || {
                            common_ancestor(
                                invocation_dir,
                                &[invocation_dir.to_path_buf(), ancestor.clone()],
                            )
                        },
                        Path::to_path_buf,
                    );
                PytestConfig::defaults(root)
            }
        }
    };
    if let Some(dir) = rootdir {
        let dir = invocation_dir.join(dir);
        if !dir.is_dir() {
            return Err(Error::config(
                "--rootdir",
                format!("directory {} not found", dir.display()),
                "name an existing directory",
            ));
        }
        config.rootdir = dir;
    }
    check_args(&config)?;
    Ok(config)
}

/// The `args` options pytest splits with `shlex.split`: one it cannot split
/// stops pytest too, so it is an error here, not a guess.
fn check_args(config: &PytestConfig) -> Result<()> {
    for key in [
        "addopts",
        "python_files",
        "python_classes",
        "python_functions",
        "testpaths",
        "norecursedirs",
    ] {
        if let Some(Value::Text(text)) = config.values.get(key) {
            if split_args(text).is_none() {
                let source = config
                    .inifile
                    .as_ref()
                    .map_or_else(|| key.to_string(), |f| f.display().to_string());
                return Err(Error::config(
                    source,
                    format!("ini option '{key}' has an unclosed quote or a trailing backslash: {text}"),
                    "close the quote (or escape it with a backslash): pytest splits this option as a POSIX shell does",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dynamo-lint-cfg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn defaults_are_pytests() {
        let c = PytestConfig::defaults(PathBuf::from("/x"));
        assert_eq!(c.python_files(), ["test_*.py", "*_test.py"]);
        assert_eq!(c.python_classes(), ["Test"]);
        assert_eq!(c.python_functions(), ["test"]);
        assert!(c.registered_markers().contains(&"parametrize".to_string()));
        assert!(c.collect_imported_tests());
    }

    #[test]
    fn pyproject_ini_options_are_read() {
        let dir = tmp("pyproject");
        std::fs::write(
            dir.join("pyproject.toml"),
            "[tool.pytest.ini_options]\npython_files = \"check_*.py\"\npython_functions = [\"check\", \"*_spec\"]\nmarkers = [\"custom(x): a custom marker\", \"other\"]\ndynamo_config = \"d.toml\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("tests/sub")).unwrap();
        let c = determine(&dir, &[PathBuf::from("tests/sub")], None, None).unwrap();
        assert_eq!(c.rootdir, dir);
        assert_eq!(c.python_files(), ["check_*.py"]);
        assert_eq!(c.python_functions(), ["check", "*_spec"]);
        let registered = c.registered_markers();
        assert!(registered.contains(&"custom".to_string()));
        assert!(registered.contains(&"other".to_string()));
        assert_eq!(c.dynamo_config().as_deref(), Some("d.toml"));
    }

    #[test]
    fn ini_files_win_in_pytests_order() {
        let dir = tmp("ini");
        std::fs::write(dir.join("pyproject.toml"), "[project]\nname = \"x\"\n").unwrap();
        std::fs::write(
            dir.join("tox.ini"),
            "[tox]\nenv = 1\n[pytest]\nmarkers =\n    slow: slow tests\n    gpu_x\npython_classes = Check Test\n",
        )
        .unwrap();
        let c = determine(&dir, &[], None, None).unwrap();
        assert_eq!(c.inifile.as_deref(), Some(dir.join("tox.ini").as_path()));
        assert_eq!(c.python_classes(), ["Check", "Test"]);
        assert!(c.registered_markers().contains(&"gpu_x".to_string()));
        std::fs::write(
            dir.join("setup.cfg"),
            "[tool:pytest]\npython_files = t_*.py\n",
        )
        .unwrap();
        std::fs::write(dir.join("pytest.ini"), "[pytest]\npython_files = p_*.py\n").unwrap();
        let c = determine(&dir, &[], None, None).unwrap();
        assert_eq!(c.python_files(), ["p_*.py"]);
    }

    #[test]
    fn a_pyproject_without_a_table_still_sets_the_rootdir() {
        let dir = tmp("bare");
        std::fs::write(dir.join("pyproject.toml"), "[project]\nname = \"x\"\n").unwrap();
        std::fs::create_dir_all(dir.join("t")).unwrap();
        let c = determine(&dir.join("t"), &[], None, None).unwrap();
        assert_eq!(c.rootdir, dir);
        assert_eq!(c.python_files(), ["test_*.py", "*_test.py"]);
    }

    #[test]
    fn broken_config_files_are_errors_naming_the_file() {
        let dir = tmp("broken");
        std::fs::write(dir.join("pytest.ini"), "[pytest]\nthis is not ini\n").unwrap();
        let err = determine(&dir, &[], None, None).unwrap_err().to_string();
        assert!(err.contains("pytest.ini: line 2"), "{err}");
        let err = determine(&dir, &[], Some(Path::new("nope.ini")), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not found"), "{err}");
    }

    #[test]
    fn args_split_like_shlex() {
        let split = |t: &str| split_args(t).unwrap();
        assert_eq!(split(" a  'b c' \"d\" "), ["a", "b c", "d"]);
        assert!(split("  ").is_empty());
        // As Python's shlex.split: backslash escapes, quotes joined to a word,
        // `#` an ordinary character, an unclosed quote refused.
        assert_eq!(split(r"-k a\ b"), ["-k", "a b"]);
        assert_eq!(split(r#"--x="a b"c 'd\e'"#), ["--x=a bc", r"d\e"]);
        assert_eq!(split(r#""a\"b""#), [r#"a"b"#]);
        assert_eq!(split("-p no:x #c"), ["-p", "no:x", "#c"]);
        assert_eq!(split_args("'open"), None);
    }

    #[test]
    fn an_unclosed_quote_in_addopts_is_an_error_naming_the_option() {
        let dir = tmp("quote");
        std::fs::write(dir.join("pytest.ini"), "[pytest]\naddopts = -k 'not slow\n").unwrap();
        let err = determine(&dir, &[], None, None).unwrap_err().to_string();
        assert!(
            err.contains("pytest.ini") && err.contains("'addopts'"),
            "{err}"
        );
        std::fs::write(
            dir.join("pytest.ini"),
            "[pytest]\naddopts = -k 'not slow' --x=a\\ b\n",
        )
        .unwrap();
        let c = determine(&dir, &[], None, None).unwrap();
        assert_eq!(c.addopts(), ["-k", "not slow", "--x=a b"]);
    }
}
