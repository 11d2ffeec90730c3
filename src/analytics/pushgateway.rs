//! Pushing a run's metrics to a Prometheus Pushgateway over plain HTTP.
//!
//! The metrics go to the group `job="pytest-dynamo", pipeline="<pipeline>"`
//! with PUT, which replaces that group: the gateway keeps the last run of
//! each pipeline, and runs of different pipelines do not overwrite each other.

use std::time::Duration;

use base64::Engine as _;
use url::Url;

use crate::error::{Error, Result};

pub const JOB: &str = "pytest-dynamo";
const OPTION: &str = "--dynamo-pushgateway";
const FIX: &str = "give the Pushgateway's base URL, e.g. http://pushgateway:9091";

/// A checked Pushgateway base URL: where to push, and the credentials that
/// came in it, sent as HTTP basic auth and never shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The base URL without credentials.
    base: Url,
    /// `(user, password)`, percent-decoded.
    credentials: Option<(String, String)>,
}

impl Target {
    /// Parse and check `http://[user:password@]host[:port][/path]`: a URL
    /// library's parse (a port above 65535 or an empty host is refused, not
    /// read as something else), and nothing the push path cannot carry.
    pub fn parse(raw: &str) -> Result<Target> {
        let shown = redact(raw);
        let bad = |what: String| Error::config(OPTION, what, FIX);
        let mut url = match Url::parse(raw.trim()) {
            Ok(url) => url,
            Err(url::ParseError::EmptyHost) => return Err(bad(format!("{shown} has no host"))),
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                return Err(bad(format!("{shown} is not an http:// URL")))
            }
            Err(e) => return Err(bad(format!("{shown} is not a usable URL: {e}"))),
        };
        match url.scheme() {
            "http" => {}
            "https" => return Err(Error::config(
                OPTION,
                format!("{shown}: only plain http:// is supported"),
                "reach the Pushgateway over http inside the CI network, or through a local proxy",
            )),
            _ => return Err(bad(format!("{shown} is not an http:// URL"))),
        }
        // The WHATWG parser forgives `http:gw` and `http:///gw` (reading `gw`
        // as the host); a URL given to a CI job should say what it means.
        let written = raw.trim().get(..7).unwrap_or_default();
        if !written.eq_ignore_ascii_case("http://") {
            return Err(bad(format!("{shown} is not an http:// URL")));
        }
        let authority = &raw.trim()[7..];
        if url.host_str().is_none_or(str::is_empty) || authority.starts_with(['/', '\\']) {
            return Err(bad(format!("{shown} has no host")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(
                OPTION,
                format!(
                    "{shown} has a query or a fragment (after ? or #), which the push path \
                     cannot carry: the metrics would go elsewhere"
                ),
                FIX,
            ));
        }
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let user = decode(url.username());
            let password = decode(url.password().unwrap_or_default());
            // Cannot fail on an http URL with a host.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some((user, password))
        };
        Ok(Target {
            base: url,
            credentials,
        })
    }

    /// The push URL of a pipeline's group (no credentials in it).
    pub fn group_url(&self, pipeline: &str) -> Url {
        let mut url = self.base.clone();
        {
            // Cannot fail: an http URL is a base.
            let mut path = url.path_segments_mut().expect("an http URL has a path");
            path.pop_if_empty().extend(["metrics", "job", JOB]);
            path.extend(label_segment("pipeline", pipeline).split('/'));
        }
        url
    }

    /// The `Authorization` header's value, when the URL carried credentials.
    fn authorization(&self) -> Option<String> {
        self.credentials.as_ref().map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        })
    }
}

/// `raw` with any `user:password@` replaced by `***@`, for messages about
/// a URL that may not even parse.
pub fn redact(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    match raw[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &raw[start + at..]),
        None => raw.to_string(),
    }
}

/// Check a Pushgateway URL before the run starts.
pub fn check_url(url: &str) -> Result<()> {
    Target::parse(url).map(|_| ())
}

