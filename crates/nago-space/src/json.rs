//! Parsing JSON documents with errors that name the offending field.

use crate::SpaceError;
use serde::de::DeserializeOwned;

/// Parses `text` as a `T`, reporting the JSON path of the first error (e.g.
/// `space.top.n.int[1]: invalid type: string "x", expected f64`).
///
/// When `schema` is given, the document must be an object whose `schema` field equals it:
/// this is checked first so that an old or foreign file gets a version error rather than
/// a confusing field error.
pub fn parse<T: DeserializeOwned>(text: &str, schema: Option<&str>) -> Result<T, SpaceError> {
    if let Some(expected) = schema {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| SpaceError::Json {
                path: format!("line {} column {}", e.line(), e.column()),
                message: e.to_string(),
            })?;
        match value.get("schema") {
            Some(serde_json::Value::String(s)) if s == expected => {}
            Some(other) => {
                return Err(SpaceError::Schema {
                    expected: expected.to_string(),
                    found: other.to_string(),
                })
            }
            None => {
                return Err(SpaceError::Schema {
                    expected: expected.to_string(),
                    found: "no `schema` field".to_string(),
                })
            }
        }
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        SpaceError::Json {
            path: if path == "." {
                "(document)".into()
            } else {
                path
            },
            message: inner.to_string(),
        }
    })
}

/// Checks that a number is finite, naming `field` otherwise.
pub fn finite(field: &str, v: f64) -> Result<f64, SpaceError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(SpaceError::NotFinite {
            field: field.to_string(),
            value: v,
        })
    }
}
