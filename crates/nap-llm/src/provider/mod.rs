//! The models: OpenAI-compatible and Anthropic over HTTP (each behind its
//! cargo feature), and the deterministic offline model.

#[cfg(feature = "anthropic")]
mod anthropic;
#[cfg(feature = "http")]
mod http;
mod offline;
#[cfg(feature = "openai")]
mod openai;

#[cfg(feature = "anthropic")]
pub use anthropic::{
    API_VERSION as ANTHROPIC_API_VERSION, Anthropic, AnthropicBuilder, DEFAULT_MAX_TOKENS,
};
pub use offline::Offline;
#[cfg(feature = "openai")]
pub use openai::{OpenAi, OpenAiBuilder};
