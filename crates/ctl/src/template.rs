//! `apply -v NAME=VALUE`: kumactl's templating of the input, the mustache subset its files use.
//!
//! As kumactl (v2.14, `pkg/util/template`), the input is rendered only when at least one
//! variable is given; then every tag is processed:
//! - `{{ name }}`: the value, HTML-escaped as Go's `template.HTMLEscape` does (`&` `<` `>` `"`
//!   `'`), which is what kumactl's mustache library does;
//! - `{{{ name }}}` and `{{& name }}`: the value as it is;
//! - an unset name renders as nothing (no error, as in kumactl);
//! - `{{# name }}...{{/ name }}` keeps its content when `name` is set and not empty,
//!   `{{^ name }}...{{/ name }}` when it is not; `{{! comment }}` renders as nothing.
//!
//! Names may contain dots (`-v var.with.dots=1` fills `{{ var.with.dots }}`). Partials (`{{>`),
//! delimiter changes (`{{=`) and unclosed tags are refused with the line they are on.

use std::collections::BTreeMap;

/// Why the input could not be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct TemplateError {
    /// 1-based line of the tag.
    pub line: usize,
    /// What is wrong and what to do.
    pub reason: String,
}

/// One parsed piece of a template.
#[derive(Debug)]
enum Node<'a> {
    Text(&'a str),
    Var {
        name: &'a str,
        raw: bool,
    },
    Section {
        name: &'a str,
        inverted: bool,
        body: Vec<Node<'a>>,
    },
}

/// Renders `input` with `vars` (see the module docs).
pub fn render(input: &str, vars: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut pos = 0;
    let nodes = parse(input, &mut pos, None)?;
    let mut out = String::with_capacity(input.len());
    emit(&nodes, vars, &mut out);
    Ok(out)
}

fn line_at(input: &str, offset: usize) -> usize {
    input[..offset].matches('\n').count() + 1
}

/// Parses from `*pos` until the end, or until `{{/ closing }}` when `closing` is set.
fn parse<'a>(
    input: &'a str,
    pos: &mut usize,
    closing: Option<(&'a str, usize)>,
) -> Result<Vec<Node<'a>>, TemplateError> {
    let mut nodes = Vec::new();
    loop {
        let rest = &input[*pos..];
        let Some(open) = rest.find("{{") else {
            if let Some((name, at)) = closing {
                return Err(TemplateError {
                    line: line_at(input, at),
                    reason: format!("section {{{{#{name}}}}} is not closed: add {{{{/{name}}}}}"),
                });
            }
            if !rest.is_empty() {
                nodes.push(Node::Text(rest));
            }
            *pos = input.len();
            return Ok(nodes);
        };
        if open > 0 {
            nodes.push(Node::Text(&rest[..open]));
        }
        let tag_start = *pos + open;
        let after = &input[tag_start + 2..];
        let (inner, tag_len) = if let Some(body) = after.strip_prefix('{') {
            let end = body.find("}}}").ok_or_else(|| unclosed(input, tag_start))?;
            (&after[..end + 1], 2 + 1 + end + 3)
        } else {
            let end = after.find("}}").ok_or_else(|| unclosed(input, tag_start))?;
            (&after[..end], 2 + end + 2)
        };
        *pos = tag_start + tag_len;
        let line = line_at(input, tag_start);
        let (sigil, name) = match inner.chars().next() {
            Some(c @ ('{' | '&' | '#' | '^' | '/' | '!' | '>' | '=')) => (Some(c), &inner[1..]),
            _ => (None, inner),
        };
        let name = name.trim();
        let name = if sigil == Some('{') {
            name.strip_suffix('}').unwrap_or(name).trim()
        } else {
            name
        };
        let named = |name: &str| -> Result<(), TemplateError> {
            if name.is_empty() {
                return Err(TemplateError {
                    line,
                    reason: "empty tag {{ }}: write a variable name between the braces".into(),
                });
            }
            Ok(())
        };
        match sigil {
            Some('!') => {}
            Some('>') | Some('=') => {
                return Err(TemplateError {
                    line,
                    reason: format!(
                        "{{{{{}...}}}} (mustache partials and delimiter changes) is not supported: use {{{{ name }}}} placeholders",
                        sigil.unwrap_or_default()
                    ),
                });
            }
            Some('#') | Some('^') => {
                named(name)?;
                let body = parse(input, pos, Some((name, tag_start)))?;
                nodes.push(Node::Section {
                    name,
                    inverted: sigil == Some('^'),
                    body,
                });
            }
            Some('/') => {
                return match closing {
                    Some((open_name, _)) if open_name == name => Ok(nodes),
                    Some((open_name, _)) => Err(TemplateError {
                        line,
                        reason: format!(
                            "{{{{/{name}}}}} closes a section that is not open (the open one is {{{{#{open_name}}}}})"
                        ),
                    }),
                    None => Err(TemplateError {
                        line,
                        reason: format!("{{{{/{name}}}}} closes a section that is not open"),
                    }),
                };
            }
            Some('{') | Some('&') => {
                named(name)?;
                nodes.push(Node::Var { name, raw: true });
            }
            _ => {
                named(name)?;
                nodes.push(Node::Var { name, raw: false });
            }
        }
    }
}

