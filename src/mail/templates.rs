//! Mail templates: one text file per kind (`Subject: …`, a blank line, the body) and one HTML
//! layout that wraps the body. The defaults are built in (from `templates/mail/`); an operator's
//! folder (`--mail-templates DIR`) replaces any of them by file name.

use std::{collections::HashMap, path::Path};

use serde_json::Value;

use super::MailError;

const DEFAULTS: &[(&str, &str)] = &[
    ("request_created", include_str!("../../templates/mail/request_created.txt")),
    ("deciders_reminded", include_str!("../../templates/mail/deciders_reminded.txt")),
    ("request_escalated", include_str!("../../templates/mail/request_escalated.txt")),
    ("request_approved", include_str!("../../templates/mail/request_approved.txt")),
    ("request_rejected", include_str!("../../templates/mail/request_rejected.txt")),
    ("request_cancelled", include_str!("../../templates/mail/request_cancelled.txt")),
    ("request_expired", include_str!("../../templates/mail/request_expired.txt")),
    ("grant_revoked", include_str!("../../templates/mail/grant_revoked.txt")),
    ("grant_expired", include_str!("../../templates/mail/grant_expired.txt")),
    ("grant_ending", include_str!("../../templates/mail/grant_ending.txt")),
    ("review_started", include_str!("../../templates/mail/review_started.txt")),
    ("review_reminder", include_str!("../../templates/mail/review_reminder.txt")),
    ("digest", include_str!("../../templates/mail/digest.txt")),
];
const DEFAULT_LAYOUT: &str = include_str!("../../templates/mail/layout.html");

pub struct Templates {
    texts: HashMap<String, String>,
    layout: String,
}

/// A mail rendered: subject, plain text and HTML.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    /// The built-in templates, with those found in `folder` in their place.
    pub fn load(folder: Option<&Path>) -> Result<Self, MailError> {
        let read = |name: &str, default: &str| -> Result<String, MailError> {
            match folder.map(|folder| folder.join(name)) {
                Some(path) if path.exists() => std::fs::read_to_string(&path)
                    .map_err(|e| MailError::Setup(format!("mail template {}: {e}", path.display()))),
                _ => Ok(default.to_string()),
            }
        };
        let mut texts = HashMap::new();
        for (kind, default) in DEFAULTS {
            let text = read(&format!("{kind}.txt"), default)?;
            if !text.starts_with("Subject: ") {
                return Err(MailError::Setup(format!("mail template {kind}.txt must start with \"Subject: \"")));
            }
            texts.insert(kind.to_string(), text);
        }
        Ok(Templates { texts, layout: read("layout.html", DEFAULT_LAYOUT)? })
    }

    /// Fills the template of `kind` with `values` (`{{name}}`; unknown names become empty).
    pub fn render(&self, kind: &str, values: &Value) -> Result<Rendered, MailError> {
        let template =
            self.texts.get(kind).ok_or_else(|| MailError::Render(format!("no template for mail kind \"{kind}\"")))?;
        let (subject_line, body) = template.split_once('\n').unwrap_or((template, ""));
        // Filled apart from the body, so that a value holding a line break cannot end the subject.
        let subject = header_value(&fill(subject_line.trim_start_matches("Subject: "), values, |_, text| text.into()));
        let text = fill(body, values, |_, text| text.to_string()).trim_start_matches('\n').to_string();
        let paragraphs: String = fill(body, values, html_value)
            .trim()
            .split("\n\n")
            .map(|paragraph| format!("<p>{}</p>\n", paragraph.replace('\n', "<br>")))
            .collect();
        let html = self.layout.replace("{{subject}}", &escape_html(&subject)).replace("{{body}}", &paragraphs);
        Ok(Rendered { subject, text, html })
    }
}

