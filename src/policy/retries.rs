//! Automatic retries of flaky tests: a test marked
//! `flaky` is retried up to N times, `flaky(reruns=N)` or `flaky(N)`, else the
//! run's default. Failed-then-passed is the outcome `flaky`.

use crate::taxonomy::{Item, Mark, MarkValue};
use crate::taxonomy::{Resolved, Taxonomy};

pub const MARKER: &str = "flaky";
/// Keyword arguments pytest-rerunfailures gives its `flaky` marker.
const RERUNFAILURES_ONLY: &[&str] = &["reruns_delay", "condition", "only_rerun", "rerun_except"];
/// More retries than this are a typo: `reruns=10**20` retried a failing
/// test forever under pytest-rerunfailures.
pub const MAX_RERUNS: u32 = 100;
/// pytest-rerunfailures sleeps this long between attempts at most.
pub const MAX_DELAY_S: f64 = 3600.0;

/// The plugin that retries the run's flaky tests: each reads other arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retrier {
    /// Our own retries: `flaky`, `flaky(N)`, `flaky(reruns=N)`.
    Dynamo,
    /// pytest-rerunfailures: `flaky(reruns, reruns_delay, condition=, only_rerun=, rerun_except=)`.
    Rerunfailures,
    /// The `flaky` plugin: `flaky(max_runs, min_passes, rerun_filter)`.
    Flaky,
}

impl Retrier {
    /// By the plugin name pytest knows it under (None: ours).
    pub fn named(name: Option<&str>) -> Option<Retrier> {
        match name {
            None => Some(Retrier::Dynamo),
            Some("rerunfailures") => Some(Retrier::Rerunfailures),
            Some("flaky") => Some(Retrier::Flaky),
            Some(_) => None,
        }
    }

    /// `(positional parameters, keyword-only parameters)`.
    fn signature(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Retrier::Dynamo => (&["reruns"], &[]),
            Retrier::Rerunfailures => (&["reruns", "reruns_delay"], RERUNFAILURES_ONLY),
            Retrier::Flaky => (&["max_runs", "min_passes", "rerun_filter"], &[]),
        }
    }

    fn who(self) -> &'static str {
        match self {
            Retrier::Dynamo => "pytest-dynamo",
            Retrier::Rerunfailures => "pytest-rerunfailures",
            Retrier::Flaky => "the flaky plugin",
        }
    }
}

fn is_flaky(taxonomy: &Taxonomy, mark: &Mark) -> bool {
    mark.name == MARKER
        || matches!(taxonomy.resolve(&mark.name), Resolved::Alias(d) if d.name == MARKER)
}

/// `(message, fix)` of a flaky marker's arguments that cannot be used.
pub type ArgumentError = (String, String);

/// Check a flaky marker's arguments against what `retrier` reads; the
/// explicit retry count when it gives one (ours and pytest-rerunfailures).
pub fn check_arguments(mark: &Mark, retrier: Retrier) -> Result<Option<u32>, ArgumentError> {
    let call = spelled(mark);
    check_names(mark, retrier, &call)?;
    let args = Arguments {
        mark,
        positional: retrier.signature().0,
        call: &call,
    };
    match retrier {
        Retrier::Dynamo => args.whole("reruns", 0, MAX_RERUNS),
        Retrier::Rerunfailures => {
            let reruns = args.whole("reruns", 0, MAX_RERUNS)?;
            args.delay("reruns_delay")?;
            Ok(reruns)
        }
        Retrier::Flaky => {
            let runs = args.whole("max_runs", 1, MAX_RERUNS + 1)?;
            args.whole("min_passes", 1, runs.unwrap_or(MAX_RERUNS + 1))?;
            Ok(None)
        }
    }
}

/// The arguments' count and names against what `retrier` reads: none
/// ignored, none unknown, none given twice. `call` is the marker as written.
fn check_names(mark: &Mark, retrier: Retrier, call: &str) -> Result<(), ArgumentError> {
    let (positional, keyword_only) = retrier.signature();
    let takes = || {
        positional
            .iter()
            .chain(keyword_only)
            .map(|p| format!("{p}="))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if mark.args.len() > positional.len() {
        return Err((
            format!(
                "{call}: {} reads at most {} positional argument(s) ({}), the rest would be ignored",
                retrier.who(),
                positional.len(),
                positional.join(", ")
            ),
            format!("keep only what it reads: {}", takes()),
        ));
    }
    for key in mark.kwargs.keys() {
        let key = key.as_str();
        if positional.contains(&key) || keyword_only.contains(&key) {
            continue;
        }
        let fix = if retrier == Retrier::Dynamo && RERUNFAILURES_ONLY.contains(&key) {
            "it is an option of pytest-rerunfailures: install that plugin, or remove it".to_string()
        } else if retrier == Retrier::Dynamo {
            "pytest-dynamo's retries take only reruns=N".to_string()
        } else {
            format!("{} takes {}", retrier.who(), takes())
        };
        return Err((format!("{call}: {key}=... is not understood"), fix));
    }
    for name in positional.iter().take(mark.args.len()) {
        if mark.kwargs.contains_key(*name) {
            return Err((
                format!("{call}: {name} is given twice, by position and as {name}="),
                format!("give it once: @pytest.mark.{}({name}=...)", mark.name),
            ));
        }
    }
    Ok(())
}

/// A flaky marker's arguments read by name, given by position or keyword.
struct Arguments<'a> {
    mark: &'a Mark,
    /// The retrier's positional parameters, in order.
    positional: &'a [&'a str],
    /// The marker as written, for messages.
    call: &'a str,
}

