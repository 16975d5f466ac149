//! The calls of one scope: their states, results and the waits on them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use nap_nats::PendingQuery;
use nap_proto::identity::AgentId;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// The answer sent to a question the model can no longer answer: its call
/// ended, or the prompt it belonged to did (a refusal starts with `no`).
pub(super) const REFUSAL: &str = "no: the caller stopped waiting for this answer";

/// How a finished call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    Completed,
    Failed(String),
    Cancelled,
    Expired(String),
}

/// A question waiting for `answer_agent`, with the files that came with it.
#[derive(Debug)]
pub(super) struct Question {
    pub(super) query: PendingQuery,
    pub(super) files: Vec<Value>,
    /// Fields extensions added to this question's result.
    pub(super) fields: Map<String, Value>,
}

/// One call: a prompt sent by `prompt_agent`, tracked until dropped.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) id: String,
    pub(super) label: Option<String>,
    pub(super) address: String,
    pub(super) started_at: OffsetDateTime,
    pub(super) ended_at: Option<OffsetDateTime>,
    /// Started with `wait: false`.
    pub(super) detached: bool,
    pub(super) end: Option<End>,
    /// The reply text received so far.
    pub(super) text: String,
    /// The files that came with the reply, as listed in results.
    pub(super) files: Vec<Value>,
    /// Open questions, oldest first.
    pub(super) questions: VecDeque<Question>,
    /// When the call last became ready (a question or its end), in the
    /// scope's sequence: `wait_agent` returns the earliest ready call.
    pub(super) ready_seq: u64,
    /// How many tool calls wait on it right now.
    pub(super) waiting: usize,
    /// The task reading its stream; aborting it drops the stream (§6.7).
    pub(super) reader: Option<AbortHandle>,
    /// Fields extensions added to every result of the call.
    pub(super) fields: Map<String, Value>,
    /// Fields extensions added to the completed reply's result.
    pub(super) reply_fields: Map<String, Value>,
}

impl Call {
    pub(super) fn new(id: String, label: Option<String>, address: String, detached: bool) -> Call {
        Call {
            id,
            label,
            address,
            started_at: OffsetDateTime::now_utc(),
            ended_at: None,
            detached,
            end: None,
            text: String::new(),
            files: Vec::new(),
            questions: VecDeque::new(),
            ready_seq: 0,
            waiting: 0,
            reader: None,
            fields: Map::new(),
            reply_fields: Map::new(),
        }
    }

    /// The state name of the contract's section 1.1.
    pub(super) fn state(&self) -> &'static str {
        match &self.end {
            Some(End::Completed) => "completed",
            Some(End::Failed(_)) => "failed",
            Some(End::Cancelled) => "cancelled",
            Some(End::Expired(_)) => "expired",
            None if self.questions.is_empty() => "running",
            None => "input_required",
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.end.is_none()
    }

    /// Ready for a waiter: finished, or a question is open.
    pub(super) fn is_ready(&self) -> bool {
        self.end.is_some() || !self.questions.is_empty()
    }

    /// The call's result (the contract's section 2), without `open_calls`.
    pub(super) fn result(&self) -> Map<String, Value> {
        let mut out = self.fields.clone();
        out.insert("call_id".into(), self.id.clone().into());
        out.insert("state".into(), self.state().into());
        if let Some(label) = &self.label {
            out.insert("label".into(), label.clone().into());
        }
        let partial = |out: &mut Map<String, Value>| {
            if !self.text.is_empty() {
                out.insert("partial_reply".into(), self.text.clone().into());
            }
        };
        match &self.end {
            Some(End::Completed) => {
                out.insert("reply".into(), self.text.clone().into());
                out.insert("attachments".into(), Value::Array(self.files.clone()));
                out.extend(self.reply_fields.clone());
            }
            Some(End::Failed(error)) | Some(End::Expired(error)) => {
                out.insert("error".into(), error.clone().into());
                partial(&mut out);
            }
            Some(End::Cancelled) => partial(&mut out),
            None => {
                if let Some(question) = self.questions.front() {
                    out.insert("question".into(), question.query.prompt().into());
                    out.insert("attachments".into(), Value::Array(question.files.clone()));
                    out.extend(question.fields.clone());
                }
            }
        }
        out
    }

