//! Header storage: order-preserving, case-insensitive, compact-form aware.
//!
//! Header lines are kept exactly as received (one [`Header`] per line after
//! unfolding) because a response must copy the Via lines in order and a proxy
//! in front of us may have written several Via values on one line. Splitting
//! of comma-separated values is done on demand ([`split_comma`]).

use std::borrow::Cow;

/// RFC 3261 §7.3.3 compact forms (plus the RFC 3515/4028/6665/3892 ones
/// carriers actually send), mapped to the full name we store.
const COMPACT: &[(char, &str)] = &[
    ('v', "Via"),
    ('i', "Call-ID"),
    ('l', "Content-Length"),
    ('f', "From"),
    ('t', "To"),
    ('m', "Contact"),
    ('c', "Content-Type"),
    ('k', "Supported"),
    ('s', "Subject"),
    ('e', "Content-Encoding"),
    ('o', "Event"),
    ('r', "Refer-To"),
    ('b', "Referred-By"),
    ('x', "Session-Expires"),
    ('u', "Allow-Events"),
];

/// Full names we know, in the spelling we write them out with. Names not
/// listed here are kept as received; lookups are case-insensitive anyway.
const KNOWN: &[&str] = &[
    "Via",
    "Call-ID",
    "Content-Length",
    "From",
    "To",
    "Contact",
    "Content-Type",
    "Supported",
    "Subject",
    "Content-Encoding",
    "Event",
    "Refer-To",
    "Referred-By",
    "Session-Expires",
    "Allow-Events",
    "CSeq",
    "Max-Forwards",
    "Record-Route",
    "Route",
    "User-Agent",
    "Server",
    "Allow",
    "Require",
    "Proxy-Require",
    "Unsupported",
    "Expires",
    "Min-Expires",
    "Min-SE",
    "Authorization",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Retry-After",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Reason",
    "RSeq",
    "RAck",
    "Timestamp",
    "Warning",
    "Date",
    "Priority",
    "Subscription-State",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Privacy",
    "Content-Disposition",
    "Content-Language",
    "Call-Info",
    "Alert-Info",
    "Error-Info",
    "Reply-To",
    "In-Reply-To",
    "MIME-Version",
    "Organization",
];

/// The name a header is stored and written under: compact forms expanded,
/// known names in their RFC spelling, anything else unchanged.
pub fn canonical_name(name: &str) -> Cow<'static, str> {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let c = c.to_ascii_lowercase();
        if let Some((_, full)) = COMPACT.iter().find(|(short, _)| *short == c) {
            return Cow::Borrowed(full);
        }
    }
    match KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(name.to_string()),
    }
}

/// One header line, unfolded. `name` is canonical (see [`canonical_name`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// The headers of a message in the order received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// The first value of `name` (case-insensitive, `"i"` finds Call-ID).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Every header line named `name`, in order, values as received (not
    /// split at commas; see [`Headers::get_split`] for that).
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let canon = canonical_name(name);
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(&canon))
            .map(|h| h.value.as_str())
    }

    /// Every value of `name` with comma-separated lists split, for the
    /// headers whose grammar allows it (Via, Contact, Route, Record-Route).
    pub fn get_split<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name).flat_map(split_comma)
    }

    /// Every Via value, top first, one per hop even when a proxy folded
    /// several into one line.
    pub fn vias(&self) -> impl Iterator<Item = &str> + '_ {
        self.get_split("Via")
    }

    /// Appends a header line.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push(Header {
            name: canonical_name(name).into_owned(),
            value: value.into(),
        });
    }

    /// Replaces every line named `name` with one line holding `value`, at
    /// the position of the first one (or at the end).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let canon = canonical_name(name);
        let value = value.into();
        match self
            .0
            .iter()
            .position(|h| h.name.eq_ignore_ascii_case(&canon))
        {
            Some(first) => {
                if let Some(h) = self.0.get_mut(first) {
                    h.value = value;
                }
                let mut i = 0;
                self.0.retain(|h| {
                    let keep = i <= first || !h.name.eq_ignore_ascii_case(&canon);
                    i += 1;
                    keep
                });
            }
            None => self.0.push(Header {
                name: canon.into_owned(),
                value,
            }),
        }
    }

    /// Replaces the value of the first line named `name` only (e.g. the
    /// top Via line); false when there is none.
    pub fn replace_first(&mut self, name: &str, value: impl Into<String>) -> bool {
        let canon = canonical_name(name);
        match self
            .0
            .iter_mut()
            .find(|h| h.name.eq_ignore_ascii_case(&canon))
        {
            Some(h) => {
                h.value = value.into();
                true
            }
            None => false,
        }
    }

    /// Removes every line named `name`.
    pub fn remove(&mut self, name: &str) {
        let canon = canonical_name(name);
        self.0.retain(|h| !h.name.eq_ignore_ascii_case(&canon));
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends a value to the last header line (a folded continuation line).
    pub(crate) fn append_to_last(&mut self, more: &str) -> bool {
        match self.0.last_mut() {
            Some(h) => {
                if !h.value.is_empty() {
                    h.value.push(' ');
                }
                h.value.push_str(more);
                true
            }
            None => false,
        }
    }
}