fn unclosed(input: &str, at: usize) -> TemplateError {
    TemplateError {
        line: line_at(input, at),
        reason: "a tag opened with {{ is not closed: add }}".into(),
    }
}

fn emit(nodes: &[Node<'_>], vars: &BTreeMap<String, String>, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Var { name, raw } => match (vars.get(*name), raw) {
                (Some(v), true) => out.push_str(v),
                (Some(v), false) => html_escape(v, out),
                (None, _) => {}
            },
            Node::Section {
                name,
                inverted,
                body,
            } => {
                let set = vars.get(*name).is_some_and(|v| !v.is_empty());
                if set != *inverted {
                    emit(body, vars, out);
                }
            }
        }
    }
}

/// Go's `template.HTMLEscape`.
fn html_escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// One `-v` argument, read as kumactl's flag library reads it: with a single `=`, one
/// `NAME=VALUE` (the value may hold commas); with several, comma-separated pairs
/// (`-v a=1,b=2`; CSV quoting: `-v '"a=1,2",b=3'`).
pub fn parse_vars(s: &str) -> Result<Vec<(String, String)>, String> {
    let bad = |pair: &str| format!("{pair:?} is not NAME=VALUE (e.g. -v address=10.0.0.1)");
    let pairs = match s.matches('=').count() {
        0 => return Err(bad(s)),
        1 => vec![s.trim_matches('"').to_string()],
        _ => csv_fields(s).ok_or_else(|| {
            format!("{s:?}: a quoted field is not closed (pairs are comma-separated, CSV-quoted)")
        })?,
    };
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(bad(pair)),
        })
        .collect()
}

/// The comma-separated fields of one CSV line (`"` quotes, `""` inside quotes is one `"`).
fn csv_fields(s: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn placeholders_as_kumactl_fills_them() {
        let v = vars(&[("address", "2.2.2.2"), ("var.with.dots", "x")]);
        assert_eq!(
            render("address: \"{{ address }}\"\nn: {{var.with.dots}}\n", &v).unwrap(),
            "address: \"2.2.2.2\"\nn: x\n"
        );
        // Unset: nothing, as kumactl's mustache renders it.
        assert_eq!(render("a: '{{ missing }}'", &v).unwrap(), "a: ''");
        // Escaped unless triple-braced or `&`.
        let v = vars(&[("v", "a&b<'\">")]);
        assert_eq!(render("{{ v }}", &v).unwrap(), "a&amp;b&lt;&#39;&#34;&gt;");
        assert_eq!(
            render("{{{ v }}}|{{& v}}", &v).unwrap(),
            "a&b<'\">|a&b<'\">"
        );
        assert_eq!(render("x{{! note }}y", &v).unwrap(), "xy");
    }

    #[test]
    fn sections_keep_or_drop_their_content() {
        let v = vars(&[("on", "1"), ("empty", "")]);
        let t = "{{#on}}A{{/on}}{{^on}}B{{/on}}{{#empty}}C{{/empty}}{{^gone}}D{{/gone}}";
        assert_eq!(render(t, &v).unwrap(), "AD");
    }

    #[test]
    fn broken_templates_name_their_line() {
        let v = vars(&[("a", "1")]);
        let err = render("ok\naddress: {{ a\n", &v).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = render("{{#a}}\nx\n", &v).unwrap_err();
        assert!(err.reason.contains("{{/a}}"), "{err}");
        let err = render("{{#a}}{{/b}}", &v).unwrap_err();
        assert!(err.reason.contains("{{#a}}"), "{err}");
        assert!(render("{{> part}}", &v).is_err());
        assert!(render("{{ }}", &v).is_err());
    }

    #[test]
    fn vars_read_as_kumactl_reads_them() {
        let one = |s: &str| parse_vars(s).unwrap();
        assert_eq!(one("a=b,c"), [("a".into(), "b,c".into())]);
        assert_eq!(one("a="), [("a".into(), String::new())]);
        assert_eq!(
            one("a=1,b=2"),
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(
            one("\"a=1,2\",b=x=y"),
            [("a".into(), "1,2".into()), ("b".into(), "x=y".into())]
        );
        assert!(parse_vars("novalue").is_err());
        assert!(parse_vars("=x").is_err());
        assert!(parse_vars("a=1,oops,b=2").is_err());
    }
}
