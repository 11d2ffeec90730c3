//! The history report rendered for people: a terminal table (`text`),
//! Markdown for CI job pages and tickets (`markdown`), one self-contained
//! HTML page (`html`, with `charts`), and the escaping every Markdown
//! writer shares (`escape`).

mod charts;
pub mod escape;
mod html;
mod markdown;
pub mod text;

pub use html::render as render_html;
pub use markdown::{summary as render_markdown, tickets, Ticket};
pub use text::render as render_text;
