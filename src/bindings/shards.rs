//! The Python face of the shards: one call with the whole selection.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::error::Error;
use crate::records;
use crate::shards::{self, Group};

/// Where each test goes, and each shard's test count and estimated seconds.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct ShardPlan {
    pub(crate) inner: shards::Partition,
}

#[pymethods]
impl ShardPlan {
    /// Per test handed in, in order: its shard, 0-based.
    #[getter]
    fn shard_of(&self) -> Vec<usize> {
        self.inner.shard_of.clone()
    }

    /// Per shard: estimated seconds.
    #[getter]
    fn loads(&self) -> Vec<f64> {
        self.inner.loads.clone()
    }

    /// Per shard: how many tests.
    #[getter]
    fn counts(&self) -> Vec<usize> {
        self.inner.counts.clone()
    }

    /// How many tests had a recorded duration.
    #[getter]
    fn known(&self) -> usize {
        self.inner.known
    }

    /// The seconds assumed for a test without a recorded duration.
    #[getter]
    fn assumed(&self) -> f64 {
        self.inner.assumed
    }
}

/// Split `nodeids` into `count` shards balanced by the durations file (a
/// pytest-split `.test_durations`; None: none known), keeping `group`
/// ("test", "class" or "module") together. Raises `ConfigError` for a bad
/// durations file, `ValueError` for a bad group or count.
#[pyfunction]
#[pyo3(signature = (nodeids, count, group, durations=None))]
pub fn partition_shards(
    py: Python<'_>,
    nodeids: Vec<String>,
    count: usize,
    group: &str,
    durations: Option<PathBuf>,
) -> PyResult<ShardPlan> {
    let group = shard_group(group, count)?;
    let inner = py.detach(|| {
        let known = match &durations {
            Some(path) => records::read_durations(path)?,
            None => BTreeMap::new(),
        };
        let refs: Vec<&str> = nodeids.iter().map(String::as_str).collect();
        Ok::<_, Error>(shards::partition(
            &refs,
            |id| known.get(id).copied(),
            count,
            group,
        ))
    })?;
    Ok(ShardPlan { inner })
}

/// The grouping a partition keeps together; `ValueError` for an unknown
/// group or a count of 0.
pub(crate) fn shard_group(group: &str, count: usize) -> PyResult<Group> {
    let group = match group {
        "test" => Group::Test,
        "class" => Group::Class,
        "module" => Group::Module,
        other => {
            return Err(PyValueError::new_err(format!(
                "group '{other}' is not one of test, class, module"
            )))
        }
    };
    if count == 0 {
        return Err(PyValueError::new_err("the shard count must be at least 1"));
    }
    Ok(group)
}
