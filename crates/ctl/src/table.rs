//! Plain-text tables like kumactl's (columns padded by three spaces) and Kubernetes-style ages.

use time::OffsetDateTime;

/// Renders `rows` under `headers`, each column as wide as its widest cell plus three spaces (the
/// last column unpadded).
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count()) + 3;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Kubernetes' `HumanDuration`: `45s`, `3m20s`, `25m`, `5h10m`, `20h`, `3d4h`, `120d`, `3y20d`.
pub fn human_duration(d: time::Duration) -> String {
    let secs = d.whole_seconds().max(0);
    let (minutes, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if minutes < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        }
    } else if minutes < 3 * 60 {
        format!("{minutes}m")
    } else if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        }
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        let (y, d) = (days / 365, days % 365);
        if d == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{d}d")
        }
    } else {
        format!("{}y", days / 365)
    }
}

/// The age of something created at `created` (RFC 3339), or `-`.
pub fn age(created: Option<&str>, now: OffsetDateTime) -> String {
    created
        .and_then(|c| OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok())
        .map_or_else(|| "-".to_string(), |t| human_duration(now - t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_like_kumactl() {
        let out = render(
            &["MESH", "NAME", "AGE"],
            &[
                vec!["default".into(), "token-1".into(), "5m".into()],
                vec!["m".into(), "a-much-longer-name".into(), "2d".into()],
            ],
        );
        assert_eq!(
            out,
            "MESH      NAME                 AGE\n\
             default   token-1              5m\n\
             m         a-much-longer-name   2d\n"
        );
        assert_eq!(render(&["NAME", "AGE"], &[]), "NAME   AGE\n");
        // An empty last cell leaves no trailing spaces.
        assert_eq!(
            render(&["A", "B"], &[vec!["x".into(), String::new()]]),
            "A   B\nx\n"
        );
    }

    #[test]
    fn ages_read_like_kubectl() {
        let s = time::Duration::seconds;
        for (secs, want) in [
            (-5, "0s"),
            (45, "45s"),
            (119, "119s"),
            (200, "3m20s"),
            (300, "5m"),
            (25 * 60, "25m"),
            (5 * 3600 + 600, "5h10m"),
            (20 * 3600, "20h"),
            (3 * 86_400 + 4 * 3600, "3d4h"),
            (120 * 86_400, "120d"),
            (3 * 365 * 86_400 + 20 * 86_400, "3y20d"),
            (10 * 365 * 86_400, "10y"),
        ] {
            assert_eq!(human_duration(s(secs)), want, "{secs}");
        }
        let now = OffsetDateTime::parse(
            "2025-01-02T00:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(age(Some("2025-01-01T00:00:00Z"), now), "24h");
        assert_eq!(age(Some("garbage"), now), "-");
        assert_eq!(age(None, now), "-");
    }
}
