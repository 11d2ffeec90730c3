//! The history report rendered for people: a terminal table (`text`),
//! Markdown for CI job pages and tickets (`markdown`), one self-contained
//! HTML page (`html`, with `charts`), and the escaping every Markdown
//! writer shares (`escape`).

pub mod charts;
pub mod escape;
pub mod html;
pub mod markdown;
pub mod text;
