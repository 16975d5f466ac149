//! Choosing and configuring a model, from code or from the environment.

use std::sync::Arc;
use std::time::Duration;

use crate::provider::Offline;
use crate::{Llm, LlmError};

/// `NAP_LLM`: the provider (`openai`, `anthropic`, `ollama`, `offline`).
pub const ENV_PROVIDER: &str = "NAP_LLM";
/// `NAP_MODEL`: the model name.
pub const ENV_MODEL: &str = "NAP_MODEL";
/// `NAP_LLM_BASE_URL`: the provider's base URL (for OpenAI-compatible servers).
pub const ENV_BASE_URL: &str = "NAP_LLM_BASE_URL";
/// `OPENAI_API_KEY`: the OpenAI key.
pub const ENV_OPENAI_KEY: &str = "OPENAI_API_KEY";
/// `ANTHROPIC_API_KEY`: the Anthropic key.
pub const ENV_ANTHROPIC_KEY: &str = "ANTHROPIC_API_KEY";

/// How failed requests are retried: on 429 and 5xx, with exponential
/// backoff, honouring the provider's `Retry-After`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: usize,
    /// The first backoff delay.
    pub min_delay: Duration,
    /// The longest backoff delay.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a longer one fails at once,
    /// reporting the delay to the caller.
    pub max_retry_after: Duration,
    /// Whether to add random jitter to the backoff.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Self::default()
        }
    }
}

/// HTTP settings shared by the network providers.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// The longest wait to connect.
    pub connect_timeout: Duration,
    /// The longest silence while reading an answer (before the headers or
    /// between two pieces of a stream).
    pub read_timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }
}

/// Which provider to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// OpenAI's Chat Completions API.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// A local Ollama server, through its OpenAI-compatible API.
    Ollama,
    /// The deterministic [`Offline`] model.
    Offline,
}

impl Provider {
    /// Parses a `NAP_LLM` value (case-insensitive).
    pub fn parse(value: &str) -> Result<Self, LlmError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "openai" => Ok(Provider::OpenAi),
            "anthropic" => Ok(Provider::Anthropic),
            "ollama" => Ok(Provider::Ollama),
            "offline" => Ok(Provider::Offline),
            _ => Err(LlmError::UnknownProvider {
                variable: ENV_PROVIDER,
                value: value.to_owned(),
            }),
        }
    }

    /// The model used when none is named.
    pub fn default_model(self) -> &'static str {
        match self {
            Provider::OpenAi => "gpt-4o-mini",
            Provider::Anthropic => "claude-3-5-haiku-latest",
            Provider::Ollama => "llama3.2",
            Provider::Offline => Offline::MODEL,
        }
    }

    /// The base URL used when none is given.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::OpenAi => "https://api.openai.com/v1",
            Provider::Anthropic => "https://api.anthropic.com",
            Provider::Ollama => "http://localhost:11434/v1",
            Provider::Offline => "",
        }
    }
}

/// Everything needed to build an [`Llm`].
#[derive(Debug, Clone, PartialEq)]
pub struct LlmConfig {
    /// The provider.
    pub provider: Provider,
    /// The model; the provider's default when `None`.
    pub model: Option<String>,
    /// The base URL; the provider's default when `None`.
    pub base_url: Option<String>,
    /// The API key; required for OpenAI (at its default URL) and Anthropic.
    pub api_key: Option<String>,
    /// Timeouts and retries.
    pub http: HttpOptions,
}

impl LlmConfig {
    /// A configuration for a provider with its defaults.
    pub fn new(provider: Provider) -> Self {
        LlmConfig {
            provider,
            model: None,
            base_url: None,
            api_key: None,
            http: HttpOptions::default(),
        }
    }

