//! Where a user's documentation is. An installed wheel has no `docs/`
//! folder, so messages name pages by URL: the docs of the tag this version
//! was released from (the release workflow tags `v<version>`).

/// The URL of one documentation page, as a literal (usable in `concat!` and
/// `const`s): `docs_url!("gates.md")`. The one place the base is written.
#[macro_export]
macro_rules! docs_url {
    ($page:literal) => {
        concat!(
            "https://github.com/ai-dynamo/pytest-dynamo/blob/v",
            env!("CARGO_PKG_VERSION"),
            "/docs/",
            $page
        )
    };
}

/// The base every page URL starts with (handed to Python as `DOCS_URL`).
pub const BASE: &str = docs_url!("");

#[cfg(test)]
mod tests {
    #[test]
    fn pages_are_urls_of_this_versions_tag() {
        let url = docs_url!("gates.md");
        assert!(url.starts_with(super::BASE));
        assert!(url.ends_with(&format!("/v{}/docs/gates.md", env!("CARGO_PKG_VERSION"))));
    }
}
