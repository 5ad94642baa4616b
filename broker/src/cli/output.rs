//! Printing: aligned tables for people, JSON for scripts.

use super::Format;

pub struct Output {
    format: Format,
}

impl Output {
    pub fn new(format: Format) -> Self {
        Self { format }
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints `json` in JSON mode, otherwise the table `headers` + `rows`.
    pub fn table(&self, json: &serde_json::Value, headers: &[&str], rows: &[Vec<String>]) {
        if self.is_json() {
            println!("{json}");
        } else {
            print!("{}", render_table(headers, rows));
        }
    }

    /// Prints `json` in JSON mode, otherwise `text`.
    pub fn message(&self, json: &serde_json::Value, text: &str) {
        if self.is_json() {
            println!("{json}");
        } else {
            println!("{text}");
        }
    }
}

/// Left-aligned columns separated by two spaces.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let w = widths.get(i).copied().unwrap_or(0);
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align() {
        let t = super::render_table(
            &["TOPIC", "PARTITIONS"],
            &[
                vec!["a".into(), "1".into()],
                vec!["long-name".into(), "12".into()],
            ],
        );
        assert_eq!(t, "TOPIC      PARTITIONS\na          1\nlong-name  12\n");
    }
}