/// The push URL of a pipeline's group under a base URL, as shown.
pub fn group_url(base: &str, pipeline: &str) -> Result<String> {
    Ok(Target::parse(base)?.group_url(pipeline).to_string())
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
    if bytes.is_empty() {
        // The Pushgateway's spelling of an empty value.
        return "=".into();
    }
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// PUT the metrics text into the pipeline's group; the URL pushed to, as
/// shown (without credentials).
pub fn push(base: &str, pipeline: &str, text: &str, timeout: Duration) -> Result<String> {
    let target = Target::parse(base)?;
    let url = target.group_url(pipeline).to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let failed = |why: String| Error::Io {
        path: url.clone(),
        message: why,
    };
    let mut request = agent
        .put(&url)
        .header("Content-Type", "text/plain; version=0.0.4");
    if let Some(auth) = target.authorization() {
        request = request.header("Authorization", auth);
    }
    let mut response = request
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
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    fn refused(url: &str) -> String {
        Target::parse(url).unwrap_err().to_string()
    }

    #[test]
    fn urls_name_the_group() {
        assert_eq!(
            group_url("http://gw:9091/", "nightly").unwrap(),
            "http://gw:9091/metrics/job/pytest-dynamo/pipeline/nightly"
        );
        assert_eq!(
            group_url("http://gw:9091", "a/b").unwrap(),
            "http://gw:9091/metrics/job/pytest-dynamo/pipeline@base64/YS9i"
        );
        assert_eq!(
            group_url("http://gw:9091/prefix/", "pr").unwrap(),
            "http://gw:9091/prefix/metrics/job/pytest-dynamo/pipeline/pr"
        );
        assert_eq!(base64url(b"ab"), "YWI=");
        assert_eq!(base64url(b""), "=");
    }

    #[test]
    fn only_http_urls_with_a_host() {
        assert!(check_url("http://127.0.0.1:9091").is_ok());
        assert!(refused("https://gw").contains("only plain http"));
        assert!(refused("gw:9091").contains("not an http:// URL"));
        assert!(refused("pushgateway").contains("not an http:// URL"));
        assert!(refused("http:///x").contains("no host"));
        assert!(refused("http://:9091").contains("http://:9091 has no host"));
        assert!(refused("http:gw:9091").contains("not an http:// URL"));
        assert!(check_url("HTTP://GW:9091").is_ok());
    }

    #[test]
    fn a_port_out_of_range_is_refused_not_read_as_port_80() {
        let err = refused("http://127.0.0.1:99999");
        assert!(
            err.contains("http://127.0.0.1:99999 is not a usable URL: invalid port number"),
            "{err}"
        );
        assert!(check_url("http://127.0.0.1:65535").is_ok());
    }

    #[test]
    fn a_query_or_fragment_is_refused() {
        for url in [
            "http://gw:9091/?x=1#frag",
            "http://gw:9091?x=1",
            "http://gw:9091/#f",
        ] {
            assert!(refused(url).contains("has a query or a fragment"), "{url}");
        }
    }

    #[test]
    fn credentials_are_kept_apart_and_never_shown() {
        let t = Target::parse("http://ci%40corp:p%3Ass@gw:9091").unwrap();
        assert_eq!(
            t.credentials,
            Some(("ci@corp".to_string(), "p:ss".to_string()))
        );
        assert_eq!(
            t.group_url("pr").as_str(),
            "http://gw:9091/metrics/job/pytest-dynamo/pipeline/pr"
        );
        // base64("ci@corp:p:ss")
        assert_eq!(t.authorization().as_deref(), Some("Basic Y2lAY29ycDpwOnNz"));
        assert_eq!(Target::parse("http://gw").unwrap().authorization(), None);
        let err = refused("https://user:secret@gw:9091");
        assert!(
            !err.contains("secret") && err.contains("https://***@gw:9091"),
            "{err}"
        );
        let err = refused("http://user:secret@gw:99999/x");
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(redact("http://a:b@h/p@q"), "http://***@h/p@q");
        assert_eq!(redact("no url"), "no url");
    }

    /// A one-request HTTP server: answers 200 and hands back what it got.
    fn one_request() -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            (&stream)
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            head + &String::from_utf8(body).unwrap()
        });
        (port, server)
    }

    #[test]
    fn credentials_go_as_basic_auth_and_the_path_is_the_group() {
        let (port, server) = one_request();
        let shown = push(
            &format!("http://user:secret@127.0.0.1:{port}/"),
            "pr",
            "x 1\n",
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            shown,
            format!("http://127.0.0.1:{port}/metrics/job/pytest-dynamo/pipeline/pr")
        );
        let request = server.join().unwrap();
        assert!(
            request.starts_with("PUT /metrics/job/pytest-dynamo/pipeline/pr HTTP/1.1\r\n"),
            "{request}"
        );
        // base64("user:secret")
        assert!(
            request
                .to_ascii_lowercase()
                .contains("authorization: basic dxnlcjpzzwnyzxq=\r\n"),
            "{request}"
        );
        assert!(request.ends_with("x 1\n"), "{request}");
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
            &format!("http://me:hidden@127.0.0.1:{port}"),
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
        assert!(!err.to_string().contains("hidden"), "{err}");
    }
}
