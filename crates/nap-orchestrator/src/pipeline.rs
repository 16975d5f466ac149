//! Pipelines without an LLM router: sequences, fan-out with a gather step,
//! and bounded maps, over remote agents, with per-step timeouts, retries
//! and progress events.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures::future::{BoxFuture, join_all};
use futures::{FutureExt, StreamExt};
use nap_nats::AgentHandle;
use nap_proto::Envelope;
use tokio::sync::mpsc::UnboundedSender;

use crate::remote_tool::{CallOptions, call_agent};
use crate::{Error, Result};

/// The placeholder replaced by a step's input.
pub const INPUT: &str = "{input}";

/// The placeholder replaced by the pipeline's own input.
pub const PROMPT: &str = "{prompt}";

/// How one step is run: its timeout and its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepPolicy {
    /// The longest one attempt may take, from prompt to terminator. `None`:
    /// only the inactivity timeout applies. Default 5 minutes.
    pub timeout: Option<Duration>,
    /// How many times a failed attempt is retried. Default 0. Failures that
    /// cannot get better (a `4xx` rejection other than 408 and 429, a
    /// request refused locally) are not retried.
    pub retries: usize,
    /// The wait before the first retry, doubling for each further one.
    /// Default 500 ms.
    pub backoff: Duration,
}