impl Arguments<'_> {
    fn value(&self, name: &str) -> Option<&MarkValue> {
        self.mark.kwargs.get(name).or_else(|| {
            self.positional
                .iter()
                .position(|p| *p == name)
                .and_then(|i| self.mark.args.get(i))
        })
    }

    /// A whole number from `low` to `high`, if given.
    fn whole(&self, name: &str, low: u32, high: u32) -> Result<Option<u32>, ArgumentError> {
        let Some(v) = self.value(name) else {
            return Ok(None);
        };
        match v {
            MarkValue::Int(n) if (i64::from(low)..=i64::from(high)).contains(n) => {
                Ok(Some(u32::try_from(*n).unwrap_or(high)))
            }
            _ => Err((
                format!(
                    "{}: {name} must be a whole number, {low} or more and at most {high}, not {}",
                    self.call,
                    show(v)
                ),
                format!("write {name}=N with N from {low} to {high}"),
            )),
        }
    }

    /// pytest-rerunfailures' delay between attempts, if given: seconds from
    /// 0 to `MAX_DELAY_S`.
    fn delay(&self, name: &str) -> Result<(), ArgumentError> {
        let Some(v) = self.value(name) else {
            return Ok(());
        };
        match v.as_f64() {
            Some(s) if !matches!(v, MarkValue::Str(_)) && (0.0..=MAX_DELAY_S).contains(&s) => {
                Ok(())
            }
            _ => Err((
                format!(
                    "{}: {name} must be a number of seconds from 0 to {MAX_DELAY_S:.0}, not {}",
                    self.call,
                    show(v)
                ),
                format!("write {name}=S, e.g. {name}=1.5"),
            )),
        }
    }
}

/// How many times to retry the item: None when it is not marked flaky.
/// `default` is the run's `dynamo_reruns`. The closest marker wins (pytest
/// lists the function's own first).
pub fn reruns(taxonomy: &Taxonomy, item: &Item, default: u32) -> Result<Option<u32>, String> {
    let Some(mark) = item.marks.iter().find(|m| is_flaky(taxonomy, m)) else {
        return Ok(None);
    };
    match check_arguments(mark, Retrier::Dynamo) {
        Ok(n) => Ok(Some(n.unwrap_or(default))),
        Err((message, fix)) => Err(format!("{message}: {fix}")),
    }
}

/// A marker argument as Python would write it.
pub fn show(v: &MarkValue) -> String {
    match v {
        MarkValue::None => "None".into(),
        MarkValue::Bool(b) => if *b { "True" } else { "False" }.into(),
        MarkValue::Int(i) => i.to_string(),
        MarkValue::Float(f) => f.to_string(),
        MarkValue::Str(s) => format!("{s:?}"),
        MarkValue::Other(r) => r.clone(),
    }
}

/// The call as the test wrote it: `@pytest.mark.flaky(1, reruns=2)`.
pub fn spelled(mark: &Mark) -> String {
    let args: Vec<String> = mark
        .args
        .iter()
        .map(show)
        .chain(mark.kwargs.iter().map(|(k, v)| format!("{k}={}", show(v))))
        .collect();
    format!("@pytest.mark.{}({})", mark.name, args.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(mark: Mark) -> Item {
        Item {
            nodeid: "t.py::a".into(),
            line: 1,
            marks: vec![Mark::named("nightly").into(), mark.into()],
        }
    }

    fn with(args: Vec<MarkValue>, kwargs: &[(&str, MarkValue)]) -> Mark {
        Mark {
            name: MARKER.into(),
            args,
            kwargs: kwargs
                .iter()
                .map(|(k, v)| ((*k).into(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn the_marker_or_the_default_sets_the_count() {
        let t = Taxonomy::builtin();
        assert_eq!(reruns(&t, &Item::new("t.py::a", &["unit"]), 2), Ok(None));
        assert_eq!(reruns(&t, &item(Mark::named(MARKER)), 2), Ok(Some(2)));
        let m = with(vec![], &[("reruns", MarkValue::Int(5))]);
        assert_eq!(reruns(&t, &item(m), 2), Ok(Some(5)));
        assert_eq!(
            reruns(&t, &item(with(vec![MarkValue::Int(0)], &[])), 2),
            Ok(Some(0))
        );
    }

    #[test]
    fn an_alias_of_flaky_counts() {
        let mut t = Taxonomy::builtin();
        t.add_alias("unstable", MARKER);
        let m = Mark::named("unstable");
        assert_eq!(reruns(&t, &item(m), 1), Ok(Some(1)));
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let t = Taxonomy::builtin();
        let err = reruns(
            &t,
            &item(with(vec![], &[("reruns", MarkValue::Int(-1))])),
            2,
        )
        .unwrap_err();
        assert!(err.contains("0 or more"), "{err}");
        let err = reruns(&t, &item(with(vec![MarkValue::Str("3".into())], &[])), 2).unwrap_err();
        assert!(err.contains("whole number"), "{err}");
        let err = reruns(
            &t,
            &item(with(vec![], &[("reruns_delay", MarkValue::Int(1))])),
            2,
        )
        .unwrap_err();
        assert!(err.contains("pytest-rerunfailures"), "{err}");
        let err = reruns(
            &t,
            &item(with(vec![], &[("max_runs", MarkValue::Int(1))])),
            2,
        )
        .unwrap_err();
        assert!(err.contains("only reruns=N"), "{err}");
    }
}
