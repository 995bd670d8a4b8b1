//! `Report`: what one benchmark prints, as a markdown table (with its aim and whether it was met)
//! or as JSON.

use serde::Serialize;

/// Whether a benchmark's aim was met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The aim was met.
    Met,
    /// The aim was not met.
    Missed,
    /// The run did not measure what the aim is about (e.g. the size the aim names was not run).
    NotMeasured,
    /// The benchmark has no aim (a measurement only).
    NoAim,
}

/// One benchmark's results.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The benchmark (subcommand) name.
    pub name: String,
    /// A one-line title.
    pub title: String,
    /// The aim, in words.
    pub aim: String,
    /// Whether the aim was met.
    pub verdict: Verdict,
    /// Why (the numbers the verdict is based on).
    pub verdict_reason: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows of cells (already formatted).
    pub rows: Vec<Vec<String>>,
    /// Notes printed under the table (how it was measured, what is simulated).
    pub notes: Vec<String>,
    /// The raw numbers, for `--json`.
    pub data: serde_json::Value,
}

impl Verdict {
    /// From a comparison (`None`: not measured).
    pub fn from_check(check: Option<bool>) -> Self {
        match check {
            Some(true) => Verdict::Met,
            Some(false) => Verdict::Missed,
            None => Verdict::NotMeasured,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Met => "**met**",
            Verdict::Missed => "**not met**",
            Verdict::NotMeasured => "**not measured**",
            Verdict::NoAim => "no aim",
        }
    }
}

// === impl Report ===

impl Report {
    /// The report as markdown: a heading, the aim and verdict, the table, then the notes.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("### {}: {}\n\n", self.name, self.title);
        if self.verdict != Verdict::NoAim {
            out.push_str(&format!(
                "Aim: {}: {} ({})\n\n",
                self.aim,
                self.verdict.label(),
                self.verdict_reason
            ));
        }
        out.push_str(&format!("| {} |\n", self.columns.join(" | ")));
        out.push_str(&format!(
            "|{}\n",
            self.columns.iter().map(|_| " --- |").collect::<String>()
        ));
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_a_header_separator_and_rows() {
        let r = Report {
            name: "x".into(),
            title: "t".into(),
            aim: "a".into(),
            verdict: Verdict::Met,
            verdict_reason: "because".into(),
            columns: vec!["a".into(), "b".into()],
            rows: vec![vec!["1".into(), "2".into()]],
            notes: vec!["n".into()],
            data: serde_json::Value::Null,
        };
        let md = r.to_markdown();
        assert!(md.contains("| a | b |\n| --- | --- |\n| 1 | 2 |\n"), "{md}");
        assert!(md.contains("**met** (because)"));
        assert!(r.to_json().contains("\"verdict\": \"met\""));
    }
}
