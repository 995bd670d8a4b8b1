//! The templates of a MeshIdentity's `spiffeID.trustDomain` and `spiffeID.path`, the part of Go
//! templates Kuma's documents use: text, `{{ .Field }}` (Kuma's `.Mesh`, `.Zone` in a trust
//! domain; `.TrustDomain`, `.Workload`, `.Namespace`, `.ServiceAccount` in a path) and
//! `{{ label "K" }}` (a data plane's label). Trim markers (`{{-`, `-}}`) are read as Go reads them.
//!
//! Kuma checks these templates by parsing them only: a field it does not provide is found when a
//! data plane's identity is rendered, not when the MeshIdentity is applied. Mosaic does the same.

/// A parsed SPIFFE ID template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpiffeTemplate {
    parts: Vec<Part>,
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// `{{ .Name }}`.
    Field(String),
    /// `{{ label "K" }}`.
    Label(String),
}

/// Why a template did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("couldn't parse template {template:?}: {reason}")]
pub struct SpiffeTemplateError {
    /// The template text.
    pub template: String,
    /// What is wrong.
    pub reason: String,
}

// === impl SpiffeTemplate ===

impl SpiffeTemplate {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, SpiffeTemplateError> {
        let err = |reason: String| SpiffeTemplateError {
            template: text.to_string(),
            reason,
        };
        let mut parts: Vec<Part> = Vec::new();
        let mut rest = text;
        let mut trim_next = false;
        while !rest.is_empty() {
            let Some(start) = rest.find("{{") else {
                push_text(&mut parts, rest, trim_next, false);
                break;
            };
            let after = &rest[start + 2..];
            let trim_before = after.starts_with("- ") || after == "-" || after.starts_with("-}");
            push_text(&mut parts, &rest[..start], trim_next, trim_before);
            let end = after
                .find("}}")
                .ok_or_else(|| err("unclosed action: '{{' is never closed with '}}'".into()))?;
            let mut action = &after[..end];
            if trim_before {
                action = &action[1..];
            }
            trim_next = action.ends_with(" -") || action == "-";
            if trim_next {
                action = &action[..action.len() - 1];
            }
            parts.push(parse_action(action.trim()).map_err(err)?);
            rest = &after[end + 2..];
        }
        Ok(Self { parts })
    }

    /// The template's pieces.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The fields (`.Name`) the template reads.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.as_str()),
            _ => None,
        })
    }
}

/// Why a template did not render for a data plane (Kuma's words where it has them).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("template {template:?}: {reason}")]
pub struct RenderError {
    /// The template text.
    pub template: String,
    /// What is missing.
    pub reason: String,
}

impl SpiffeTemplate {
    /// Renders the template with `fields` (Kuma's `.Mesh`, `.Zone`, ... by name; an empty value
    /// renders empty, as Go's zero value does) and `labels` (what `{{ label "K" }}` reads). A field
    /// the template names but `fields` lacks, or a label the data plane does not carry, is an
    /// error, as it is in Kuma. `text` is the template's source, named in the error.
    pub fn render(
        &self,
        text: &str,
        fields: &[(&str, &str)],
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, RenderError> {
        let err = |reason: String| RenderError {
            template: text.to_string(),
            reason,
        };
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => {
                    let value = fields.iter().find(|(name, _)| name == f).ok_or_else(|| {
                        let known: Vec<String> =
                            fields.iter().map(|(n, _)| format!(".{n}")).collect();
                        err(format!(
                            "can't evaluate field {f}: this template may use {}",
                            known.join(", ")
                        ))
                    })?;
                    out.push_str(value.1);
                }
                Part::Label(k) => {
                    let value = labels.get(k).ok_or_else(|| {
                        err(format!(
                            "label {k} not found: give the data plane the label {k:?} or change the template"
                        ))
                    })?;
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }
}

/// Checks a SPIFFE ID as the SPIFFE standard (and Kuma's `spiffeid.FromString`) does:
/// `spiffe://`, a trust domain of lowercase letters, digits, `.`, `-` and `_`, then a path of
/// non-empty segments of letters, digits, `.`, `-` and `_` that are not `.` or `..`.
pub fn check_spiffe_id(id: &str) -> Result<(), String> {
    let rest = id
        .strip_prefix("spiffe://")
        .ok_or_else(|| format!("{id:?} is not a SPIFFE ID: it must start with spiffe://"))?;
    let (domain, path) = rest.split_once('/').map_or((rest, ""), |(d, p)| (d, p));
    check_trust_domain(domain).map_err(|e| format!("SPIFFE ID {id:?}: {e}"))?;
    if rest.contains('/') {
        for segment in path.split('/') {
            if segment.is_empty() {
                return Err(format!(
                    "SPIFFE ID {id:?}: its path has an empty segment (a template field or label rendered empty, or a trailing '/')"
                ));
            }
            if segment == "." || segment == ".." {
                return Err(format!("SPIFFE ID {id:?}: a path segment is {segment:?}"));
            }
            if !segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                return Err(format!(
                    "SPIFFE ID {id:?}: path segment {segment:?} may only hold letters, digits, '.', '-' and '_'"
                ));
            }
        }
    }
    Ok(())
}

/// Checks a SPIFFE trust domain: non-empty, lowercase letters, digits, `.`, `-` and `_`.
pub fn check_trust_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("the trust domain is empty".into());
    }
    if !domain
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!(
            "trust domain {domain:?} may only hold lowercase letters, digits, '.', '-' and '_'"
        ));
    }
    Ok(())
}

