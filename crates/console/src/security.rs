//! The console's request checks and response headers: same-origin
//! (`Origin`, else `Referer`, against `Host`), the session's CSRF token,
//! the session cookie, and the headers every answer carries.

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The Content-Security-Policy of every console answer (ADR 0021). No
/// inline scripts or styles anywhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'";

/// Why a state-changing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Neither `Origin` nor `Referer`.
    NoOrigin,
    /// `Origin`/`Referer` names another site (or is unreadable).
    CrossOrigin,
    /// No `Host` to compare with.
    NoHost,
    /// No CSRF token in the form or the header.
    NoToken,
    /// A CSRF token that is not the session's.
    WrongToken,
}

impl Refusal {
    /// The German explanation for the error page.
    pub fn german(self) -> &'static str {
        match self {
            Self::NoOrigin => "Die Anfrage nennt ihre Herkunft nicht (weder Origin noch Referer). Aus Sicherheitsgründen werden Änderungen nur von Seiten der Konsole selbst angenommen.",
            Self::CrossOrigin => "Die Anfrage kam von einer anderen Website. Änderungen werden nur von Seiten der Konsole selbst angenommen.",
            Self::NoHost => "Die Anfrage nennt keinen Host.",
            Self::NoToken => "Der Anfrage fehlt das Sicherheitstoken (CSRF) der Sitzung. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.",
            Self::WrongToken => "Das Sicherheitstoken (CSRF) passt nicht zur Sitzung. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.",
        }
    }
}

/// Scheme, host (lower case, IPv6 in brackets) and port of an origin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `host[:port]` → host and port; `None` when unreadable.
fn parse_authority(s: &str) -> Option<Authority> {
    let s = s.trim();
    if s.is_empty() || s.contains('@') {
        return None;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{}]", h.to_ascii_lowercase()), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p.parse().ok()?)),
            None => (s.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() || host.contains(['/', ' ', '\\']) {
        return None;
    }
    Some(Authority { host, port })
}

/// Scheme and authority of an absolute URL (`Origin` or `Referer`).
fn parse_origin(url: &str) -> Option<(String, Authority)> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, parse_authority(&rest[..end])?))
}

/// Does the request come from the console's own origin? `Origin` (or,
/// without it, `Referer`) must name the host and port of `Host`
/// (`authority` from the request URI when there is no `Host`, as in
/// HTTP/2). With `tls`, the origin must also be `https`. A missing port
/// means the scheme's default on both sides.
pub fn check_origin(
    headers: &HeaderMap,
    uri_authority: Option<&str>,
    tls: bool,
) -> Result<(), Refusal> {
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .ok_or(Refusal::NoOrigin)?;
    let source = source.to_str().map_err(|_| Refusal::CrossOrigin)?;
    let (scheme, origin) = parse_origin(source).ok_or(Refusal::CrossOrigin)?;
    if tls && scheme != "https" {
        return Err(Refusal::CrossOrigin);
    }
    let default = default_port(&scheme).ok_or(Refusal::CrossOrigin)?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(uri_authority)
        .ok_or(Refusal::NoHost)?;
    let host = parse_authority(host).ok_or(Refusal::NoHost)?;
    let same =
        origin.host == host.host && origin.port.unwrap_or(default) == host.port.unwrap_or(default);
    if same {
        Ok(())
    } else {
        Err(Refusal::CrossOrigin)
    }
}

/// Constant-time comparison of a presented CSRF token with the session's.
pub fn check_csrf(expected: &str, presented: Option<&str>) -> Result<(), Refusal> {
    let presented = presented
        .filter(|p| !p.is_empty())
        .ok_or(Refusal::NoToken)?;
    let (a, b) = (expected.as_bytes(), presented.as_bytes());
    // Length is not secret (always 64); the contents are compared fully.
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(u8::from(a.len() != b.len()), |acc, (x, y)| acc | (x ^ y));
    if diff == 0 {
        Ok(())
    } else {
        Err(Refusal::WrongToken)
    }
}

/// The session cookie's name: `__Host-ds-session` over TLS; browsers
/// refuse `__Host-` cookies without `Secure`, so plain HTTP uses
/// `ds-session`.
pub fn cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-ds-session"
    } else {
        "ds-session"
    }
}

/// `Set-Cookie` value starting a session.
pub fn session_cookie(id: &str, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict{secure}",
        cookie_name(tls)
    )
}

/// `Set-Cookie` value ending a session.
pub fn clear_cookie(tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
        cookie_name(tls)
    )
}