/// The option tags a request's Require lists that are not in `supported`
/// (RFC 3261 §8.2.2.3: the UAS answers 420 Bad Extension naming them in
/// Unsupported). Empty when the request may proceed.
pub fn unsupported_requirements<'a>(headers: &'a Headers, supported: &[&str]) -> Vec<&'a str> {
    headers
        .get_all("Require")
        .flat_map(split_comma)
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .filter(|tag| !supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect()
}

/// Splits a header value at commas that are outside quoted strings and
/// outside `<...>` (URIs may carry commas in their parameters).
pub fn split_comma(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut angle = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => angle = true,
            '>' if !in_quotes => angle = false,
            ',' if !in_quotes && !angle => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_tags_we_lack_are_reported() {
        let mut h = Headers::new();
        assert!(unsupported_requirements(&h, &["100rel"]).is_empty());
        h.push("Require", "100rel, Timer");
        h.push("Require", "replaces,");
        assert_eq!(
            unsupported_requirements(&h, &["100rel", "timer"]),
            ["replaces"]
        );
        assert!(unsupported_requirements(&h, &["timer", "100REL", "replaces"]).is_empty());
    }

    #[test]
    fn compact_and_case_insensitive_lookup() {
        let mut h = Headers::new();
        h.push("i", "abc@host");
        h.push("v", "SIP/2.0/UDP a");
        h.push("X-Custom", "1");
        assert_eq!(h.get("call-id"), Some("abc@host"));
        assert_eq!(h.get("I"), Some("abc@host"));
        assert_eq!(h.get("VIA"), Some("SIP/2.0/UDP a"));
        assert_eq!(h.get("x-custom"), Some("1"));
        assert_eq!(h.iter().next().map(|h| h.name.as_str()), Some("Call-ID"));
    }

    #[test]
    fn set_replaces_all_in_place() {
        let mut h = Headers::new();
        h.push("Route", "<sip:a>");
        h.push("To", "<sip:b>");
        h.push("Route", "<sip:c>");
        h.set("route", "<sip:d>");
        let names: Vec<_> = h.iter().map(|h| h.value.as_str()).collect();
        assert_eq!(names, vec!["<sip:d>", "<sip:b>"]);
        h.remove("ROUTE");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn split_respects_quotes_and_angles() {
        let v: Vec<_> = split_comma(r#""Doe, \"J\"" <sip:a;x=1,2>;q=1 , <sip:b>,,sip:c"#).collect();
        assert_eq!(
            v,
            vec![r#""Doe, \"J\"" <sip:a;x=1,2>;q=1"#, "<sip:b>", "sip:c"]
        );
    }
}
