//! The framing of OSCI messages: a `Multipart/Related` body (RFC 2387)
//! whose MIME headers stand at the start of the HTTP body itself — the
//! reference library writes them there and sends `Content-Type:
//! text/xml` as the HTTP header. The root part (`Content-ID:
//! <osci@message>`) is the SOAP envelope; further parts are attachments
//! referenced as `cid:…` (encrypted data, content).
//!
//! [`parse`] splits such a body into its parts without copying them.
//! Bounded: at most [`MAX_PARTS`] parts, and header blocks of at most
//! [`MAX_HEADER_BYTES`].

/// Most parts accepted.
pub const MAX_PARTS: usize = 1_000;
/// Longest header block (of the message and of each part).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Why a body is not an OSCI multipart message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MimeError {
    #[error("the body does not start with MIME headers naming a Multipart/Related boundary")]
    NoBoundary,
    #[error("a header block is longer than {MAX_HEADER_BYTES} bytes or does not end")]
    Headers,
    #[error("the closing boundary is missing")]
    Unterminated,
    #[error("more than {MAX_PARTS} parts")]
    TooManyParts,
}

/// One part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Headers,
    pub body: &'a [u8],
}

impl Part<'_> {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Content-ID` without its angle brackets.
    pub fn content_id(&self) -> Option<&str> {
        self.header("content-id")
            .map(|v| v.trim_start_matches('<').trim_end_matches('>'))
    }
}

/// A parsed message: its parts, root first as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub parts: Vec<Part<'a>>,
}

impl<'a> Message<'a> {
    /// The part with Content-ID `id` (`cid:` prefix allowed).
    pub fn part(&self, id: &str) -> Option<&Part<'a>> {
        let id = id.strip_prefix("cid:").unwrap_or(id);
        self.parts.iter().find(|p| p.content_id() == Some(id))
    }
}

/// Split a header block at its end (an empty line, CRLF or LF): the
/// headers and the rest.
/// Header name (lower case) and value.
type Headers = Vec<(String, String)>;

fn headers(data: &[u8]) -> Result<(Headers, &[u8]), MimeError> {
    // No headers at all: the empty line comes first.
    if let Some(rest) = data
        .strip_prefix(b"\r\n")
        .or_else(|| data.strip_prefix(b"\n"))
    {
        return Ok((Vec::new(), rest));
    }
    let window = &data[..data.len().min(MAX_HEADER_BYTES + 4)];
    let (end, skip) = find(window, b"\r\n\r\n")
        .map(|i| (i, 4))
        .into_iter()
        .chain(find(window, b"\n\n").map(|i| (i, 2)))
        .min_by_key(|(i, _)| *i)
        .ok_or(MimeError::Headers)?;
    let block = String::from_utf8_lossy(&data[..end]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            // A folded continuation line.
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    Ok((out, &data[end + skip..]))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    // memchr's SIMD substring search: a 100 MB attachment part is
    // scanned for its closing boundary in tens of milliseconds
    // (`windows().position()` took 330 ms).
    memchr::memmem::find(hay, needle)
}

/// The `boundary` parameter of a Content-Type value.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Parse an OSCI HTTP body (see the module docs).
///
/// # Errors
///
/// See [`MimeError`].
pub fn parse(body: &[u8]) -> Result<Message<'_>, MimeError> {
    let (top, rest) = headers(body).map_err(|_| MimeError::NoBoundary)?;
    let ct = top
        .iter()
        .find(|(n, _)| n == "content-type")
        .map(|(_, v)| v.as_str())
        .ok_or(MimeError::NoBoundary)?;
    if !ct.to_ascii_lowercase().starts_with("multipart/related") {
        return Err(MimeError::NoBoundary);
    }
    let b = boundary(ct).ok_or(MimeError::NoBoundary)?;
    let delimiter = format!("--{b}").into_bytes();
    // The first delimiter (preamble before it is ignored).
    let start = find(rest, &delimiter).ok_or(MimeError::Unterminated)?;
    let mut cursor = &rest[start + delimiter.len()..];
    let mut parts = Vec::new();
    loop {
        if cursor.starts_with(b"--") {
            return Ok(Message { parts });
        }
        // The rest of the delimiter line.
        let eol = find(cursor, b"\n").ok_or(MimeError::Unterminated)?;
        cursor = &cursor[eol + 1..];
        if parts.len() == MAX_PARTS {
            return Err(MimeError::TooManyParts);
        }
        let (hs, content) = headers(cursor)?;
        // The next delimiter, with the line break before it.
        let mut next_delim = b"\r\n".to_vec();
        next_delim.extend_from_slice(&delimiter);
        let (end, after) = match find(content, &next_delim) {
            Some(i) => (i, i + next_delim.len()),
            None => {
                let mut lf = b"\n".to_vec();
                lf.extend_from_slice(&delimiter);
                let i = find(content, &lf).ok_or(MimeError::Unterminated)?;
                (i, i + lf.len())
            }
        };
        parts.push(Part {
            headers: hs,
            body: &content[..end],
        });
        cursor = &content[after..];
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parts_headers_and_cid_lookup() {
        let body = b"MIME-Version: 1.0\r\nContent-Type: Multipart/Related; boundary=XX; type=text/xml\r\n\r\n--XX\r\nContent-Type: text/xml\r\nContent-ID: <osci@message>\r\n\r\n<a/>\r\n--XX\r\nContent-ID: <test.txt>\r\n\r\nhello\r\n\r\n--XX--\r\n";
        let m = parse(body).unwrap();
        assert_eq!(m.parts.len(), 2);
        assert_eq!(m.parts[0].body, b"<a/>");
        assert_eq!(m.part("cid:test.txt").unwrap().body, b"hello\r\n");
        assert_eq!(
            m.part("osci@message").unwrap().header("Content-Type"),
            Some("text/xml")
        );
    }

    #[test]
    fn broken_bodies_are_refused() {
        assert_eq!(parse(b"<a/>").unwrap_err(), MimeError::NoBoundary);
        assert_eq!(
            parse(b"Content-Type: text/xml\r\n\r\n<a/>").unwrap_err(),
            MimeError::NoBoundary
        );
        assert_eq!(
            parse(b"Content-Type: multipart/related; boundary=Q\r\n\r\n--Q\r\n\r\nno end")
                .unwrap_err(),
            MimeError::Unterminated
        );
        let many: String = std::iter::repeat_n("--Q\r\n\r\nx\r\n", MAX_PARTS + 1).collect();
        let body = format!("Content-Type: multipart/related; boundary=Q\r\n\r\n{many}--Q--");
        assert_eq!(parse(body.as_bytes()).unwrap_err(), MimeError::TooManyParts);
    }
}