/// The session id from the request's `Cookie` headers.
pub fn session_id(headers: &HeaderMap, tls: bool) -> Option<String> {
    let name = cookie_name(tls);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Put the console's security headers on an answer; `page`: also
/// `Cache-Control: no-store` (not on static assets, which set their own).
pub fn apply_headers(headers: &mut HeaderMap, page: bool) {
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    if page {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn same_origin_is_accepted() {
        for (origin, host) in [
            ("http://hub.example:8080", "hub.example:8080"),
            ("http://HUB.example:8080", "hub.example:8080"),
            ("http://hub.example", "hub.example"),
            ("http://hub.example:80", "hub.example"),
            ("https://hub.example", "hub.example:443"),
            ("http://[::1]:8080", "[::1]:8080"),
            // Behind a TLS-terminating proxy the Host has no port.
            ("https://hub.example", "hub.example"),
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ] {
            let h = headers(&[("origin", origin), ("host", host)]);
            assert_eq!(check_origin(&h, None, false), Ok(()), "{origin} {host}");
        }
        // Referer stands in for a missing Origin.
        let h = headers(&[
            ("referer", "http://hub.example:8080/console/nachrichten?x=1"),
            ("host", "hub.example:8080"),
        ]);
        assert_eq!(check_origin(&h, None, false), Ok(()));
        // HTTP/2: the authority of the request URI.
        let h = headers(&[("origin", "https://hub.example")]);
        assert_eq!(check_origin(&h, Some("hub.example"), true), Ok(()));
    }

    #[test]
    fn cross_origin_and_missing_origin_are_refused() {
        for (origin, host) in [
            ("http://evil.example:8080", "hub.example:8080"),
            ("http://hub.example:8081", "hub.example:8080"),
            ("http://hub.example.evil.example:8080", "hub.example:8080"),
            ("https://hub.example:8443", "hub.example"),
            ("null", "hub.example"),
            ("http://user@hub.example", "hub.example"),
            ("file:///etc/passwd", "hub.example"),
        ] {
            let h = headers(&[("origin", origin), ("host", host)]);
            assert_eq!(
                check_origin(&h, None, false),
                Err(Refusal::CrossOrigin),
                "{origin} {host}"
            );
        }
        // Origin wins over a same-origin Referer.
        let h = headers(&[
            ("origin", "http://evil.example"),
            ("referer", "http://hub.example/console"),
            ("host", "hub.example"),
        ]);
        assert_eq!(check_origin(&h, None, false), Err(Refusal::CrossOrigin));
        let h = headers(&[("host", "hub.example")]);
        assert_eq!(check_origin(&h, None, false), Err(Refusal::NoOrigin));
        // Over TLS an http origin is another origin.
        let h = headers(&[
            ("origin", "http://hub.example:443"),
            ("host", "hub.example"),
        ]);
        assert_eq!(check_origin(&h, None, true), Err(Refusal::CrossOrigin));
        let h = headers(&[("origin", "http://hub.example")]);
        assert_eq!(check_origin(&h, None, false), Err(Refusal::NoHost));
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let t = "a".repeat(64);
        assert_eq!(check_csrf(&t, Some(&t)), Ok(()));
        assert_eq!(check_csrf(&t, None), Err(Refusal::NoToken));
        assert_eq!(check_csrf(&t, Some("")), Err(Refusal::NoToken));
        assert_eq!(
            check_csrf(&t, Some(&"b".repeat(64))),
            Err(Refusal::WrongToken)
        );
        assert_eq!(check_csrf(&t, Some(&t[..63])), Err(Refusal::WrongToken));
        assert_eq!(
            check_csrf(&t, Some(&format!("{t}a"))),
            Err(Refusal::WrongToken)
        );
    }

    #[test]
    fn cookies_are_host_bound_over_tls_and_read_back() {
        assert_eq!(
            session_cookie("abc", true),
            "__Host-ds-session=abc; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            session_cookie("abc", false),
            "ds-session=abc; Path=/; HttpOnly; SameSite=Strict"
        );
        assert!(clear_cookie(true).contains("Max-Age=0"));
        let h = headers(&[("cookie", "a=1; __Host-ds-session=xyz; b=2")]);
        assert_eq!(session_id(&h, true), Some("xyz".into()));
        assert_eq!(session_id(&h, false), None);
        let h = headers(&[("cookie", "ds-session=")]);
        assert_eq!(session_id(&h, false), None);
    }

    #[test]
    fn security_headers_are_set() {
        let mut h = HeaderMap::new();
        apply_headers(&mut h, true);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        let mut h = HeaderMap::new();
        apply_headers(&mut h, false);
        assert!(h.get(header::CACHE_CONTROL).is_none());
        assert!(CSP.contains("frame-ancestors 'none'") && !CSP.contains("unsafe"));
    }
}
