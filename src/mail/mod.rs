//! Sending the outbox's mail: rendered from templates, sent over SMTP with lettre or written as
//! `.eml` files into a folder (the embedded default), by a delivery worker in every server process.

mod delivery;
mod templates;

use std::path::PathBuf;

use lettre::{
    message::{
        header::{ContentType, Header, HeaderName, HeaderValue},
        Mailbox, MultiPart, SinglePart,
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

pub use delivery::{spawn_delivery, DeliveryStats, RetryPolicy};
pub use templates::{Rendered, Templates};

use crate::{
    app::mail_links::{LinkAction, MailLink, MailLinks},
    domain::UserId,
    store::OutboxMail,
};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{0}")]
    Setup(String),
    #[error("cannot render mail: {0}")]
    Render(String),
    #[error("cannot send mail: {0}")]
    Send(String),
}

/// How mail leaves the server.
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(PathBuf),
}

impl Transport {
    /// `smtp://[user:pass@]host[:port]` (plain, for a local relay; add `?tls=required` for STARTTLS)
    /// or `smtps://…` (implicit TLS); without a URL, `.eml` files in `folder`.
    pub fn new(smtp: Option<&str>, folder: PathBuf) -> Result<Self, MailError> {
        match smtp {
            Some(url) => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::Setup(format!("bad --smtp URL: {e}")))?;
                Ok(Transport::Smtp(builder.timeout(Some(std::time::Duration::from_secs(20))).build()))
            }
            None => Ok(Transport::Folder(folder)),
        }
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): sent by a program, so vacation responders and
/// other automatic replies leave it unanswered.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

pub struct Mailer {
    transport: Transport,
    templates: Templates,
    from: Mailbox,
    public_url: String,
    /// Signs the Approve and Reject links of a decider's mail; without it, mail has none.
    links: Option<MailLinks>,
}

impl Mailer {
    pub fn new(transport: Transport, templates: Templates, from: &str, public_url: &str) -> Result<Self, MailError> {
        let from = from.parse().map_err(|e| MailError::Setup(format!("bad sender address \"{from}\": {e}")))?;
        let public_url = public_url.trim_end_matches('/').to_string();
        Ok(Mailer { transport, templates, from, public_url, links: None })
    }

    /// Mail to a person asked to decide carries Approve and Reject links signed with `links`.
    pub fn with_links(self, links: MailLinks) -> Self {
        Mailer { links: Some(links), ..self }
    }

    /// "Approve: URL" and "Reject: URL" on two lines, for a mail naming its `decider` (a person,
    /// never a mailbox); empty for any other.
    fn decide_links(&self, values: &serde_json::Value) -> String {
        let link = |action| -> Option<MailLink> {
            Some(MailLink {
                request: values["request_id"].as_str()?.parse().ok()?,
                recipient: UserId::parse(values["decider"].as_str()?).ok()?,
                action,
                expires_at: chrono::DateTime::parse_from_rfc3339(values["expires_at"].as_str()?).ok()?.into(),
            })
        };
        let (Some(links), Some(approve), Some(reject)) =
            (&self.links, link(LinkAction::Approve), link(LinkAction::Reject))
        else {
            return String::new();
        };
        let url = |link: &MailLink| format!("{}/ui/m/{}", self.public_url, links.token(link));
        format!("Approve: {}\nReject: {}", url(&approve), url(&reject))
    }

    /// The mail as it will be sent: templates filled with the row's values and a link to the server.
    pub fn render(&self, mail: &OutboxMail) -> Result<Rendered, MailError> {
        let mut values = mail.context.clone();
        let link = match (values["request_id"].as_str(), values["grant_id"].as_str()) {
            (Some(request), _) if !request.is_empty() => format!("{}/ui/requests/{request}", self.public_url),
            (_, Some(grant)) => format!("{}/api/v1/grants/{grant}", self.public_url),
            _ => self.public_url.clone(),
        };
        values["link"] = link.into();
        values["decide_links"] = self.decide_links(&values).into();
        self.templates.render(&mail.kind, &values)
    }

    fn message(&self, mail: &OutboxMail) -> Result<Message, MailError> {
        let rendered = self.render(mail)?;
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| MailError::Render(format!("bad recipient \"{}\": {e}", mail.recipient)))?;
        let body = MultiPart::alternative()
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(rendered.text))
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(rendered.html));
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(mail.message_id.clone()))
            .header(AutoSubmitted)
            .multipart(body)
            .map_err(|e| MailError::Render(e.to_string()))
    }

    pub async fn send(&self, mail: &OutboxMail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| MailError::Send(e.to_string())),
            Transport::Folder(folder) => {
                // Named by the Message-ID: a repeated delivery rewrites the same file.
                let name: String =
                    mail.message_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '@' || *c == '.').collect();
                let (folder, path) = (folder.clone(), folder.join(format!("{name}.eml")));
                let formatted = message.formatted();
                // One trip to the blocking pool for both calls.
                // Written beside the folder's mail first and renamed into place, so that whoever
                // reads the folder never sees half a mail.
                let partial = folder.join(".partial").join(format!("{name}.eml"));
                tokio::task::spawn_blocking(move || {
                    let failed =
                        |at: &std::path::Path, e: std::io::Error| MailError::Send(format!("{}: {e}", at.display()));
                    let partial_folder = partial.parent().unwrap_or(&folder);
                    std::fs::create_dir_all(partial_folder).map_err(|e| failed(partial_folder, e))?;
                    std::fs::write(&partial, formatted).map_err(|e| failed(&partial, e))?;
                    std::fs::rename(&partial, &path).map_err(|e| failed(&path, e))
                })
                .await
                .map_err(|e| MailError::Send(format!("the mail folder's writer stopped: {e}")))?
            }
        }
    }
}
