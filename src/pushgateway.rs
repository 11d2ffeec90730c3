//! Pushing a run's metrics to a Prometheus Pushgateway over plain HTTP.
//!
//! The metrics go to the group `job="pytest-dynamo", pipeline="<pipeline>"`
//! with PUT, which replaces that group: the gateway keeps the last run of
//! each pipeline, and runs of different pipelines do not overwrite each other.

use std::time::Duration;

use crate::error::{Error, Result};

pub const JOB: &str = "pytest-dynamo";

/// Check a Pushgateway URL before the run starts: `http://host[:port][/path]`.
pub fn check_url(url: &str) -> Result<()> {
    let fix = "give the Pushgateway's base URL, e.g. http://pushgateway:9091";
    if url.starts_with("https://") {
        return Err(Error::config(
            "--dynamo-pushgateway",
            format!("{url}: only plain http:// is supported"),
            "reach the Pushgateway over http inside the CI network, or through a local proxy",
        ));
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(Error::config(
            "--dynamo-pushgateway",
            format!("{url} is not an http:// URL"),
            fix,
        ));
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(Error::config(
            "--dynamo-pushgateway",
            format!("{url} has no host"),
            fix,
        ));
    }
    Ok(())
}

/// The push URL of a pipeline's group under a base URL.
pub fn group_url(base: &str, pipeline: &str) -> String {
    format!(
        "{}/metrics/job/{JOB}/{}",
        base.trim_end_matches('/'),
        label_segment("pipeline", pipeline)
    )
}

/// `name/value`, or `name@base64/<base64url>` when the value holds a
/// character a path segment cannot carry (the Pushgateway's own encoding).
fn label_segment(name: &str, value: &str) -> String {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return format!("{name}/{value}");
    }
    format!("{name}@base64/{}", base64url(value.as_bytes()))
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    if out.is_empty() {
        // The Pushgateway's spelling of an empty value.
        out.push('=');
    }
    out
}

/// PUT the metrics text into the pipeline's group.
pub fn push(base: &str, pipeline: &str, text: &str, timeout: Duration) -> Result<String> {
    check_url(base)?;
    let url = group_url(base, pipeline);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let failed = |why: String| Error::Io {
        path: url.clone(),
        message: why,
    };
    let mut response = agent
        .put(&url)
        .header("Content-Type", "text/plain; version=0.0.4")
        .send(text)
        .map_err(|e| failed(format!("push failed: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.body_mut().read_to_string().unwrap_or_default();
        return Err(failed(format!(
            "Pushgateway answered {status}: {}",
            body.trim()
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_group() {
        assert_eq!(
            group_url("http://gw:9091/", "nightly"),
            "http://gw:9091/metrics/job/pytest-dynamo/pipeline/nightly"
        );
        assert_eq!(
            group_url("http://gw:9091", "a/b"),
            "http://gw:9091/metrics/job/pytest-dynamo/pipeline@base64/YS9i"
        );
        assert_eq!(base64url(b"ab"), "YWI=");
        assert_eq!(base64url(b""), "=");
    }

    #[test]
    fn only_http_urls_with_a_host() {
        assert!(check_url("http://127.0.0.1:9091").is_ok());
        assert!(check_url("https://gw")
            .unwrap_err()
            .to_string()
            .contains("only plain http"));
        assert!(check_url("gw:9091")
            .unwrap_err()
            .to_string()
            .contains("not an http:// URL"));
        assert!(check_url("http:///x")
            .unwrap_err()
            .to_string()
            .contains("no host"));
    }

    #[test]
    fn a_closed_port_is_an_error_naming_the_url() {
        // Bind then drop: the port is free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = push(
            &format!("http://127.0.0.1:{port}"),
            "pr",
            "x 1\n",
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("127.0.0.1:{port}/metrics/job/pytest-dynamo")),
            "{err}"
        );
    }
}
