//! `nap mcp`: the agent tools (discover, prompt, wait, answer, cancel,
//! list) served over MCP on stdio, so that any MCP host can call agents on
//! a NATS system with the CLI's connection flags and identity.
//!
//! The MCP side is `rmcp`, the maintained Rust SDK: nap only maps its
//! `tools/list` and `tools/call` onto [`AgentTools`]. Every tool result is
//! returned as one JSON text block (and as structured content), exactly
//! what the tool itself returned, refusals (`{"error": …}`) included.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use nap_orchestrator::agent_tools::{AgentTools, BLOCKING_TOOLS};
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
    /// Offer only the blocking tools: discover_agents, prompt_agent and answer_agent
    #[arg(long)]
    blocking_only: bool,

    /// A directory whose files prompt_agent may send as attachments (repeatable;
    /// none by default, so no local file leaves this machine unless allowed)
    #[arg(long = "attach-root", value_name = "DIR")]
    attach_roots: Vec<PathBuf>,

    /// Where the files agents return are saved, one directory per call
    /// (default: a fresh directory under the system's temporary directory)
    #[arg(long, value_name = "DIR")]
    staging_dir: Option<PathBuf>,
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
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.unwrap_or_default());
        // The MCP request id is the tool-call id the contract's hooks see.
        let id = context.id.to_string();
        let result = self
            .tools
            .call_with_id(&request.name, args, Some(&id))
            .await;
        let text = result.to_string();
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
    let mut builder = AgentTools::builder(client);
    if args.blocking_only {
        builder = builder.tools(BLOCKING_TOOLS);
    }
    for root in args.attach_roots {
        builder = builder.attachment_root(root);
    }
    if let Some(dir) = args.staging_dir {
        builder = builder.staging_dir(dir);
    }
    let tools = builder
        .build()
        .map_err(|e| Failure::new(Status::Usage, e))?;
    let server = AgentToolsServer::new(tools.clone())
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Failure::new(Status::Stream, anyhow::anyhow!("MCP start failed: {e}")))?;
    let ended = server.waiting().await;
    // Open calls end with the server: their streams are dropped (§6.7).
    tools.close();
    ended.map_err(|e| Failure::new(Status::Stream, anyhow::anyhow!("MCP server ended: {e}")))?;
    Ok(())
}