/// A text as one header line: line breaks and other control characters become spaces and runs of
/// whitespace one space, so that no value (a name, a title, a reason) can end a header and start
/// another. Every header value a template fills goes through here.
pub fn header_value(text: &str) -> String {
    let spaced: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Replaces each `{{name}}` with the value of `name`, passed through `encode(name, value)`.
fn fill(template: &str, values: &Value, encode: impl Fn(&str, &str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else { break };
        let name = rest[start + 2..start + end].trim();
        let value = match values.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        out.push_str(&encode(name, &value));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// A value in the HTML part: escaped, and the server's `link` as a link, as are the web addresses
/// ending each line of `decide_links` ("Approve: URL").
fn html_value(name: &str, text: &str) -> String {
    match name {
        "link" => linked(text),
        "decide_links" => text
            .lines()
            .map(|line| match line.split_once(": ") {
                Some((label, address)) => format!("{}: {}", escape_html(label), linked(address)),
                None => escape_html(line),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => escape_html(text),
    }
}

/// A web address as a link; any other text escaped.
fn linked(text: &str) -> String {
    let link = escape_html(text);
    if text.starts_with("https://") || text.starts_with("http://") {
        format!("<a href=\"{link}\">{link}</a>")
    } else {
        link
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_renders_with_its_values_and_html_is_escaped() {
        let templates = Templates::load(None).unwrap();
        let values = json!({"requester_name": "Alice <a>", "requester": "alice", "role_title": "Site Admin",
            "scope_title": "Site A", "role": "site-administrator", "scope": "SITE_A", "reason": "run the CE",
            "link": "http://x/r/1"});
        let rendered = templates.render("request_created", &values).unwrap();
        assert_eq!(rendered.subject, "[roleledger] Alice <a> asks for Site Admin on Site A");
        assert!(rendered.text.contains("Reason: run the CE"));
        assert!(rendered.text.contains("http://x/r/1"));
        assert!(rendered.html.contains("Alice &lt;a&gt;") && !rendered.html.contains("Alice <a>"));
        for (kind, _) in DEFAULTS {
            assert!(!templates.render(kind, &values).unwrap().subject.is_empty());
        }
        assert!(templates.render("nothing", &values).is_err());
    }

    #[test]
    fn line_breaks_in_values_never_reach_past_the_subject() {
        let templates = Templates::load(None).unwrap();
        let values = json!({"requester_name": "Eve\r\nBcc: victim@example.org\r\n\r\nbody", "role_title": "R\nole",
            "scope_title": "S\u{0}ite\t A", "reason": "line one\nline two", "link": "https://x/r/1?a=1&b=2"});
        let rendered = templates.render("request_created", &values).unwrap();
        assert_eq!(rendered.subject, "[roleledger] Eve Bcc: victim@example.org body asks for R ole on S ite A");
        assert!(rendered.text.starts_with("Eve\r\nBcc"), "the body keeps the text as given: {}", rendered.text);
        assert!(rendered.text.contains("line one\nline two"));
        assert!(rendered.html.contains(r#"<a href="https://x/r/1?a=1&amp;b=2">https://x/r/1?a=1&amp;b=2</a>"#));
        assert_eq!(header_value(" a\r\n\tb \u{7F} c "), "a b c");
        // Only web addresses become links.
        assert!(!templates.render("request_created", &json!({"link": "javascript:x"})).unwrap().html.contains("<a "));
    }

    #[test]
    fn an_operators_folder_replaces_a_template() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("request_created.txt"), "Subject: Hello {{requester}}\n\nBody").unwrap();
        let templates = Templates::load(Some(folder.path())).unwrap();
        let rendered = templates.render("request_created", &json!({"requester": "bob"})).unwrap();
        assert_eq!((rendered.subject.as_str(), rendered.text.as_str()), ("Hello bob", "Body"));
        std::fs::write(folder.path().join("grant_expired.txt"), "no subject").unwrap();
        assert!(Templates::load(Some(folder.path())).is_err());
    }
}