    /// Reads the process environment: `NAP_LLM` (offline when unset),
    /// `NAP_MODEL`, `NAP_LLM_BASE_URL`, `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`.
    pub fn from_env() -> Result<Self, LlmError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`LlmConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, LlmError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let provider = match get(ENV_PROVIDER) {
            Some(v) => Provider::parse(&v)?,
            None => {
                tracing::info!("{ENV_PROVIDER} is unset: using the offline model");
                Provider::Offline
            }
        };
        let api_key = match provider {
            Provider::OpenAi => get(ENV_OPENAI_KEY),
            Provider::Anthropic => get(ENV_ANTHROPIC_KEY),
            // Ollama ignores keys, but a proxy in front of it may want one.
            Provider::Ollama => get(ENV_OPENAI_KEY),
            Provider::Offline => None,
        };
        let config = LlmConfig {
            provider,
            model: get(ENV_MODEL),
            base_url: get(ENV_BASE_URL),
            api_key,
            http: HttpOptions::default(),
        };
        config.check_key()?;
        Ok(config)
    }

    /// Fails with [`LlmError::MissingApiKey`] when the provider needs a key
    /// and has none. OpenAI-compatible servers at another base URL need none.
    pub fn check_key(&self) -> Result<(), LlmError> {
        let variable = match self.provider {
            Provider::OpenAi if self.base_url.is_none() => ENV_OPENAI_KEY,
            Provider::Anthropic => ENV_ANTHROPIC_KEY,
            _ => return Ok(()),
        };
        if self.api_key.is_none() {
            return Err(LlmError::MissingApiKey { variable });
        }
        Ok(())
    }

    /// The model name in effect.
    pub fn model(&self) -> &str {
        self.model
            .as_deref()
            .unwrap_or_else(|| self.provider.default_model())
    }

    /// The base URL in effect.
    pub fn base_url(&self) -> &str {
        self.base_url
            .as_deref()
            .unwrap_or_else(|| self.provider.default_base_url())
    }

    /// Builds the model.
    pub fn build(&self) -> Result<Arc<dyn Llm>, LlmError> {
        self.check_key()?;
        match self.provider {
            Provider::Offline => Ok(Arc::new(Offline::new())),
            Provider::OpenAi | Provider::Ollama => self.build_openai(),
            Provider::Anthropic => self.build_anthropic(),
        }
    }

    #[cfg(feature = "openai")]
    fn build_openai(&self) -> Result<Arc<dyn Llm>, LlmError> {
        let llm = crate::provider::OpenAi::compatible(self.base_url(), self.model())
            .with_http(self.http.clone());
        let llm = match &self.api_key {
            Some(key) => llm.with_api_key(key.clone()),
            None => llm,
        };
        Ok(Arc::new(llm.connect()?))
    }

    #[cfg(not(feature = "openai"))]
    fn build_openai(&self) -> Result<Arc<dyn Llm>, LlmError> {
        Err(LlmError::ProviderNotCompiled {
            provider: "openai",
            feature: "openai",
        })
    }

    #[cfg(feature = "anthropic")]
    fn build_anthropic(&self) -> Result<Arc<dyn Llm>, LlmError> {
        let key = self.api_key.clone().unwrap_or_default();
        let llm = crate::provider::Anthropic::new(key, self.model())
            .with_base_url(self.base_url())
            .with_http(self.http.clone());
        Ok(Arc::new(llm.connect()?))
    }

    #[cfg(not(feature = "anthropic"))]
    fn build_anthropic(&self) -> Result<Arc<dyn Llm>, LlmError> {
        Err(LlmError::ProviderNotCompiled {
            provider: "anthropic",
            feature: "anthropic",
        })
    }
}

/// The model the environment asks for; the offline model when `NAP_LLM` is unset.
pub fn from_env() -> Result<Arc<dyn Llm>, LlmError> {
    LlmConfig::from_env()?.build()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn unset_means_offline() {
        let c = LlmConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c.provider, Provider::Offline);
        assert_eq!(c.build().unwrap().model(), "offline");
    }

    #[test]
    fn missing_key_names_the_variable() {
        let e = LlmConfig::from_lookup(lookup(&[("NAP_LLM", "openai")])).unwrap_err();
        assert_eq!(
            e,
            LlmError::MissingApiKey {
                variable: "OPENAI_API_KEY"
            }
        );
        assert!(e.to_string().contains("OPENAI_API_KEY"));
        let e = LlmConfig::from_lookup(lookup(&[("NAP_LLM", "Anthropic")])).unwrap_err();
        assert!(e.to_string().contains("ANTHROPIC_API_KEY"));
    }

    #[test]
    fn compatible_servers_need_no_key() {
        let c = LlmConfig::from_lookup(lookup(&[
            ("NAP_LLM", "openai"),
            ("NAP_LLM_BASE_URL", "http://127.0.0.1:8000/v1"),
            ("NAP_MODEL", "qwen"),
        ]))
        .unwrap();
        assert_eq!(c.model(), "qwen");
        assert_eq!(c.base_url(), "http://127.0.0.1:8000/v1");
        let c = LlmConfig::from_lookup(lookup(&[("NAP_LLM", "ollama")])).unwrap();
        assert_eq!(c.base_url(), "http://localhost:11434/v1");
        assert_eq!(c.model(), "llama3.2");
    }

    #[test]
    fn unknown_provider_is_named() {
        let e = LlmConfig::from_lookup(lookup(&[("NAP_LLM", "gemini")])).unwrap_err();
        assert!(e.to_string().contains("gemini"));
        assert!(e.to_string().contains("NAP_LLM"));
    }
}
