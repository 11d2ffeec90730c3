//! Retries (spec: "Flakiness Management: automatic retries"): a test marked
//! `flaky` is retried up to N times, `flaky(reruns=N)` or `flaky(N)`, else the
//! run's default. Failed-then-passed is the outcome `flaky`.

use crate::marker::{Item, Mark, MarkValue};
use crate::taxonomy::{Resolved, Taxonomy};

pub const MARKER: &str = "flaky";
/// Keyword arguments pytest-rerunfailures gives its `flaky` marker.
const RERUNFAILURES_ONLY: &[&str] = &["reruns_delay", "condition", "only_rerun", "rerun_except"];

fn is_flaky(taxonomy: &Taxonomy, mark: &Mark) -> bool {
    mark.name == MARKER
        || matches!(taxonomy.resolve(&mark.name), Resolved::Alias(d) if d.name == MARKER)
}

/// How many times to retry the item: None when it is not marked flaky.
/// `default` is the run's `dynamo_reruns`. The closest marker wins (pytest
/// lists the function's own first).
pub fn reruns(taxonomy: &Taxonomy, item: &Item, default: u32) -> Result<Option<u32>, String> {
    let Some(mark) = item.marks.iter().find(|m| is_flaky(taxonomy, m)) else {
        return Ok(None);
    };
    for key in mark.kwargs.keys() {
        if key == "reruns" {
            continue;
        }
        let hint = if RERUNFAILURES_ONLY.contains(&key.as_str()) {
            "it is an option of pytest-rerunfailures: install that plugin, or remove it"
        } else {
            "pytest-dynamo's retries take only reruns=N"
        };
        return Err(format!(
            "@pytest.mark.flaky({key}=...) is not understood: {hint}"
        ));
    }
    let value = mark.kwargs.get("reruns").or(mark.args.first());
    match value {
        None => Ok(Some(default)),
        Some(MarkValue::Int(n)) => u32::try_from(*n)
            .map(Some)
            .map_err(|_| format!("@pytest.mark.flaky(reruns={n}): reruns must be 0 or more")),
        Some(other) => Err(format!(
            "@pytest.mark.flaky(reruns={}): reruns must be a whole number",
            show(other)
        )),
    }
}

fn show(v: &MarkValue) -> String {
    match v {
        MarkValue::None => "None".into(),
        MarkValue::Bool(b) => if *b { "True" } else { "False" }.into(),
        MarkValue::Int(i) => i.to_string(),
        MarkValue::Float(f) => f.to_string(),
        MarkValue::Str(s) => format!("{s:?}"),
        MarkValue::Other(r) => r.clone(),
    }
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