fn push_text(parts: &mut Vec<Part>, text: &str, trim_start: bool, trim_end: bool) {
    let mut t = text;
    if trim_start {
        t = t.trim_start();
    }
    if trim_end {
        t = t.trim_end();
    }
    if !t.is_empty() {
        parts.push(Part::Text(t.to_string()));
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_action(action: &str) -> Result<Part, String> {
    const HELP: &str = "use {{ .Mesh }}, {{ .Zone }}, {{ .Workload }}, {{ .Namespace }}, {{ .ServiceAccount }} or {{ label \"KEY\" }}";
    if action.is_empty() {
        return Err(format!("missing value for command: {HELP}"));
    }
    if let Some(field) = action.strip_prefix('.') {
        if is_identifier(field) {
            return Ok(Part::Field(field.to_string()));
        }
        return Err(format!("{{{{ {action} }}}} is not a field: {HELP}"));
    }
    let (word, args) = action
        .split_once(char::is_whitespace)
        .map_or((action, ""), |(w, a)| (w, a.trim()));
    if word != "label" {
        return Err(format!("function {word:?} not defined: {HELP}"));
    }
    let key = args
        .strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .filter(|k| !k.contains('"'))
        .or_else(|| {
            args.strip_prefix('`')
                .and_then(|a| a.strip_suffix('`'))
                .filter(|k| !k.contains('`'))
        })
        .ok_or_else(|| {
            format!(
                "label takes one quoted label key, such as {{{{ label \"app\" }}}}: found {args:?}"
            )
        })?;
    Ok(Part::Label(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kumas_defaults_and_seed_templates_parse() {
        let t = SpiffeTemplate::parse("{{ .Mesh }}.{{ .Zone }}.mesh.local").unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), ["Mesh", "Zone"]);
        let t = SpiffeTemplate::parse("/workload/{{ .Workload }}").unwrap();
        assert_eq!(
            t.parts(),
            [
                Part::Text("/workload/".into()),
                Part::Field("Workload".into())
            ]
        );
        let t = SpiffeTemplate::parse("/{{ .Namespace }}/{{ .Workload }}").unwrap();
        assert_eq!(t.fields().count(), 2);
        let t = SpiffeTemplate::parse("/app/{{ label \"kuma.io/workload\" }}").unwrap();
        assert_eq!(t.parts()[1], Part::Label("kuma.io/workload".into()));
        assert_eq!(
            SpiffeTemplate::parse("domain.name").unwrap().parts(),
            [Part::Text("domain.name".into())]
        );
    }

    #[test]
    fn trim_markers_trim_like_go() {
        let t = SpiffeTemplate::parse("a  {{- .Mesh -}}  b").unwrap();
        assert_eq!(
            t.parts(),
            [
                Part::Text("a".into()),
                Part::Field("Mesh".into()),
                Part::Text("b".into())
            ]
        );
    }

    #[test]
    fn renders_fields_and_labels_and_names_what_is_missing() {
        let labels: std::collections::BTreeMap<String, String> =
            [("app".to_string(), "web".to_string())].into();
        let text = "/{{ .Workload }}/{{ label \"app\" }}";
        let t = SpiffeTemplate::parse(text).unwrap();
        assert_eq!(
            t.render(text, &[("Workload", "w1")], &labels).unwrap(),
            "/w1/web"
        );
        let e = t.render(text, &[("Mesh", "m")], &labels).unwrap_err();
        assert!(e.reason.contains("can't evaluate field Workload"), "{e}");
        let e = t
            .render(text, &[("Workload", "w1")], &Default::default())
            .unwrap_err();
        assert!(e.reason.contains("label app not found"), "{e}");
    }

    #[test]
    fn spiffe_ids_are_checked_as_the_standard_says() {
        check_spiffe_id("spiffe://domain.name/workload/web").unwrap();
        check_spiffe_id("spiffe://default.zone-1.mesh.local").unwrap();
        for (bad, says) in [
            ("http://x/y", "must start with spiffe://"),
            ("spiffe://Domain/x", "lowercase"),
            ("spiffe://d//x", "empty segment"),
            ("spiffe://d/x/", "empty segment"),
            ("spiffe://d/../x", "\"..\""),
            ("spiffe://d/x y", "may only hold"),
            ("spiffe:///x", "trust domain is empty"),
        ] {
            let e = check_spiffe_id(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn malformed_templates_are_refused_saying_why() {
        for (text, says) in [
            ("{{ .Mesh", "unclosed action"),
            ("{{ }}", "missing value"),
            ("{{ tag \"app\" }}", "function \"tag\" not defined"),
            ("{{ label app }}", "quoted label key"),
            ("{{ .Mesh.. }}", "is not a field"),
        ] {
            let e = SpiffeTemplate::parse(text).unwrap_err();
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }
}
