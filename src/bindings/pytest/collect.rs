//! Reading pytest's collected items straight from their nodes, in one call:
//! each item's marks in `iter_markers` order (its own, then each parent's up
//! the chain: class, module, package, session).
//!
//! Done here rather than in Python because on a large suite the Python side
//! made a tuple per item and per mark, and those short-lived containers set
//! off extra full garbage collections over pytest's whole node tree: more
//! time than everything else the plugin does at collection. Reading the
//! nodes from Rust makes no Python object at all; a parent's marks and each
//! mark object are converted once and shared by the items under it.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use foldhash::HashMap;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::bindings::convert;
use crate::taxonomy::{Item, Mark};

/// pytest's own markers whose arguments no rule reads: the name is enough,
/// and converting a large `parametrize` argument list would dominate.
const NAME_ONLY: [&str; 6] = [
    "parametrize",
    "usefixtures",
    "filterwarnings",
    "skipif",
    "xfail",
    "skip",
];

/// Converted marks and parent chains, keyed by the Python object's address:
/// valid for one call, while pytest's nodes keep every object alive.
#[derive(Default)]
struct Cache<'py> {
    marks: HashMap<usize, Arc<Mark>>,
    chains: HashMap<usize, Vec<Arc<Mark>>>,
    /// One mark per name object, for the marks with no argument a rule
    /// reads: every `@pytest.mark.unit` of the suite becomes the same
    /// `Arc`, so tests with alike marks hold the very same ones and the
    /// core works once per group of them (`Groups`). The name object is
    /// held so that its address stays its own for the whole call.
    bare: HashMap<usize, (Bound<'py, PyAny>, Arc<Mark>, bool)>,
}

impl<'py> Cache<'py> {
    fn mark(&mut self, mark: &Bound<'py, PyAny>) -> PyResult<Arc<Mark>> {
        let key = mark.as_ptr() as usize;
        if let Some(found) = self.marks.get(&key) {
            return Ok(Arc::clone(found));
        }
        let converted = self.convert(mark)?;
        self.marks.insert(key, Arc::clone(&converted));
        Ok(converted)
    }

    /// One `pytest.Mark` as `(name, args, kwargs)`.
    fn convert(&mut self, mark: &Bound<'py, PyAny>) -> PyResult<Arc<Mark>> {
        let py = mark.py();
        let name = mark.getattr(intern!(py, "name"))?;
        let key = name.as_ptr() as usize;
        if let Entry::Vacant(slot) = self.bare.entry(key) {
            let text: String = name.extract()?;
            let only = NAME_ONLY.contains(&text.as_str());
            slot.insert((name.clone(), Arc::new(Mark::named(text)), only));
        }
        let (_, bare, name_only) = &self.bare[&key];
        if *name_only {
            return Ok(Arc::clone(bare));
        }
        let args = mark.getattr(intern!(py, "args"))?;
        let kwargs = mark.getattr(intern!(py, "kwargs"))?;
        let empty = |v: &Bound<'_, PyAny>| v.len().is_ok_and(|n| n == 0);
        if empty(&args) && empty(&kwargs) {
            return Ok(Arc::clone(bare));
        }
        Ok(Arc::new(convert::mark(bare.name.clone(), &args, &kwargs)?))
    }

    fn own_marks(&mut self, node: &Bound<'py, PyAny>, out: &mut Vec<Arc<Mark>>) -> PyResult<()> {
        let own = node.getattr(intern!(node.py(), "own_markers"))?;
        for mark in own.try_iter()? {
            out.push(self.mark(&mark?)?);
        }
        Ok(())
    }

    /// Append the marks of `node` and every parent above it, nearest first.
    fn chain(&mut self, node: &Bound<'py, PyAny>, out: &mut Vec<Arc<Mark>>) -> PyResult<()> {
        if node.is_none() {
            return Ok(());
        }
        let key = node.as_ptr() as usize;
        if !self.chains.contains_key(&key) {
            let mut marks = Vec::new();
            self.own_marks(node, &mut marks)?;
            let parent = node.getattr(intern!(node.py(), "parent"))?;
            self.chain(&parent, &mut marks)?;
            self.chains.insert(key, marks);
        }
        out.extend(self.chains[&key].iter().cloned());
        Ok(())
    }
}

/// Every item of `items` (pytest nodes), in order.
pub fn read_items(items: &Bound<'_, PyList>) -> PyResult<Vec<Item>> {
    let py = items.py();
    let mut cache = Cache::default();
    let mut out = Vec::with_capacity(items.len());
    for item in items.iter() {
        let nodeid: String = item.getattr(intern!(py, "nodeid"))?.extract()?;
        let mut marks = Vec::new();
        cache.own_marks(&item, &mut marks)?;
        let parent = item.getattr(intern!(py, "parent"))?;
        cache.chain(&parent, &mut marks)?;
        // Line 0: `item.location` costs more than the rest of the batch;
        // it is looked up only where a line is shown.
        out.push(Item {
            nodeid,
            line: 0,
            marks,
        });
    }
    Ok(out)
}
