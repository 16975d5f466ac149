//! Small helpers for reading JSON objects field by field with typed errors.

use std::fmt;

use serde_json::{Map, Value};

/// The kind of a JSON value, for error messages ("expected a string, found a number").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool,
    /// a number
    Number,
    /// a string
    String,
    /// an array
    Array,
    /// an object
    Object,
}

impl JsonKind {
    /// The kind of `value`.
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => JsonKind::Null,
            Value::Bool(_) => JsonKind::Bool,
            Value::Number(_) => JsonKind::Number,
            Value::String(_) => JsonKind::String,
            Value::Array(_) => JsonKind::Array,
            Value::Object(_) => JsonKind::Object,
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        })
    }
}

/// What is wrong with one field of a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The field is required but absent.
    #[error("field `{field}` is missing")]
    Missing {
        /// The field's name.
        field: &'static str,
    },
    /// The field has the wrong JSON type.
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field's name.
        field: &'static str,
        /// What the protocol requires.
        expected: JsonKind,
        /// What was sent.
        found: JsonKind,
    },
}

/// Removes `field` from `obj` and returns it as a string.
pub(crate) fn take_string(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<String, FieldError> {
    match obj.shift_remove(field) {
        None => Err(FieldError::Missing { field }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(FieldError::WrongType {
            field,
            expected: JsonKind::String,
            found: JsonKind::of(&other),
        }),
    }
}
