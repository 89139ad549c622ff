//! Kafka's `ssl.principal.mapping.rules` (KIP-371): how a client
//! certificate's subject (RFC 2253, `security::certificate`) becomes a
//! principal's name. Rules are tried in order; the first whose pattern
//! matches the whole subject gives the name:
//!
//! - `RULE:pattern/replacement/` with `$1`, `$2`, ... for the pattern's
//!   groups, and an optional `L` or `U` after the last `/` to lower- or
//!   upper-case the result (`/` inside a pattern or replacement is `\/`);
//! - `DEFAULT`: the whole subject.
//!
//! Rules are separated by commas: `RULE:^CN=(.*?),OU=Services.*$/$1/L,DEFAULT`.
//! A subject no rule matches, or one mapped to nothing, is refused (the
//! connection is closed), as Kafka refuses it: falling back to the
//! subject or to anonymous would let a certificate in under a name no ACL
//! was written for.

use regex::Regex;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug)]
enum Rule {
    Default,
    Pattern { regex: Regex, replacement: String, case: Case },
}

#[derive(Clone, Copy, Debug)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// Parsed rules, compared by their text.
#[derive(Clone, Debug)]
pub struct PrincipalMapping {
    text: String,
    rules: Vec<Rule>,
}

impl PartialEq for PrincipalMapping {
    fn eq(&self, other: &PrincipalMapping) -> bool {
        self.text == other.text
    }
}

impl Eq for PrincipalMapping {}

impl Default for PrincipalMapping {
    fn default() -> PrincipalMapping {
        PrincipalMapping { text: "DEFAULT".into(), rules: vec![Rule::Default] }
    }
}

impl fmt::Display for PrincipalMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PrincipalMapping {
    /// The name `subject` maps to; `None` when no rule gives one.
    pub fn map(&self, subject: &str) -> Option<String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Some(subject.to_string()),
                Rule::Pattern { regex, replacement, case } => {
                    let Some(captures) = regex.captures(subject) else { continue };
                    let mut name = String::new();
                    captures.expand(replacement, &mut name);
                    let name = match case {
                        Case::Keep => name,
                        Case::Lower => name.to_lowercase(),
                        Case::Upper => name.to_uppercase(),
                    };
                    return (!name.is_empty()).then_some(name);
                }
            }
        }
        None
    }
}

impl FromStr for PrincipalMapping {
    type Err = String;

    fn from_str(text: &str) -> Result<PrincipalMapping, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (rule, after) = if let Some(after) = rest.strip_prefix("DEFAULT") {
                (Rule::Default, after)
            } else if let Some(body) = rest.strip_prefix("RULE:") {
                pattern_rule(body)?
            } else {
                return Err(format!("expected RULE:pattern/replacement/[LU] or DEFAULT at {rest:?}"));
            };
            rules.push(rule);
            let after = after.trim_start();
            rest = match after.strip_prefix(',') {
                Some(next) => next.trim_start(),
                None if after.is_empty() => after,
                None => return Err(format!("expected a comma between rules at {after:?}")),
            };
        }
        if rules.is_empty() {
            return Err("no rules: DEFAULT keeps the whole subject".into());
        }
        Ok(PrincipalMapping { text: text.trim().to_string(), rules })
    }
}

/// `pattern/replacement/[LU]` and what follows it.
fn pattern_rule(body: &str) -> Result<(Rule, &str), String> {
    let (pattern, rest) = until_slash(body).ok_or_else(|| format!("RULE:{body}: no / after the pattern"))?;
    let (replacement, rest) =
        until_slash(rest).ok_or_else(|| format!("RULE:{body}: no / after the replacement"))?;
    let (case, rest) = match rest.chars().next() {
        Some('L') => (Case::Lower, &rest[1..]),
        Some('U') => (Case::Upper, &rest[1..]),
        _ => (Case::Keep, rest),
    };
    // The pattern must match the whole subject, as Java's `matches` does.
    let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("RULE:{body}: {e}"))?;
    Ok((Rule::Pattern { regex, replacement: java_groups(&replacement), case }, rest))
}

/// The text up to the first unescaped `/` (with `\/` unescaped), and what
/// follows that `/`.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => return Some((out, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    None
}

/// Java's `$1` as the regex crate's `${1}`, so a letter after the digits
/// (`$1x`) is not read as part of a group's name.
fn java_groups(replacement: &str) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            out.push_str(&format!("${{{digits}}}"));
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> PrincipalMapping {
        text.parse().unwrap()
    }

    #[test]
    fn the_first_matching_rule_names_the_principal() {
        let m =
            rules("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=.*$/$1@$2/L, DEFAULT");
        assert_eq!(m.map("CN=kafka1,OU=ServiceUsers,O=Example").as_deref(), Some("kafka1"));
        assert_eq!(m.map("CN=Erin,OU=Ops,O=Example").as_deref(), Some("erin@ops"));
        assert_eq!(m.map("CN=solo").as_deref(), Some("CN=solo"), "DEFAULT keeps the subject");
        assert_eq!(PrincipalMapping::default().map("CN=a,O=b").as_deref(), Some("CN=a,O=b"));
    }

    #[test]
    fn without_a_matching_rule_there_is_no_principal() {
        let m = rules("RULE:^CN=([a-z]+)$/$1/U");
        assert_eq!(m.map("CN=erin").as_deref(), Some("ERIN"));
        assert_eq!(m.map("CN=erin,O=x"), None, "the pattern must match the whole subject");
        assert_eq!(rules("RULE:^CN=(.*)$//").map("CN=x"), None, "mapped to nothing");
    }

    #[test]
    fn slashes_dollars_and_bad_rules() {
        let m = rules(r"RULE:^CN=(.*?)\/(.*)$/$2\/$1x$/");
        assert_eq!(m.map("CN=a/b").as_deref(), Some("b/ax$"));
        for (bad, why) in [
            ("", "no rules"),
            ("RULE:^CN=(.*)$", "no / after the pattern"),
            ("RULE:^CN=(.*)$/$1", "no / after the replacement"),
            ("RULE:^CN=((.*)$/$1/", "unclosed"),
            ("DEFAULT RULE:a/b/", "expected a comma"),
            ("SOMETIMES", "expected RULE"),
        ] {
            let e = bad.parse::<PrincipalMapping>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
