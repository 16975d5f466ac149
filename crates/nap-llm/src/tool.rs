//! Tools a model can call: their definitions, the calls and the results.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tool's definition as offered to a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// The JSON Schema of its arguments (an object schema).
    pub parameters: Value,
}

/// A call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call, echoed in the result.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, as the model wrote them.
    pub arguments: Value,
}

/// The outcome of a [`ToolCall`], sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the call this answers.
    pub call_id: String,
    /// The tool's name.
    pub name: String,
    /// The tool's text, or the error message the model sees.
    pub content: String,
    /// Whether the tool failed.
    pub is_error: bool,
}

/// A tool's failure. The model sees the message and may try again or explain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    /// What went wrong, in words for the model.
    pub message: String,
}

impl ToolError {
    /// An error with a message.
    pub fn new(message: impl fmt::Display) -> Self {
        ToolError {
            message: message.to_string(),
        }
    }
}

impl From<String> for ToolError {
    fn from(message: String) -> Self {
        ToolError { message }
    }
}

impl From<&str> for ToolError {
    fn from(message: &str) -> Self {
        ToolError::new(message)
    }
}

/// Something a model can call.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The name the model calls it by (letters, digits, `_` and `-`).
    fn name(&self) -> &str;

    /// What it does, for the model.
    fn description(&self) -> &str;

    /// The JSON Schema of its arguments.
    fn schema(&self) -> Value;

    /// Runs the tool with the model's arguments.
    async fn call(&self, arguments: Value) -> Result<String, ToolError>;

    /// The definition offered to models.
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name().to_owned(),
            description: self.description().to_owned(),
            parameters: self.schema(),
        }
    }
}

/// The JSON Schema of `T`, with sub-schemas inlined and without the
/// `$schema` and `title` keys, in the shape models expect for tool arguments.
pub fn schema_for<T: JsonSchema>() -> Value {
    let schema = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Value::Object(map) = &mut value {
        map.remove("$schema");
        map.remove("title");
        // Models want an object schema even for argument-less tools.
        if !map.contains_key("properties") && map.get("type") == Some(&Value::from("object")) {
            map.insert("properties".into(), Value::Object(Default::default()));
        }
    }
    value
}

/// A tool made from an async closure; see [`tool_fn`].
pub struct FnTool<A, F> {
    name: String,
    description: String,
    schema: Value,
    f: F,
    _args: PhantomData<fn(A)>,
}

impl<A, F> fmt::Debug for FnTool<A, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnTool")
            .field("name", &self.name)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// A tool from an async closure taking typed arguments. The argument schema
/// is derived from `A` with `schemars`; the model's arguments are decoded
/// into `A` with `serde`, and a decoding failure is reported to the model.
///
/// ```
/// use nap_llm::{Tool, ToolError, tool_fn};
/// use schemars::JsonSchema;
/// use serde::Deserialize;
///
/// #[derive(Deserialize, JsonSchema)]
/// struct Greet {
///     /// Who to greet.
///     name: String,
/// }
///
/// let greet = tool_fn("greet", "Greets someone by name", |a: Greet| async move {
///     Ok::<_, ToolError>(format!("Hello, {}!", a.name))
/// });
/// assert_eq!(greet.schema()["properties"]["name"]["type"], "string");
/// ```
pub fn tool_fn<A, F, Fut>(
    name: impl Into<String>,
    description: impl Into<String>,
    f: F,
) -> FnTool<A, F>
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, ToolError>> + Send + 'static,
{
    FnTool {
        name: name.into(),
        description: description.into(),
        schema: schema_for::<A>(),
        f,
        _args: PhantomData,
    }
}

#[async_trait]
impl<A, F, Fut> Tool for FnTool<A, F>
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, ToolError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn schema(&self) -> Value {
        self.schema.clone()
    }

    async fn call(&self, arguments: Value) -> Result<String, ToolError> {
        // Models sometimes send `null` for argument-less tools.
        let arguments = if arguments.is_null() {
            Value::Object(Default::default())
        } else {
            arguments
        };
        let args: A = serde_json::from_value(arguments).map_err(|e| {
            ToolError::new(format!(
                "invalid arguments for tool `{}`: {e}; expected arguments matching {}",
                self.name, self.schema
            ))
        })?;
        (self.f)(args).await
    }
}

/// A set of tools by name.
#[derive(Clone, Default)]
pub struct ToolSet {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

impl ToolSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool, replacing one of the same name.
    pub fn insert(&mut self, tool: impl Tool) {
        self.insert_arc(Arc::new(tool));
    }

    /// Adds a shared tool, replacing one of the same name.
    pub fn insert_arc(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.name().to_owned(), tool);
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// How many tools there are.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// The definitions to offer a model, by name.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.values().map(|t| t.spec()).collect()
    }

    /// Runs one call; an unknown tool or a failure becomes an error result
    /// the model sees.
    pub async fn call(&self, call: &ToolCall) -> ToolResult {
        let outcome = match self.get(&call.name) {
            Some(tool) => tool.call(call.arguments.clone()).await,
            None => Err(ToolError::new(format!(
                "there is no tool named `{}`; available tools: {}",
                call.name,
                self.tools.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        };
        let (content, is_error) = match outcome {
            Ok(text) => (text, false),
            Err(e) => (e.message, true),
        };
        ToolResult {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content,
            is_error,
        }
    }
}
