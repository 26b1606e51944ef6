use thiserror::Error;

/// What can be wrong with a generator, a space or a study. Every variant names the field
/// (as a dotted path, e.g. `space.top.n`) and says what was expected.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SpaceError {
    /// A value lies outside the range its field allows.
    #[error("{field}: {value} is out of range, expected {expected}")]
    OutOfRange {
        field: String,
        value: String,
        expected: String,
    },
    /// A NaN or infinite number.
    #[error("{field}: expected a finite number, found {value}")]
    NotFinite { field: String, value: f64 },
    /// A key that the schema does not know.
    #[error("{field}: unknown key `{key}`, expected one of: {expected}")]
    UnknownKey {
        field: String,
        key: String,
        expected: String,
    },
    /// A domain that does not fit its parameter (e.g. `int` for a probability).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The JSON itself is malformed or has the wrong shape.
    #[error("{path}: {message}")]
    Json { path: String, message: String },
    /// The document declares another schema version.
    #[error("schema: expected \"{expected}\", found {found}")]
    Schema { expected: String, found: String },
}

impl SpaceError {
    pub(crate) fn range(
        field: impl Into<String>,
        value: impl ToString,
        expected: impl Into<String>,
    ) -> Self {
        SpaceError::OutOfRange {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpaceError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
