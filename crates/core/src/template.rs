//! The templates of the Vault backend, a small subset of Go templates:
//! - the `commonName` template: `'{{ tag "kuma.io/service" }}.mesh'` and
//!   `'{{ tag "kuma.io/service" | replace "_" "-" }}.mesh'`;
//! - the zone fields (`auth.kubernetes.mountPath`, `auth.kubernetes.role`, `auth.approle.mountPath`,
//!   `namespace`): `"{{ zone }}"`, `"k8s-{{ zone }}"`, expanded by each zone to its own name.
//!
//! Functions: `tag NAME` (a data-plane tag's value; commonName only), `zone` (the zone's name; zone
//! fields only), `replace OLD NEW` (every OLD becomes NEW in the piped value), `lower`, `upper`.
//! Anything else is refused when the Mesh is validated.

use std::collections::{BTreeMap, BTreeSet};

/// A data plane's tags: each name may carry several values (one per inbound).
pub type Tags = BTreeMap<String, BTreeSet<String>>;

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    kind: TemplateKind,
    parts: Vec<Part>,
}

/// What a template may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateKind {
    /// `commonName`: the data plane's tags (`tag`).
    CommonName,
    /// An auth mount path, auth role or namespace: the zone's name (`zone`).
    ZoneField,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Action(Vec<Call>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Tag(String),
    Zone,
    Replace(String, String),
    Lower,
    Upper,
}

/// Why a template did not parse or render.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template text is malformed.
    #[error("template {template:?} does not parse: {reason}")]
    Parse {
        /// The template text.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// A referenced tag is not set on the data plane.
    #[error(
        "tag {tag:?} used by the commonName template is not set on the data plane: add it to the dataplane's inbound tags or change the template"
    )]
    MissingTag {
        /// The tag name.
        tag: String,
    },
    /// `{{ zone }}` was rendered where there is no zone (the global, `mosaicctl validate`).
    #[error(
        "{{{{ zone }}}} expands to a zone's name, and this is not a zone: only zones log in with it (each zone tests it when it issues and reports it in its CA health)"
    )]
    NoZone,
}

// === impl Template ===

impl Template {
    /// Parses a `commonName` template.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        Self::parse_as(text, TemplateKind::CommonName)
    }

    /// Parses a zone field (auth mount path, auth role, namespace), which may name `{{ zone }}`.
    pub fn parse_zone_field(text: &str) -> Result<Self, TemplateError> {
        Self::parse_as(text, TemplateKind::ZoneField)
    }

    /// Parses template text of `kind`.
    pub fn parse_as(text: &str, kind: TemplateKind) -> Result<Self, TemplateError> {
        let err = |reason: &str| TemplateError::Parse {
            template: text.to_string(),
            reason: reason.to_string(),
        };
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find("{{") {
                None => {
                    if rest.contains("}}") {
                        return Err(err("'}}' without a matching '{{'"));
                    }
                    parts.push(Part::Text(rest.to_string()));
                    break;
                }
                Some(start) => {
                    let literal = &rest[..start];
                    if literal.contains("}}") {
                        return Err(err("'}}' without a matching '{{'"));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(literal.to_string()));
                    }
                    let after = &rest[start + 2..];
                    let end = after
                        .find("}}")
                        .ok_or_else(|| err("'{{' is never closed with '}}'"))?;
                    parts.push(Part::Action(
                        parse_action(&after[..end], kind).map_err(|r| err(&r))?,
                    ));
                    rest = &after[end + 2..];
                }
            }
        }
        Ok(Self { kind, parts })
    }

    /// Whether the template reads the zone's name.
    pub fn names_zone(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Action(calls) if calls.contains(&Call::Zone)))
    }

    /// The tag names the template reads.
    pub fn referenced_tags(&self) -> BTreeSet<String> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Action(calls) => Some(calls),
                Part::Text(_) => None,
            })
            .flatten()
            .filter_map(|c| match c {
                Call::Tag(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// Renders the template for a data plane. A tag with several values renders its first value in
    /// sorted order.
    pub fn render(&self, tags: &Tags) -> Result<String, TemplateError> {
        self.render_with(Some(tags), None)
    }

    /// Renders a zone field for `zone` (`None`: not in a zone, so `{{ zone }}` cannot expand).
    pub fn render_zone(&self, zone: Option<&str>) -> Result<String, TemplateError> {
        self.render_with(None, zone)
    }

    fn render_with(
        &self,
        tags: Option<&Tags>,
        zone: Option<&str>,
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(calls) => {
                    let mut value = String::new();
                    for call in calls {
                        value = match call {
                            Call::Zone => zone.ok_or(TemplateError::NoZone)?.to_string(),
                            Call::Tag(name) => tags
                                .and_then(|t| t.get(name))
                                .and_then(|vs| vs.iter().next())
                                .cloned()
                                .ok_or_else(|| TemplateError::MissingTag { tag: name.clone() })?,
                            Call::Replace(old, new) => value.replace(old.as_str(), new),
                            Call::Lower => value.to_lowercase(),
                            Call::Upper => value.to_uppercase(),
                        };
                    }
                    out.push_str(&value);
                }
            }
        }
        Ok(out)
    }
}

