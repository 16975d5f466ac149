//! `nap mcp`: the agent tools (discover, prompt, wait, answer, cancel,
//! list) served over MCP on stdio, so that any MCP host can call agents on
//! a NATS system with the CLI's connection flags and identity.
//!
//! The MCP side is `rmcp`, the maintained Rust SDK: nap only maps its
//! `tools/list` and `tools/call` onto [`AgentTools`]. Every tool result is
//! returned as one JSON text block (and as structured content), exactly
//! what the tool itself returned, refusals (`{"error": …}`) included.

use std::sync::Arc;

use clap::Args;
use nap_orchestrator::agent_tools::AgentTools;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;

use super::client;
use crate::connect::Connection;
use crate::failure::{Failure, Status};

/// Arguments of `nap mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Offer only the blocking tools (discover_agents, prompt_agent, list_agent_calls)
    #[arg(long)]
    blocking_only: bool,
}

/// The MCP server: the agent tools of one connection.
#[derive(Clone)]
struct AgentToolsServer {
    tools: AgentTools,
    listed: Arc<Vec<Tool>>,
}

impl AgentToolsServer {
    fn new(tools: AgentTools) -> AgentToolsServer {
        let listed = tools
            .definitions()
            .into_iter()
            .map(|d| {
                let schema = match d.parameters {
                    Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
                Tool::new(d.name, d.description, Arc::new(schema))
            })
            .collect();
        AgentToolsServer {
            tools,
            listed: Arc::new(listed),
        }
    }
}

impl ServerHandler for AgentToolsServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("nap", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Agents on a NATS system (Synadia Agent Protocol): discover them with \
                 discover_agents, then prompt_agent; detached calls are collected with \
                 wait_agent, questions answered with answer_agent.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items((*self.listed).clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.unwrap_or_default());
        let result = self.tools.call(&request.name, args).await;
        let text = serde_json::to_string(&result).unwrap_or_default();
        let refused = result.get("error").is_some();
        let content = vec![ContentBlock::text(text)];
        let mut reply = if refused {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        };
        if result.is_object() {
            reply.structured_content = Some(result);
        }
        Ok(reply.into())
    }
}

/// Runs `nap mcp` until the MCP host closes stdin.
pub async fn run(conn: Connection, args: McpArgs) -> Result<(), Failure> {
    let client = client(&conn).await?;
    let mut tools = AgentTools::new(client);
    if args.blocking_only {
        tools = tools.blocking_only();
    }
    let server = AgentToolsServer::new(tools)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Failure::new(Status::Stream, anyhow::anyhow!("MCP start failed: {e}")))?;
    server
        .waiting()
        .await
        .map_err(|e| Failure::new(Status::Stream, anyhow::anyhow!("MCP server ended: {e}")))?;
    Ok(())
}
