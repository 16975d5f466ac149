//! A conversation as models see it: messages with roles and content parts.

use nap_proto::Attachment;
use serde::{Deserialize, Serialize};

use crate::tool::{ToolCall, ToolResult};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The person (or agent) prompting.
    User,
    /// The model.
    Assistant,
    /// Results of tool calls the model asked for.
    Tool,
}

/// One piece of a message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, from a protocol attachment (§5.2).
    Image {
        /// Its MIME type, such as `image/png`.
        media_type: String,
        /// The raw bytes.
        data: Vec<u8>,
    },
    /// A binary file, from a protocol attachment (§5.2).
    File {
        /// The attachment's file name.
        filename: String,
        /// Its MIME type, guessed from the file name.
        media_type: String,
        /// The raw bytes.
        data: Vec<u8>,
    },
    /// A tool call the model made (assistant messages only).
    ToolCall(ToolCall),
    /// The result of a tool call (tool messages only).
    ToolResult(ToolResult),
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text { text: text.into() }
    }

    /// The part for a protocol attachment: images become [`ContentPart::Image`],
    /// UTF-8 text becomes a [`ContentPart::Text`] quoting the file, anything
    /// else becomes a [`ContentPart::File`].
    pub fn from_attachment(attachment: &Attachment) -> Self {
        let media_type = media_type_for(&attachment.filename);
        if media_type.starts_with("image/") {
            return ContentPart::Image {
                media_type: media_type.to_owned(),
                data: attachment.content.clone(),
            };
        }
        match std::str::from_utf8(&attachment.content) {
            Ok(text) if media_type != "application/pdf" => ContentPart::Text {
                text: format!(
                    "Attached file `{}`:\n```\n{}\n```",
                    attachment.filename, text
                ),
            },
            _ => ContentPart::File {
                filename: attachment.filename.clone(),
                media_type: media_type.to_owned(),
                data: attachment.content.clone(),
            },
        }
    }
}

/// The MIME type of a file name's extension (`application/octet-stream` when unknown).
pub fn media_type_for(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        _ => "application/octet-stream",
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// What it says, in order.
    pub content: Vec<ContentPart>,
}

impl Message {
    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: vec![ContentPart::text(text)],
        }
    }

    /// A user message with just text.
    pub fn user(text: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: vec![ContentPart::text(text)],
        }
    }

    /// A user message with text followed by one part per attachment.
    pub fn user_with_attachments(text: impl Into<String>, attachments: &[Attachment]) -> Self {
        let mut content = vec![ContentPart::text(text)];
        content.extend(attachments.iter().map(ContentPart::from_attachment));
        Message {
            role: Role::User,
            content,
        }
    }

    /// An assistant message with just text.
    pub fn assistant(text: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: vec![ContentPart::text(text)],
        }
    }

    /// An assistant message with (possibly empty) text and tool calls.
    pub fn assistant_with_tool_calls(text: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        let text = text.into();
        let mut content = Vec::with_capacity(calls.len() + 1);
        if !text.is_empty() {
            content.push(ContentPart::Text { text });
        }
        content.extend(calls.into_iter().map(ContentPart::ToolCall));
        Message {
            role: Role::Assistant,
            content,
        }
    }

    /// A tool message carrying the results of one round of tool calls.
    pub fn tool_results(results: Vec<ToolResult>) -> Self {
        Message {
            role: Role::Tool,
            content: results.into_iter().map(ContentPart::ToolResult).collect(),
        }
    }

    /// The text parts, concatenated.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The tool calls in this message.
    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.content.iter().filter_map(|p| match p {
            ContentPart::ToolCall(c) => Some(c),
            _ => None,
        })
    }

    /// The tool results in this message.
    pub fn tool_results_iter(&self) -> impl Iterator<Item = &ToolResult> {
        self.content.iter().filter_map(|p| match p {
            ContentPart::ToolResult(r) => Some(r),
            _ => None,
        })
    }

    /// This message with images and files replaced by a short text note, to
    /// keep conversation memory small.
    pub fn without_binary(&self) -> Message {
        let content = self
            .content
            .iter()
            .map(|p| match p {
                ContentPart::Image { media_type, data } => ContentPart::text(format!(
                    "[an earlier {media_type} image of {} bytes, not kept in memory]",
                    data.len()
                )),
                ContentPart::File { filename, data, .. } => ContentPart::text(format!(
                    "[an earlier attachment `{filename}` of {} bytes, not kept in memory]",
                    data.len()
                )),
                other => other.clone(),
            })
            .collect();
        Message {
            role: self.role,
            content,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn attachment(name: &str, content: &[u8]) -> Attachment {
        Attachment {
            filename: name.into(),
            content: content.to_vec(),
            extra: Default::default(),
        }
    }

    #[test]
    fn attachments_become_parts_by_kind() {
        let m = Message::user_with_attachments(
            "look",
            &[
                attachment("cat.PNG", &[0x89, b'P', b'N', b'G']),
                attachment("notes.txt", b"hello"),
                attachment("blob.bin", &[0xff, 0xfe]),
            ],
        );
        assert_eq!(m.content.len(), 4);
        assert!(
            matches!(&m.content[1], ContentPart::Image { media_type, .. } if media_type == "image/png")
        );
        assert!(
            matches!(&m.content[2], ContentPart::Text { text } if text.contains("notes.txt") && text.contains("hello"))
        );
        assert!(
            matches!(&m.content[3], ContentPart::File { filename, .. } if filename == "blob.bin")
        );
        let small = m.without_binary();
        assert!(
            small
                .content
                .iter()
                .all(|p| matches!(p, ContentPart::Text { .. }))
        );
    }
}