    /// The call's entry in `list_agent_calls`.
    pub(super) fn listing(&self) -> Value {
        let mut out = Map::new();
        out.insert("call_id".into(), self.id.clone().into());
        if let Some(label) = &self.label {
            out.insert("label".into(), label.clone().into());
        }
        out.insert("address".into(), self.address.clone().into());
        out.insert("state".into(), self.state().into());
        out.insert("started_at".into(), utc(self.started_at).into());
        if let Some(ended) = self.ended_at {
            out.insert("ended_at".into(), utc(ended).into());
        }
        Value::Object(out)
    }
}

/// A time as the contract lists it: UTC, ISO 8601.
fn utc(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// The calls of a scope and its bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Calls {
    /// In the order started.
    pub(super) list: Vec<Call>,
    /// Bumped whenever a call becomes ready.
    pub(super) seq: u64,
    /// Once closed, no call starts in it.
    pub(super) closed: bool,
    /// Calls being started (checked, not yet in `list`): they count against
    /// the limit, so that prompts started at once cannot overshoot it.
    pub(super) reserved: usize,
}

impl Calls {
    pub(super) fn get(&self, id: &str) -> Option<&Call> {
        self.list.iter().find(|c| c.id == id)
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut Call> {
        self.list.iter_mut().find(|c| c.id == id)
    }

    pub(super) fn open(&self) -> usize {
        self.list.iter().filter(|c| c.is_open()).count()
    }

    /// Makes room for one more call under `max`: drops the call that
    /// finished longest ago when full; `false` when every call is open.
    pub(super) fn make_room(&mut self, max: usize) -> bool {
        while self.list.len() >= max.max(1) {
            let oldest = self
                .list
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.ended_at.map(|at| (at, c.ready_seq, i)))
                .min();
            match oldest {
                Some((_, _, i)) => {
                    self.list.remove(i);
                }
                None => return false,
            }
        }
        true
    }
}

/// A place for one call being started, held from the limit check until the
/// call is listed or refused; dropping it gives the place back.
#[derive(Debug)]
pub(super) struct Reservation {
    scope: Arc<ScopeState>,
    /// Still holds its place (not yet claimed).
    held: bool,
}

impl Reservation {
    /// Reserves a place when fewer than `max` calls are open or being
    /// started; `None` when all `max` are.
    pub(super) fn take(scope: &Arc<ScopeState>, max: usize) -> Option<Reservation> {
        let mut calls = scope.lock();
        if calls.open() + calls.reserved >= max.max(1) {
            return None;
        }
        calls.reserved += 1;
        Some(Reservation {
            scope: scope.clone(),
            held: true,
        })
    }

    /// Turns the place into the call about to be listed in `calls` (the
    /// scope's list, already locked by the caller).
    pub(super) fn claim(mut self, calls: &mut Calls) {
        calls.reserved = calls.reserved.saturating_sub(1);
        self.held = false;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held {
            let mut calls = self.scope.lock();
            calls.reserved = calls.reserved.saturating_sub(1);
        }
    }
}

/// One scope: the calls started in one served prompt, or the shared
/// scope outside any (the contract's sections 3.3 and 3.4).
#[derive(Debug)]
pub(super) struct ScopeState {
    /// The served prompt's verified sender, for the caller guard (§13.7).
    pub(super) caller: Option<AgentId>,
    /// The address the served prompt arrived on: the serving agent's own,
    /// left out of discovery and refused like the configured one.
    pub(super) own_address: Option<String>,
    /// Bound to a served prompt: its calls end with it.
    pub(super) served: bool,
    calls: Mutex<Calls>,
    changed: watch::Sender<u64>,
}