fn parse_action(src: &str, kind: TemplateKind) -> Result<Vec<Call>, String> {
    let zone_fields =
        "auth.kubernetes.mountPath, auth.kubernetes.role, auth.approle.mountPath and namespace";
    let mut calls = Vec::new();
    for (i, stage) in split_pipeline(src)?.into_iter().enumerate() {
        let (name, args) = stage.split_first().ok_or_else(|| match kind {
            TemplateKind::CommonName => {
                "empty action: write {{ tag \"kuma.io/service\" }}".to_string()
            }
            TemplateKind::ZoneField => "empty action: write {{ zone }}".to_string(),
        })?;
        let Token::Ident(name) = name else {
            return Err(format!("expected a function name, found {name}"));
        };
        let strings: Vec<String> = args
            .iter()
            .map(|a| match a {
                Token::Str(s) => Ok(s.clone()),
                Token::Ident(id) => Err(format!("argument {id} of {name} must be a quoted string")),
            })
            .collect::<Result<_, _>>()?;
        let call = match (name.as_str(), strings.as_slice()) {
            ("tag", _) if kind == TemplateKind::ZoneField => {
                return Err(format!(
                    "tag is only known in commonName; {zone_fields} may name {{{{ zone }}}}"
                ));
            }
            ("zone", _) if kind == TemplateKind::CommonName => {
                return Err(format!(
                    "zone is not known in commonName: {{{{ zone }}}} expands only in {zone_fields}"
                ));
            }
            ("zone", []) if i == 0 => Call::Zone,
            ("zone", []) => return Err("zone must start a pipeline".into()),
            ("zone", _) => return Err("zone takes no arguments: write {{ zone }}".into()),
            ("tag", [t]) if i == 0 => Call::Tag(t.clone()),
            ("tag", _) if i > 0 => return Err("tag must start a pipeline".into()),
            ("tag", _) => return Err("tag takes one quoted tag name".into()),
            ("replace", [old, new]) if i > 0 => Call::Replace(old.clone(), new.clone()),
            ("replace", _) if i == 0 => {
                return Err(
                    "replace needs a value piped into it: {{ tag \"x\" | replace \"_\" \"-\" }}"
                        .into(),
                );
            }
            ("replace", _) => {
                return Err("replace takes two quoted strings: replace \"_\" \"-\"".into());
            }
            ("lower", []) if i > 0 => Call::Lower,
            ("upper", []) if i > 0 => Call::Upper,
            ("lower" | "upper", _) => {
                return Err(format!("{name} takes no arguments and needs a piped value"));
            }
            (other, _) => {
                let first = match kind {
                    TemplateKind::CommonName => "tag",
                    TemplateKind::ZoneField => "zone",
                };
                return Err(format!(
                    "unknown function {other:?}: use {first}, replace, lower or upper"
                ));
            }
        };
        calls.push(call);
    }
    Ok(calls)
}

#[derive(Clone, Debug)]
enum Token {
    Ident(String),
    Str(String),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Ident(s) => f.write_str(s),
            Token::Str(s) => write!(f, "{s:?}"),
        }
    }
}

