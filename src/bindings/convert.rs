//! Conversions between Python objects and the core's plain types. The only
//! place, with `lib.rs`, where Python errors are made.

use std::collections::BTreeMap;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyMapping, PyString, PyTuple};

use crate::error::Error;
use crate::taxonomy::{Item, Mark, MarkValue};

pyo3::create_exception!(
    pytest_dynamo,
    ConfigError,
    PyException,
    "A configuration value, file or flag of pytest-dynamo is wrong; the message names the fix."
);

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        ConfigError::new_err(err.to_string())
    }
}

pub fn mark_value(obj: &Bound<'_, PyAny>) -> MarkValue {
    if obj.is_none() {
        MarkValue::None
    } else if obj.is_instance_of::<PyBool>() {
        MarkValue::Bool(obj.is_truthy().unwrap_or(false))
    } else if obj.is_instance_of::<PyInt>() {
        obj.extract::<i64>()
            .map_or_else(|_| MarkValue::Other(repr(obj)), MarkValue::Int)
    } else if obj.is_instance_of::<PyFloat>() {
        obj.extract::<f64>()
            .map_or_else(|_| MarkValue::Other(repr(obj)), MarkValue::Float)
    } else if obj.is_instance_of::<PyString>() {
        obj.extract::<String>()
            .map_or_else(|_| MarkValue::Other(repr(obj)), MarkValue::Str)
    } else {
        MarkValue::Other(repr(obj))
    }
}

fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr().map(|r| r.to_string()).unwrap_or_default()
}

/// A marker given as `(name, args, kwargs)`.
pub type PyMark<'py> = (String, Bound<'py, PyTuple>, Bound<'py, PyDict>);

/// An item given as `(nodeid, line, [marks])`.
pub type PyItem<'py> = (String, u32, Vec<PyMark<'py>>);

/// A marker from its name, its positional arguments (a tuple, or any
/// iterable) and its keyword arguments (a dict, or any mapping).
pub fn mark(name: String, args: &Bound<'_, PyAny>, kwargs: &Bound<'_, PyAny>) -> PyResult<Mark> {
    let args = match args.cast::<PyTuple>() {
        Ok(tuple) => tuple.iter().map(|a| mark_value(&a)).collect(),
        Err(_) => args
            .try_iter()?
            .map(|a| a.map(|a| mark_value(&a)))
            .collect::<PyResult<_>>()?,
    };
    let mut kw = BTreeMap::new();
    if let Ok(dict) = kwargs.cast::<PyDict>() {
        for (k, v) in dict.iter() {
            kw.insert(k.extract::<String>()?, mark_value(&v));
        }
    } else {
        for pair in kwargs.cast::<PyMapping>()?.items()?.iter() {
            let (k, v): (String, Bound<'_, PyAny>) = pair.extract()?;
            kw.insert(k, mark_value(&v));
        }
    }
    Ok(Mark {
        name,
        args,
        kwargs: kw,
    })
}

pub fn item(raw: PyItem<'_>) -> PyResult<Item> {
    let (nodeid, line, marks) = raw;
    let marks = marks
        .into_iter()
        .map(|(name, args, kwargs)| Ok(std::sync::Arc::new(mark(name, &args, &kwargs)?)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Item {
        nodeid,
        line,
        marks,
    })
}
