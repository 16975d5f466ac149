//! Where response streams arrive: one wildcard inbox per [`Client`]
//! (`_INBOX.<id>.*`), subscribed once, read by one task that hands each
//! message to the stream its last token names.
//!
//! One subscription instead of one per prompt saves a SUB and an UNSUB
//! for every prompt and keeps the server's interest graph still. The task
//! reads as fast as messages arrive and parks them in the stream's own
//! queue, which is bounded in bytes: a reader that falls behind gets a
//! typed [`Loss::BufferFull`] instead of the NATS client's silent
//! slow-consumer drop.
//!
//! [`Client`]: super::Client

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::StreamExt;
use futures::task::AtomicWaker;
use nap_proto::Loss;

use crate::{Error, Result};

/// The routing table of one client's response streams.
#[derive(Debug)]
pub(crate) struct Replies {
    /// `_INBOX.<id>.`: a stream's reply subject is this and its token.
    prefix: String,
    next: AtomicU64,
    routes: Mutex<HashMap<u64, Arc<Slot>>>,
    /// Cancelled when the table is dropped: the router task unsubscribes.
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Replies {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The queue of one stream, filled by the router task.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    waker: AtomicWaker,
}

#[derive(Debug, Default)]
struct SlotState {
    messages: VecDeque<async_nats::Message>,
    bytes: u64,
    limit: u64,
    /// Set once: later messages are dropped, and the stream ends with it
    /// after the messages already queued.
    loss: Option<Loss>,
}

/// A stream's place in the table; dropping it removes the route (§6.7:
/// cancelling a prompt is dropping its subscription).
#[derive(Debug)]
pub(crate) struct Route {
    replies: Arc<Replies>,
    token: u64,
    subject: String,
    slot: Arc<Slot>,
}

impl Replies {
    /// Subscribes the wildcard inbox on `nats` and starts the router task;
    /// it ends when the returned table is dropped with the last client.
    pub(crate) async fn start(nats: &async_nats::Client) -> Result<Arc<Replies>> {
        let prefix = format!("{}.", nats.new_inbox());
        let wildcard = format!("{prefix}*");
        let subscription =
            nats.subscribe(wildcard.clone())
                .await
                .map_err(|source| Error::Subscribe {
                    subject: wildcard,
                    source,
                })?;
        let stop = tokio_util::sync::CancellationToken::new();
        let replies = Arc::new(Replies {
            prefix,
            next: AtomicU64::new(0),
            routes: Mutex::new(HashMap::new()),
            stop: stop.clone(),
        });
        tokio::spawn(route(Arc::downgrade(&replies), subscription, stop));
        Ok(replies)
    }

    /// A new route: the reply subject to publish with, and the queue its
    /// messages arrive in, holding at most `limit` bytes unread.
    pub(crate) fn open(self: &Arc<Self>, limit: u64) -> Route {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState {
                limit,
                ..SlotState::default()
            }),
            waker: AtomicWaker::new(),
        });
        self.table().insert(token, slot.clone());
        Route {
            replies: self.clone(),
            token,
            subject: format!("{}{token}", self.prefix),
            slot,
        }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        // Every critical section is a single map operation: a poisoned
        // table is still consistent.
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deliver(&self, message: async_nats::Message) {
        let token = message
            .subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|t| t.parse::<u64>().ok());
        let Some(slot) = token.and_then(|t| self.table().get(&t).cloned()) else {
            // A stream that was dropped (cancelled, §6.7) or never existed.
            tracing::trace!(subject = %message.subject, "reply for no open stream dropped");
            return;
        };
        slot.push(message);
    }

    fn close_all(&self) {
        let slots: Vec<Arc<Slot>> = self.table().drain().map(|(_, s)| s).collect();
        for slot in slots {
            slot.lose(Loss::SubscriptionClosed);
        }
    }
}

/// The router task: reads the wildcard subscription as fast as it fills.
async fn route(
    replies: std::sync::Weak<Replies>,
    mut subscription: async_nats::Subscriber,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let message = tokio::select! {
            message = subscription.next() => message,
            () = stop.cancelled() => return,
        };
        let Some(message) = message else { break };
        let Some(replies) = replies.upgrade() else {
            return;
        };
        replies.deliver(message);
    }
    if let Some(replies) = replies.upgrade() {
        tracing::debug!("reply subscription closed; open streams end");
        replies.close_all();
    }
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, message: async_nats::Message) {
        {
            let mut state = self.lock();
            if state.loss.is_some() {
                return;
            }
            let size = message.length as u64;
            if state.bytes + size > state.limit {
                state.loss = Some(Loss::BufferFull { limit: state.limit });
            } else {
                state.bytes += size;
                state.messages.push_back(message);
            }
        }
        self.waker.wake();
    }

    fn lose(&self, loss: Loss) {
        self.lock().loss.get_or_insert(loss);
        self.waker.wake();
    }
}

/// What a stream reads next from its queue.
#[derive(Debug)]
pub(crate) enum Delivery {
    Message(async_nats::Message),
    Lost(Loss),
}

impl Route {
    /// The reply subject of this stream (§6.1).
    pub(crate) fn subject(&self) -> &str {
        &self.subject
    }

    /// The next message, or the loss that ended the queue once it is empty.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Delivery> {
        if let Some(delivery) = self.try_next() {
            return Poll::Ready(delivery);
        }
        self.slot.waker.register(cx.waker());
        // Check again: a message may have arrived before the registration.
        match self.try_next() {
            Some(delivery) => Poll::Ready(delivery),
            None => Poll::Pending,
        }
    }

    fn try_next(&self) -> Option<Delivery> {
        let mut state = self.slot.lock();
        if let Some(message) = state.messages.pop_front() {
            state.bytes -= message.length as u64;
            return Some(Delivery::Message(message));
        }
        state.loss.clone().map(Delivery::Lost)
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        self.replies.table().remove(&self.token);
    }
}