impl Default for StepPolicy {
    fn default() -> Self {
        StepPolicy {
            timeout: Some(Duration::from_secs(300)),
            retries: 0,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Something that happened while a pipeline ran, for a program to display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// An attempt of a step started (`attempt` counts from 1).
    StepStarted {
        /// The step (`name[i]` for the items of a map).
        step: String,
        /// Which attempt.
        attempt: u32,
    },
    /// A piece of a step's answer arrived.
    Chunk {
        /// The step.
        step: String,
        /// The text.
        text: String,
        /// Whether this step's answer is the pipeline's answer (the last
        /// step of the outermost sequence, the gather step, ...).
        is_output: bool,
    },
    /// A step finished.
    StepFinished {
        /// The step.
        step: String,
        /// Its whole answer.
        output: String,
    },
    /// An attempt of a step failed.
    StepFailed {
        /// The step.
        step: String,
        /// Which attempt.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// Whether the step is tried again.
        will_retry: bool,
    },
}

/// One step: a remote agent prompted through a template.
///
/// The template's `{input}` is replaced by the step's input (the previous
/// step's answer, the pipeline's input, or the branches' answers), `{prompt}`
/// by the pipeline's input, and `{NAME}` by the answer of the earlier step
/// called NAME. The default template is `{input}`.
#[derive(Debug, Clone)]
pub struct Step {
    name: String,
    agent: AgentHandle,
    template: String,
    policy: StepPolicy,
    options: CallOptions,
}

impl Step {
    /// A step called `name` that prompts `agent` with its input.
    pub fn new(name: impl Into<String>, agent: AgentHandle) -> Self {
        Step {
            name: name.into(),
            agent,
            template: INPUT.to_owned(),
            policy: StepPolicy::default(),
            options: CallOptions::default(),
        }
    }

    /// The prompt template (see [`Step`]).
    pub fn template(mut self, template: impl Into<String>) -> Self {
        self.template = template.into();
        self
    }

    /// The timeout and retry policy.
    pub fn policy(mut self, policy: StepPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The longest one attempt may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.policy.timeout = Some(timeout);
        self
    }

    /// How many times a failed attempt is retried, waiting `backoff` before
    /// the first retry and doubling after.
    pub fn retries(mut self, retries: usize, backoff: Duration) -> Self {
        self.policy.retries = retries;
        self.policy.backoff = backoff;
        self
    }

    /// How the agent is called (inactivity timeout, questions).
    pub fn call_options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A pipeline of remote agents: a [`Step`], a sequence, a fan-out with an
/// optional gather step, or a map with bounded concurrency. Pipelines nest.
///
/// ```no_run
/// # async fn run(researcher: nap_nats::AgentHandle, writer: nap_nats::AgentHandle,
/// #              editor: nap_nats::AgentHandle) -> Result<(), nap_orchestrator::Error> {
/// use std::time::Duration;
/// use nap_orchestrator::{Pipeline, Progress, Step};
///
/// let pipeline = Pipeline::sequence([
///     Pipeline::from(Step::new("research", researcher).template("Collect facts about {input}")),
///     Step::new("draft", writer)
///         .template("Write an article about {prompt} from these notes:\n{input}")
///         .timeout(Duration::from_secs(120))
///         .retries(2, Duration::from_secs(1))
///         .into(),
///     Step::new("edit", editor).template("Edit this article:\n{input}").into(),
/// ]);
/// let (progress, mut events) = tokio::sync::mpsc::unbounded_channel();
/// let printer = tokio::spawn(async move {
///     while let Some(event) = events.recv().await {
///         if let Progress::StepStarted { step, .. } = event {
///             eprintln!("{step} is working");
///         }
///     }
/// });
/// let article = pipeline.run_with_progress("quantum computing", progress).await?;
/// printer.await.ok();
/// println!("{article}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Pipeline {
    node: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Step(Step),
    Sequence(Vec<Pipeline>),
    FanOut {
        branches: Vec<Pipeline>,
        gather: Option<Box<Pipeline>>,
    },
    Map {
        step: Step,
        concurrency: usize,
    },
}

impl From<Step> for Pipeline {
    fn from(step: Step) -> Self {
        Pipeline {
            node: Node::Step(step),
        }
    }
}

impl Pipeline {
    /// One step.
    pub fn step(step: Step) -> Self {
        step.into()
    }

    /// Runs `stages` in order; each one's answer is the next one's input.
    pub fn sequence(stages: impl IntoIterator<Item = impl Into<Pipeline>>) -> Self {
        Pipeline {
            node: Node::Sequence(stages.into_iter().map(Into::into).collect()),
        }
    }

    /// Runs `branches` at once on the same input. Without a gather step the
    /// answer is every branch's answer under a `## NAME` heading, in order.
    pub fn fan_out(branches: impl IntoIterator<Item = impl Into<Pipeline>>) -> Self {
        Pipeline {
            node: Node::FanOut {
                branches: branches.into_iter().map(Into::into).collect(),
                gather: None,
            },
        }
    }

    /// For a fan-out: runs `gather` on the branches' answers (as `{input}`,
    /// and each one as `{NAME}`); its answer is the fan-out's. No effect on
    /// other pipelines.
    pub fn gather(mut self, gather: impl Into<Pipeline>) -> Self {
        if let Node::FanOut { gather: g, .. } = &mut self.node {
            *g = Some(Box::new(gather.into()));
        }
        self
    }

    /// Runs `step` on each non-empty line of the input, at most
    /// `concurrency` at once; the answer is the items' answers in input
    /// order, separated by blank lines. See [`map_inputs`] for a map over a
    /// list.
    pub fn map(step: Step, concurrency: usize) -> Self {
        Pipeline {
            node: Node::Map {
                step,
                concurrency: concurrency.max(1),
            },
        }
    }

    /// The name its answer is known by: a step's name, a sequence's last
    /// stage's, a fan-out's gather step's (or `fan-out`).
    pub fn name(&self) -> &str {
        match &self.node {
            Node::Step(step) | Node::Map { step, .. } => &step.name,
            Node::Sequence(stages) => stages.last().map_or("sequence", Pipeline::name),
            Node::FanOut { gather, .. } => gather.as_deref().map_or("fan-out", Pipeline::name),
        }
    }

    /// Runs the pipeline on `input` and returns its answer.
    pub async fn run(&self, input: impl Into<String>) -> Result<String> {
        let input = input.into();
        Run::new(None, &input).node(self, input.clone(), true).await
    }

    /// Like [`run`](Self::run), sending [`Progress`] events to `progress`
    /// as they happen.
    pub async fn run_with_progress(
        &self,
        input: impl Into<String>,
        progress: UnboundedSender<Progress>,
    ) -> Result<String> {
        let input = input.into();
        Run::new(Some(progress), &input)
            .node(self, input.clone(), true)
            .await
    }
}

/// Runs `step` on every input, at most `concurrency` at once, and returns
/// each input's outcome in input order. Progress events name the items
/// `NAME[i]`; in the step's template, `{input}` and `{prompt}` are both the
/// item.
pub async fn map_inputs(
    step: &Step,
    inputs: impl IntoIterator<Item = impl Into<String>>,
    concurrency: usize,
    progress: Option<UnboundedSender<Progress>>,
) -> Vec<Result<String>> {
    let inputs: Vec<String> = inputs.into_iter().map(Into::into).collect();
    let no_names = BTreeMap::new();
    let progress = progress.as_ref();
    let mut indexed: Vec<(usize, Result<String>)> =
        futures::stream::iter(inputs.into_iter().enumerate())
            .map(|(i, input)| {
                let no_names = &no_names;
                async move {
                    let run = Run::new(progress.cloned(), &input);
                    let label = format!("{}[{i}]", step.name);
                    (i, run.step(step, label, &input, no_names, false).await)
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    indexed.sort_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, answer)| answer).collect()
}

/// The state of one run: where progress goes, the answers so far.
struct Run {
    progress: Option<UnboundedSender<Progress>>,
    prompt: String,
    outputs: Mutex<BTreeMap<String, String>>,
}

impl Run {
    fn new(progress: Option<UnboundedSender<Progress>>, prompt: &str) -> Self {
        Run {
            progress,
            prompt: prompt.to_owned(),
            outputs: Mutex::new(BTreeMap::new()),
        }
    }

    fn emit(&self, event: Progress) {
        if let Some(progress) = &self.progress {
            // Nobody listening any more is fine: progress is informative.
            let _ = progress.send(event);
        }
    }

    fn outputs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // Only inserts and reads happen under the lock.
        self.outputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The template with its placeholders filled, in one pass (text put in
    /// is never scanned again).
    fn render(&self, template: &str, input: &str, named: &BTreeMap<String, String>) -> String {
        let outputs = self.outputs();
        let lookup = |key: &str| -> Option<&str> {
            match key {
                "input" => Some(input),
                "prompt" => Some(&self.prompt),
                _ => named
                    .get(key)
                    .or_else(|| outputs.get(key))
                    .map(String::as_str),
            }
        };
        let mut out = String::with_capacity(template.len() + input.len());
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after
                .find('}')
                .and_then(|close| Some((close, lookup(&after[..close])?)))
            {
                Some((close, value)) => {
                    out.push_str(value);
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn node<'a>(
        &'a self,
        pipeline: &'a Pipeline,
        input: String,
        is_output: bool,
    ) -> BoxFuture<'a, Result<String>> {
        async move {
            match &pipeline.node {
                Node::Step(step) => {
                    self.step(step, step.name.clone(), &input, &BTreeMap::new(), is_output)
                        .await
                }
                Node::Sequence(stages) => {
                    if stages.is_empty() {
                        return Err(Error::EmptyPipeline { what: "sequence" });
                    }
                    let mut current = input;
                    let last = stages.len() - 1;
                    for (i, stage) in stages.iter().enumerate() {
                        current = self.node(stage, current, is_output && i == last).await?;
                    }
                    Ok(current)
                }
                Node::FanOut { branches, gather } => {
                    if branches.is_empty() {
                        return Err(Error::EmptyPipeline { what: "fan-out" });
                    }
                    let answers =
                        join_all(branches.iter().map(|b| self.node(b, input.clone(), false))).await;
                    let mut named = BTreeMap::new();
                    let mut sections = Vec::new();
                    for (branch, answer) in branches.iter().zip(answers) {
                        let answer = answer?;
                        sections.push(format!("## {}\n\n{answer}", branch.name()));
                        named.insert(branch.name().to_owned(), answer);
                    }
                    let joined = sections.join("\n\n");
                    match gather {
                        None => Ok(joined),
                        Some(gather) => match &gather.node {
                            // A gather step also sees each branch by name.
                            Node::Step(step) => {
                                self.step(step, step.name.clone(), &joined, &named, is_output)
                                    .await
                            }
                            _ => self.node(gather, joined, is_output).await,
                        },
                    }
                }
                Node::Map { step, concurrency } => {
                    let items: Vec<String> = input
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect();
                    let answers = self.map(step, items, *concurrency, false).await;
                    let answers: Result<Vec<String>> = answers.into_iter().collect();
                    Ok(answers?.join("\n\n"))
                }
            }
        }
        .boxed()
    }

    async fn map(
        &self,
        step: &Step,
        inputs: Vec<String>,
        concurrency: usize,
        is_output: bool,
    ) -> Vec<Result<String>> {
        let no_names = BTreeMap::new();
        let mut indexed: Vec<(usize, Result<String>)> =
            futures::stream::iter(inputs.into_iter().enumerate())
                .map(|(i, input)| {
                    let label = format!("{}[{i}]", step.name);
                    let no_names = &no_names;
                    async move {
                        let answer = self.step(step, label, &input, no_names, is_output).await;
                        (i, answer)
                    }
                })
                .buffer_unordered(concurrency.max(1))
                .collect()
                .await;
        indexed.sort_by_key(|(i, _)| *i);
        indexed.into_iter().map(|(_, answer)| answer).collect()
    }

    /// One step with its timeout and retries; `label` names it in progress.
    async fn step(
        &self,
        step: &Step,
        label: String,
        input: &str,
        named: &BTreeMap<String, String>,
        is_output: bool,
    ) -> Result<String> {
        let prompt = self.render(&step.template, input, named);
        let attempts = AtomicU32::new(0);
        let attempt = || async {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            self.emit(Progress::StepStarted {
                step: label.clone(),
                attempt,
            });
            let call = call_agent(
                &label,
                &step.agent,
                Envelope::text(prompt.clone()),
                &step.options,
                |text| {
                    self.emit(Progress::Chunk {
                        step: label.clone(),
                        text: text.to_owned(),
                        is_output,
                    })
                },
            );
            match step.policy.timeout {
                None => call.await,
                Some(timeout) => tokio::time::timeout(timeout, call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::StepTimedOut {
                            step: label.clone(),
                            timeout,
                        })
                    }),
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(step.policy.backoff)
            .with_max_delay(step.policy.backoff.saturating_mul(16))
            .with_max_times(step.policy.retries);
        let outcome = attempt
            .retry(backoff)
            .when(Error::is_retryable)
            .notify(|error, wait| {
                tracing::info!(step = %label, %error, ?wait, "step failed, retrying");
                self.emit(Progress::StepFailed {
                    step: label.clone(),
                    attempt: attempts.load(Ordering::Relaxed),
                    error: error.to_string(),
                    will_retry: true,
                });
            })
            .await;
        match outcome {
            Ok(answer) => {
                self.emit(Progress::StepFinished {
                    step: label.clone(),
                    output: answer.text.clone(),
                });
                self.outputs()
                    .insert(step.name.clone(), answer.text.clone());
                Ok(answer.text)
            }
            Err(error) => {
                let attempts = attempts.load(Ordering::Relaxed);
                tracing::warn!(step = %label, %error, attempts, "step failed");
                self.emit(Progress::StepFailed {
                    step: label.clone(),
                    attempt: attempts,
                    error: error.to_string(),
                    will_retry: false,
                });
                Err(Error::StepFailed {
                    step: label,
                    attempts,
                    source: Box::new(error),
                })
            }
        }
    }
}
