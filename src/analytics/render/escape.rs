//! Escaping untrusted text for Markdown, by where it goes, and for HTML.
//! Node ids, owners, run ids, commits, GPU and metric names come from
//! records and configuration files anyone can write: none of them may close
//! a code span, start HTML, split a table row or cell, or end a heading.
//! Every Markdown output (the report summary, the tickets, the gate
//! verdicts) goes through these few functions; the HTML page and its charts
//! through `html`.

/// Plain text in a paragraph, a heading or a table cell: HTML's special
/// characters become entities, Markdown's punctuation is backslash-escaped,
/// line breaks and other control characters become spaces.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // `|` is escaped everywhere: outside a table `\|` still reads `|`.
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span outside a table (a list item, a paragraph).
pub fn code(s: &str) -> String {
    span(s, false)
}

/// A code span inside a table cell: GFM splits cells at every unescaped
/// `|`, code spans included, and reads `\|` there as `|`.
pub fn code_cell(s: &str) -> String {
    span(s, true)
}

fn span(s: &str, in_table: bool) -> String {
    let mut content = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' if in_table => content.push_str("\\|"),
            // A line break ends a table row or a list item; NUL and the like
            // are no part of a name.
            c if c.is_control() => content.push(' '),
            c => content.push(c),
        }
    }
    if content.is_empty() {
        return "` `".into();
    }
    // A fence longer than any run of backticks inside cannot be closed by it.
    let ticks = "`".repeat(longest_run(&content, '`') + 1);
    // A space on each side keeps a leading or trailing backtick (or space)
    // from merging with the fence; CommonMark strips exactly one each side.
    let pad = content.starts_with(['`', ' ']) || content.ends_with(['`', ' ']);
    if pad {
        format!("{ticks} {content} {ticks}")
    } else {
        format!("{ticks}{content}{ticks}")
    }
}

/// The fence of a fenced code block holding `content`: three backticks, or
/// more than the longest run of backticks inside, so no line closes it.
pub fn fence(content: &str) -> String {
    "`".repeat((longest_run(content, '`') + 1).max(3))
}

/// Text or an attribute value in HTML: its five special characters as entities.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for x in s.chars() {
        if x == c {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_start_html_or_markup() {
        assert_eq!(
            text("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(text("a | b\r\nc"), "a \\| b  c");
        assert_eq!(text("*bold* [l](u) `c`"), "\\*bold\\* \\[l\\](u) \\`c\\`");
        assert_eq!(text("@team/serving & co"), "@team/serving &amp; co");
    }

    #[test]
    fn a_backtick_cannot_close_its_code_span() {
        assert_eq!(code("t.py::a"), "`t.py::a`");
        assert_eq!(code("a`<img onerror=x>`"), "`` a`<img onerror=x>` ``");
        assert_eq!(code("x``y"), "```x``y```");
        assert_eq!(code(""), "` `");
        assert_eq!(code("a\rb\nc"), "`a b c`");
    }

    #[test]
    fn a_pipe_in_a_cell_is_escaped_only_there() {
        assert_eq!(code_cell("t.py::a[x|y]"), "`t.py::a[x\\|y]`");
        assert_eq!(code("t.py::a[x|y]"), "`t.py::a[x|y]`");
    }

    #[test]
    fn html_escapes_markup() {
        assert_eq!(
            html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn a_fence_outgrows_the_backticks_inside() {
        assert_eq!(fence("plain"), "```");
        assert_eq!(fence("a ```` b"), "`````");
    }
}
