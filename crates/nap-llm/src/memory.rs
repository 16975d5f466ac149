//! Conversation memory per session.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::LlmError;
use crate::message::{Message, Role};

/// Where an agent keeps conversations between prompts, by session key.
///
/// [`InMemory`] is the bounded in-process store; others (a NATS KV bucket,
/// a database) can implement the same trait.
#[async_trait]
pub trait Memory: Send + Sync + 'static {
    /// The session's messages, oldest first (empty for a new session).
    async fn load(&self, session: &str) -> Result<Vec<Message>, LlmError>;

    /// Adds one finished turn (the user's message, any tool exchange, the answer).
    async fn append(&self, session: &str, turn: Vec<Message>) -> Result<(), LlmError>;

    /// Forgets a session.
    async fn clear(&self, session: &str) -> Result<(), LlmError>;
}

/// A memory that keeps nothing: every prompt starts afresh.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMemory;

#[async_trait]
impl Memory for NoMemory {
    async fn load(&self, _session: &str) -> Result<Vec<Message>, LlmError> {
        Ok(Vec::new())
    }

    async fn append(&self, _session: &str, _turn: Vec<Message>) -> Result<(), LlmError> {
        Ok(())
    }

    async fn clear(&self, _session: &str) -> Result<(), LlmError> {
        Ok(())
    }
}

/// A bounded in-process memory: at most `max_messages` per session (the
/// oldest whole turns go first) and at most `max_sessions` sessions (the
/// least recently used goes first).
#[derive(Debug)]
pub struct InMemory {
    max_messages: usize,
    max_sessions: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tick: u64,
    sessions: HashMap<String, (u64, Vec<Message>)>,
}

impl Default for InMemory {
    fn default() -> Self {
        Self::new(50, 1_000)
    }
}

impl InMemory {
    /// A memory keeping up to `max_messages` messages in each of up to `max_sessions` sessions.
    pub fn new(max_messages: usize, max_sessions: usize) -> Self {
        InMemory {
            max_messages: max_messages.max(2),
            max_sessions: max_sessions.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another prompt panicked; the map is intact.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many sessions are kept.
    pub fn sessions(&self) -> usize {
        self.lock().sessions.len()
    }
}

#[async_trait]
impl Memory for InMemory {
    async fn load(&self, session: &str) -> Result<Vec<Message>, LlmError> {
        let mut state = self.lock();
        state.tick += 1;
        let tick = state.tick;
        Ok(match state.sessions.get_mut(session) {
            Some((used, messages)) => {
                *used = tick;
                messages.clone()
            }
            None => Vec::new(),
        })
    }

    async fn append(&self, session: &str, turn: Vec<Message>) -> Result<(), LlmError> {
        let mut state = self.lock();
        state.tick += 1;
        let tick = state.tick;
        let entry = state
            .sessions
            .entry(session.to_owned())
            .or_insert_with(|| (tick, Vec::new()));
        entry.0 = tick;
        entry.1.extend(turn.iter().map(Message::without_binary));
        trim(&mut entry.1, self.max_messages);
        while state.sessions.len() > self.max_sessions {
            let oldest = state
                .sessions
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => state.sessions.remove(&k),
                None => break,
            };
        }
        Ok(())
    }

    async fn clear(&self, session: &str) -> Result<(), LlmError> {
        self.lock().sessions.remove(session);
        Ok(())
    }
}

/// Drops the oldest turns until at most `max` messages remain; a history
/// always starts at a user message so no tool result loses its call.
fn trim(messages: &mut Vec<Message>, max: usize) {
    if messages.len() <= max {
        return;
    }
    let excess = messages.len() - max;
    let cut = messages
        .iter()
        .enumerate()
        .skip(excess)
        .find(|(_, m)| m.role == Role::User)
        .map(|(i, _)| i);
    match cut {
        Some(i) => {
            messages.drain(..i);
        }
        None => {
            // The last turn alone is too long: keep its question and answer.
            let answer = messages.pop();
            let question = messages
                .iter()
                .rposition(|m| m.role == Role::User)
                .map(|i| messages.swap_remove(i));
            messages.clear();
            messages.extend(question);
            messages.extend(answer);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tool::{ToolCall, ToolResult};

    fn turn(n: usize) -> Vec<Message> {
        vec![
            Message::user(format!("q{n}")),
            Message::assistant(format!("a{n}")),
        ]
    }

    #[tokio::test]
    async fn keeps_sessions_apart_and_bounded() {
        let m = InMemory::new(4, 2);
        for n in 0..3 {
            m.append("a", turn(n)).await.unwrap();
        }
        let a = m.load("a").await.unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].text(), "q1");
        assert!(m.load("b").await.unwrap().is_empty());
        m.append("b", turn(0)).await.unwrap();
        m.load("a").await.unwrap();
        m.append("c", turn(0)).await.unwrap();
        assert_eq!(m.sessions(), 2);
        assert!(
            m.load("b").await.unwrap().is_empty(),
            "b was least recently used"
        );
        m.clear("a").await.unwrap();
        assert!(m.load("a").await.unwrap().is_empty());
    }

    #[test]
    fn trimming_never_orphans_tool_results() {
        let call = ToolCall {
            id: "1".into(),
            name: "t".into(),
            arguments: serde_json::json!({}),
        };
        let result = ToolResult {
            call_id: "1".into(),
            name: "t".into(),
            content: "r".into(),
            is_error: false,
        };
        let mut messages = turn(0);
        messages.extend([
            Message::user("q1"),
            Message::assistant_with_tool_calls("", vec![call]),
            Message::tool_results(vec![result]),
            Message::assistant("a1"),
        ]);
        trim(&mut messages, 3);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].text(), "q1");
        assert_eq!(messages[1].text(), "a1");
    }
}
