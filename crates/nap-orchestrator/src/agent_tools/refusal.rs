//! A tool call the tools would not carry out (the contract's refusals): the
//! model reads it as `{"error": "…"}` and may try again differently.

use serde_json::{Value, json};

/// Why a tool call was refused, in words for the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(super) struct Refusal(String);

impl Refusal {
    /// The refusal as the tool's result: `{"error": "…"}`.
    pub(super) fn into_result(self) -> Value {
        json!({"error": self.0})
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Refusal(message)
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Self {
        Refusal(message.to_owned())
    }
}
