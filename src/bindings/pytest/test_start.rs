//! The start of each test, in one call from the protocol hook: its flow id
//! goes into the item's stash and `$DYNAMO_FLOW_ID` (so its log lines can
//! be followed across components); in an xdist worker its facts and gating exemption go onto
//! its reports, for the controller that writes the records.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::bindings::pytest::environ::Variable;
use crate::bindings::records::FactsTable;
use crate::records::properties;
use crate::records::{FactsTable as Table, FlowIds};

/// Starts each test, one call each: from the collected tests' table once
/// there is one, else as a test no table knows.
#[pyclass(frozen, module = "pytest_dynamo._core")]
pub struct TestStart {
    table: Option<Arc<Table>>,
    /// Put each test's facts on its reports (an xdist worker).
    attach: bool,
    /// `$DYNAMO_FLOW_ID`.
    variable: Variable,
    key: Py<PyAny>,
}

#[pymethods]
impl TestStart {
    /// `table` holds the collected tests (None before collection ends, or
    /// for a run without one); `environ` is `os.environ` and `variable` the
    /// name the flow id goes under; `key` the stash key.
    #[new]
    fn new(
        table: Option<&FactsTable>,
        attach: bool,
        environ: Py<PyAny>,
        variable: Py<PyString>,
        key: Py<PyAny>,
    ) -> Self {
        TestStart {
            table: table.map(FactsTable::table),
            attach,
            variable: Variable::new(environ, variable),
            key,
        }
    }

    /// Start `item`: give it its flow id (a new one for a test collection
    /// did not see), and in an xdist worker its facts and exemption.
    fn test(&self, item: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = item.py();
        let nodeid = item.getattr(intern!(py, "nodeid"))?;
        let id = nodeid.cast::<PyString>()?.to_cow()?;
        let properties = || -> PyResult<Bound<'_, PyList>> {
            Ok(item
                .getattr(intern!(py, "user_properties"))?
                .cast_into::<PyList>()?)
        };
        // Why the test does not gate, from the table that knows it: the
        // pipeline's word or the quarantine's, never a round trip through Python.
        let mut exempt = None;
        let known = match &self.table {
            Some(table) if self.attach => table
                .get(&id)
                .map(|attached| {
                    let facts = (intern!(py, properties::FACTS), attached.facts);
                    properties()?.append(facts)?;
                    exempt = attached.exempt;
                    Ok::<_, PyErr>(attached.flow_id)
                })
                .transpose()?,
            Some(table) => table.flow(&id),
            None => None,
        };
        let flow = if let Some(flow) = known {
            flow
        } else {
            let flow = FlowIds::fresh();
            properties()?.append((intern!(py, properties::FLOW_ID), &flow))?;
            flow
        };
        if let Some(why) = exempt {
            properties()?.append((intern!(py, properties::EXEMPT), why))?;
        }
        self.variable.set(py, &flow)?;
        item.getattr(intern!(py, "stash"))?
            .set_item(self.key.bind(py), PyString::new(py, &flow))
    }
}