fn split_pipeline(src: &str) -> Result<Vec<Vec<Token>>, String> {
    let mut stages = vec![Vec::new()];
    let mut chars = src.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '|' => stages.push(Vec::new()),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated string".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(other) => s.push(other),
                            None => return Err("unterminated string".into()),
                        },
                        Some(other) => s.push(other),
                    }
                }
                push_token(&mut stages, Token::Str(s));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut id = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' {
                        id.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                push_token(&mut stages, Token::Ident(id));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(stages)
}

fn push_token(stages: &mut [Vec<Token>], t: Token) {
    if let Some(last) = stages.last_mut() {
        last.push(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        let mut t = Tags::new();
        for (k, v) in pairs {
            t.entry(k.to_string()).or_default().insert(v.to_string());
        }
        t
    }

    #[test]
    fn seed_001_examples() {
        let t = Template::parse(r#"{{ tag "kuma.io/service" }}.mesh"#).unwrap();
        assert_eq!(
            t.render(&tags(&[("kuma.io/service", "backend")])).unwrap(),
            "backend.mesh"
        );
        let t = Template::parse(r#"{{ tag "kuma.io/service" | replace "_" "-" }}.mesh"#).unwrap();
        assert_eq!(
            t.render(&tags(&[("kuma.io/service", "my_backend")]))
                .unwrap(),
            "my-backend.mesh"
        );
        assert_eq!(
            t.referenced_tags().into_iter().collect::<Vec<_>>(),
            vec!["kuma.io/service"]
        );
    }

    #[test]
    fn missing_tag_is_named() {
        let t = Template::parse(r#"{{ tag "version" }}.mesh"#).unwrap();
        let e = t.render(&tags(&[("kuma.io/service", "a")])).unwrap_err();
        assert_eq!(
            e,
            TemplateError::MissingTag {
                tag: "version".into()
            }
        );
        assert!(e.to_string().contains("\"version\""));
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "{{ tag \"a\" ",
            "{{ tag }}",
            "{{ tag a }}",
            "{{ replace \"_\" \"-\" }}",
            "{{ tag \"a\" | replace \"_\" }}",
            "{{ env \"HOME\" }}",
            "{{ }}",
            "x }}",
            "{{ tag \"a\" | tag \"b\" }}",
            "{{ tag \"a }}",
            "{{ .Name }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad} should not parse");
        }
        assert_eq!(
            Template::parse("plain.mesh")
                .unwrap()
                .render(&Tags::new())
                .unwrap(),
            "plain.mesh"
        );
        let e = Template::parse("{{ zone }}.mesh").unwrap_err().to_string();
        assert!(e.contains("not known in commonName"), "{e}");
    }

    #[test]
    fn zone_fields_expand_to_the_zone_name() {
        for (text, want) in [
            ("{{ zone }}", "east"),
            ("{{zone}}", "east"),
            ("k8s-{{ zone }}", "k8s-east"),
            ("{{ zone | upper }}", "EAST"),
            ("{{ zone | replace \"-\" \"_\" }}-ns", "us_east-ns"),
            ("kubernetes", "kubernetes"),
        ] {
            let t = Template::parse_zone_field(text).unwrap();
            let zone = if want.contains("us_") {
                "us-east"
            } else {
                "east"
            };
            assert_eq!(t.render_zone(Some(zone)).unwrap(), want, "{text}");
            assert_eq!(t.names_zone(), text.contains("zone"), "{text}");
        }
        let t = Template::parse_zone_field("{{ zone }}").unwrap();
        assert_eq!(t.render_zone(None), Err(TemplateError::NoZone));
        assert!(TemplateError::NoZone.to_string().contains("{{ zone }}"));
        assert!(!Template::parse_zone_field("east").unwrap().names_zone());
    }

    #[test]
    fn zone_fields_refuse_other_placeholders() {
        for (bad, why) in [
            ("{{ tag \"kuma.io/service\" }}", "only known in commonName"),
            ("{{ cluster }}", "unknown function \"cluster\": use zone"),
            ("{{ zone \"x\" }}", "no arguments"),
            ("{{ .Zone }}", "unexpected character"),
            ("{{ zone ", "never closed"),
            ("{{ }}", "write {{ zone }}"),
            ("{{ lower | zone }}", "needs a piped value"),
        ] {
            let e = Template::parse_zone_field(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