impl ScopeState {
    pub(super) fn new(
        caller: Option<AgentId>,
        own_address: Option<String>,
        served: bool,
    ) -> Arc<ScopeState> {
        Arc::new(ScopeState {
            caller,
            own_address,
            served,
            calls: Mutex::new(Calls::default()),
            changed: watch::channel(0).0,
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Calls> {
        // Every update leaves the list consistent: a poisoned lock is usable.
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes every waiter of this scope.
    pub(super) fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Ends a call, if still open; returns its result, whether a tool call
    /// waited on it, and the questions to refuse.
    pub(super) fn finish(&self, id: &str, end: End) -> Option<Finished> {
        let finished = {
            let mut calls = self.lock();
            calls.seq += 1;
            let seq = calls.seq;
            let call = calls.get_mut(id)?;
            if call.end.is_some() {
                return None;
            }
            let moot = end == End::Completed;
            call.end = Some(end);
            call.ended_at = Some(OffsetDateTime::now_utc());
            call.ready_seq = seq;
            let questions: Vec<PendingQuery> = call.questions.drain(..).map(|q| q.query).collect();
            if let Some(reader) = call.reader.take() {
                // §6.7: dropping the stream is the only way to cancel.
                reader.abort();
            }
            Finished {
                result: call.result(),
                waited: call.waiting > 0,
                // A question is moot once the reply is complete.
                refuse: if moot { Vec::new() } else { questions },
            }
        };
        self.notify();
        Some(finished)
    }

    /// Closes the scope: no new call, every open call cancelled. Returns
    /// the questions to refuse.
    pub(super) fn close(&self) -> Vec<PendingQuery> {
        let ids: Vec<String> = {
            let mut calls = self.lock();
            calls.closed = true;
            calls
                .list
                .iter()
                .filter(|c| c.is_open())
                .map(|c| c.id.clone())
                .collect()
        };
        ids.iter()
            .filter_map(|id| self.finish(id, End::Cancelled))
            .flat_map(|f| f.refuse)
            .collect()
    }
}

/// What [`ScopeState::finish`] hands back.
#[derive(Debug)]
pub(super) struct Finished {
    pub(super) result: Map<String, Value>,
    pub(super) waited: bool,
    pub(super) refuse: Vec<PendingQuery>,
}

/// Refuses questions nobody will answer, so their askers need not wait
/// out their own timeouts (the contract's sections 3.2, 3.10). Sent once,
/// never confirmed.
pub(super) fn refuse(questions: Vec<PendingQuery>) {
    if questions.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        for question in questions {
            if let Err(error) = question.answer(REFUSAL).await {
                tracing::debug!(%error, "refusal of an open question not sent");
            }
        }
    });
}

/// Counts a tool call waiting on some calls, for `on_settled`'s flag.
pub(super) struct Waiting {
    pub(super) scope: Arc<ScopeState>,
    pub(super) ids: Vec<String>,
}

impl Waiting {
    pub(super) fn new(scope: Arc<ScopeState>, ids: Vec<String>) -> Waiting {
        {
            let mut calls = scope.lock();
            for id in &ids {
                if let Some(call) = calls.get_mut(id) {
                    call.waiting += 1;
                }
            }
        }
        Waiting { scope, ids }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut calls = self.scope.lock();
        for id in &self.ids {
            if let Some(call) = calls.get_mut(id) {
                call.waiting = call.waiting.saturating_sub(1);
            }
        }
    }
}

/// A listed file that was saved.
pub(super) fn saved(filename: &str, size: u64, path: &std::path::Path) -> Value {
    json!({"filename": filename, "size_bytes": size, "path": path.display().to_string()})
}

/// A listed file that was not saved.
pub(super) fn skipped(filename: &str, size: u64, why: &str) -> Value {
    json!({"filename": filename, "size_bytes": size, "path": null, "skipped": why})
}
