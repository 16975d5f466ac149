//! Two small real tools: the current UTC time and a calculator.

use schemars::JsonSchema;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use crate::tool::{Tool, ToolError, tool_fn};

/// The arguments of [`utc_now`]: none.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoArguments {}

/// The arguments of [`calculator`].
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CalculatorArguments {
    /// An arithmetic expression such as `(2 + 3) * 4 / 7`; supports
    /// `+ - * / ^`, parentheses and functions like `sqrt`, `sin`, `ln`.
    pub expression: String,
}

/// `utc_now`: the current UTC date and time in RFC 3339.
pub fn utc_now() -> impl Tool {
    tool_fn(
        "utc_now",
        "Returns the current date and time in UTC, in RFC 3339 format.",
        |_: NoArguments| async move {
            time::OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .map_err(|e| ToolError::new(format!("could not format the time: {e}")))
        },
    )
}

/// `calculator`: evaluates an arithmetic expression (with the `exmex` crate).
pub fn calculator() -> impl Tool {
    tool_fn(
        "calculator",
        "Evaluates an arithmetic expression and returns the number.",
        |args: CalculatorArguments| async move { evaluate(&args.expression) },
    )
}

fn evaluate(expression: &str) -> Result<String, ToolError> {
    let value = exmex::eval_str::<f64>(expression).map_err(|e| {
        ToolError::new(format!(
            "cannot evaluate {expression:?}: {e}; write plain arithmetic such as (2 + 3) * 4"
        ))
    })?;
    if !value.is_finite() {
        return Err(ToolError::new(format!(
            "{expression:?} has no finite value (division by zero?)"
        )));
    }
    Ok(if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn calculator_evaluates_and_reports_errors() {
        let calc = calculator();
        assert_eq!(
            calc.call(json!({"expression": "(2 + 3) * 4"}))
                .await
                .unwrap(),
            "20"
        );
        assert_eq!(
            calc.call(json!({"expression": "1 / 4"})).await.unwrap(),
            "0.25"
        );
        let err = calc
            .call(json!({"expression": "2 +* x"}))
            .await
            .unwrap_err();
        assert!(err.message.contains("cannot evaluate"), "{err}");
        let err = calc.call(json!({"expr": "1"})).await.unwrap_err();
        assert!(err.message.contains("invalid arguments"), "{err}");
        assert_eq!(calc.schema()["required"], json!(["expression"]));
    }

    #[tokio::test]
    async fn utc_now_is_rfc3339() {
        let now = utc_now().call(json!({})).await.unwrap();
        assert!(time::OffsetDateTime::parse(&now, &Rfc3339).is_ok(), "{now}");
        assert!(utc_now().call(serde_json::Value::Null).await.is_ok());
    }
}
