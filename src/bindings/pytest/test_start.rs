//! The start of each test, in one call from the protocol hook: its flow id
//! goes into the item's stash and `$DYNAMO_FLOW_ID` (so its log lines can
//! be followed across components); in an xdist worker its facts and gating exemption go onto
//! its reports, for the controller that writes the records.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::bindings::pytest::environ::Variable;
use crate::bindings::records::FactsTable;
use crate::records::facts::FlowIds;
use crate::records::facts_table::Table;
use crate::records::properties;

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
    exempt: Py<PyDict>,
}

#[pymethods]
impl TestStart {
    /// `table` holds the collected tests (None before collection ends, or
    /// for a run without one); `environ` is `os.environ` and `variable` the
    /// name the flow id goes under; `key` the stash key; `exempt` gating's
    /// exemptions by node id.
    #[new]
    fn new(
        table: Option<&FactsTable>,
        attach: bool,
        environ: Py<PyAny>,
        variable: Py<PyString>,
        key: Py<PyAny>,
        exempt: Py<PyDict>,
    ) -> Self {
        TestStart {
            table: table.map(FactsTable::table),
            attach,
            variable: Variable::new(environ, variable),
            key,
            exempt,
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
        let known = match &self.table {
            Some(table) if self.attach => table
                .get(&id)
                .map(|(facts, flow)| {
                    let facts = (intern!(py, properties::FACTS), facts);
                    properties()?.append(facts)?;
                    Ok::<_, PyErr>(flow)
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
        if self.attach {
            if let Some(why) = self.exempt.bind(py).get_item(&nodeid)? {
                properties()?.append((intern!(py, properties::EXEMPT), why))?;
            }
        }
        self.variable.set(py, &flow)?;
        item.getattr(intern!(py, "stash"))?
            .set_item(self.key.bind(py), PyString::new(py, &flow))
    }
}
