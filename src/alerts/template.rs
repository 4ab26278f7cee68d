//! Alert text templates (SPEC §8): `{user} cheered {amount} bits!`. The
//! placeholders are a fixed set; `{{` and `}}` write a literal brace. A
//! template is checked when the settings are saved, and the server renders
//! each alert's `text` from it when the alert is queued.

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 8] = [
    "user", "amount", "currency", "message", "months", "count", "viewers", "reward",
];

/// Longest template.
pub const MAX_TEMPLATE_CHARS: usize = 300;

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_TEMPLATE_CHARS} characters")]
    TooLong,
    #[error(
        "{{{0}}} is not a placeholder (use one of {{user}}, {{amount}}, {{currency}}, {{message}}, {{months}}, {{count}}, {{viewers}}, {{reward}})"
    )]
    UnknownPlaceholder(String),
    #[error("has a `{{` that is not closed (write `{{{{` for a literal brace)")]
    Unclosed,
    #[error("has a `}}` that closes nothing (write `}}}}` for a literal brace)")]
    StrayBrace,
}

/// The values placeholders stand for; a missing one renders as nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// Who did it (display name).
    pub user: Option<String>,
    /// Bits, viewers, gift count or money, as an exact decimal.
    pub amount: Option<String>,
    /// ISO 4217 code of a donation.
    pub currency: Option<String>,
    /// What the user wrote.
    pub message: Option<String>,
    /// Months subscribed (resubs).
    pub months: Option<String>,
    /// Subs gifted.
    pub count: Option<String>,
    /// Raiders.
    pub viewers: Option<String>,
    /// The redeemed reward's title.
    pub reward: Option<String>,
}

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "user" => self.user.as_deref(),
            "amount" => self.amount.as_deref(),
            "currency" => self.currency.as_deref(),
            "message" => self.message.as_deref(),
            "months" => self.months.as_deref(),
            "count" => self.count.as_deref(),
            "viewers" => self.viewers.as_deref(),
            "reward" => self.reward.as_deref(),
            _ => None,
        }
    }
}

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits `raw` into literal text and placeholders, checking every brace.
fn pieces(raw: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let Some(at) = rest.find(['{', '}']) else {
            out.push(Piece::Text(rest));
            break;
        };
        if at > 0 {
            out.push(Piece::Text(&rest[..at]));
        }
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push(Piece::Text("}"));
            rest = after;
        } else if tail.starts_with('}') {
            return Err(TemplateError::StrayBrace);
        } else {
            let inner = &tail[1..];
            let end = inner.find('}').ok_or(TemplateError::Unclosed)?;
            let name = &inner[..end];
            if !PLACEHOLDERS.contains(&name) {
                if name.contains('{') {
                    return Err(TemplateError::Unclosed);
                }
                return Err(TemplateError::UnknownPlaceholder(name.to_owned()));
            }
            out.push(Piece::Placeholder(name));
            rest = &inner[end + 1..];
        }
    }
    Ok(out)
}

impl Template {
    /// Checks `raw`: not empty, not too long, only known placeholders.
    ///
    /// # Errors
    /// The [`TemplateError`] naming the first problem.
    pub fn parse(raw: &str) -> Result<Self, TemplateError> {
        if raw.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        if raw.chars().count() > MAX_TEMPLATE_CHARS {
            return Err(TemplateError::TooLong);
        }
        pieces(raw)?;
        Ok(Self(raw.to_owned()))
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text for `fields`.
    pub fn render(&self, fields: &Fields) -> String {
        let mut out = String::with_capacity(self.0.len() + 32);
        // Checked at parse time; an error cannot happen here.
        for piece in pieces(&self.0).unwrap_or_default() {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Placeholder(name) => out.push_str(fields.get(name).unwrap_or("")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_missing_ones_are_empty() {
        let t = Template::parse("{user} cheered {amount} bits! {message}").unwrap();
        let f = Fields {
            user: Some("Ana".into()),
            amount: Some("100".into()),
            ..Fields::default()
        };
        assert_eq!(t.render(&f), "Ana cheered 100 bits! ");
    }

    #[test]
    fn doubled_braces_are_literal() {
        let t = Template::parse("{{{user}}}").unwrap();
        let f = Fields {
            user: Some("x".into()),
            ..Fields::default()
        };
        assert_eq!(t.render(&f), "{x}");
    }

    #[test]
    fn bad_templates_say_why() {
        assert_eq!(Template::parse("  "), Err(TemplateError::Empty));
        assert_eq!(
            Template::parse("{usr} followed"),
            Err(TemplateError::UnknownPlaceholder("usr".into()))
        );
        assert_eq!(Template::parse("{user"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("{a{user}"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("user}"), Err(TemplateError::StrayBrace));
        assert_eq!(
            Template::parse(&"x".repeat(301)),
            Err(TemplateError::TooLong)
        );
    }

    #[test]
    fn user_text_is_not_a_template() {
        // A placeholder inside a value is not expanded again.
        let t = Template::parse("{user}: {message}").unwrap();
        let f = Fields {
            user: Some("{message}".into()),
            message: Some("<b>hi</b>".into()),
            ..Fields::default()
        };
        assert_eq!(t.render(&f), "{message}: <b>hi</b>");
    }
}
