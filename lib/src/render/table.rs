//! docker's tables: columns aligned as Go's `text/tabwriter` aligns them in the docker CLI
//! (`NewWriter(out, 10, 1, 3, ' ', 0)`), with the header line a `table` format renders.
//!
//! The alignment is a few dozen lines kept here rather than a dependency: den's tables must
//! match docker's byte for byte (scripts and the end-to-end tests compare them), including
//! tabwriter's rule that a column spans only the consecutive lines having a cell in it, and
//! the tests below pin those rules.

use serde_json::Value;

use super::template::{Template, TemplateError};

/// Go tabwriter's minimal cell width (padding included) in docker's `NewWriter(out, 10, 1, 3, ' ', 0)`.
const MIN_WIDTH: usize = 10;
/// Spaces docker's tabwriter adds after the widest cell of a column.
const PADDING: usize = 3;

/// docker's "table" output: a header line, then every row, columns aligned by [`align`].
///
/// The header is the template rendered with each field path (`{{.ID}}`, `{{.State.Status}}`)
/// replaced by its entry in `headers` (looked up by the dotted path, e.g. "ID" -> "CONTAINER ID"),
/// or else by its last field upper-cased; `.` itself is an object of all `headers`.
pub fn render_table(
    t: &Template,
    headers: &[(&str, &str)],
    rows: &[Value],
) -> Result<String, TemplateError> {
    let mut text = t.render_header(headers)?;
    text.push('\n');
    for row in rows {
        text.push_str(&t.render(row)?);
        text.push('\n');
    }
    Ok(align_text(&text))
}

/// A table's rendered text (lines of tab-separated cells) aligned by [`align`].
pub fn align_text(text: &str) -> String {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
    align(&lines)
}

/// Align tab-separated cells the way docker's tables do (Go's tabwriter with minwidth 10 and
/// padding 3): every cell but a line's last is padded to its column's width, which is its widest
/// cell plus 3 spaces, at least 10. As in tabwriter, a column spans consecutive lines that have a
/// cell in it. Trailing spaces are dropped; every line ends with "\n".
pub fn align<S: AsRef<str>>(lines: &[Vec<S>]) -> String {
    let mut widths = vec![Vec::new(); lines.len()];
    column_widths(lines, 0, lines.len(), &mut Vec::new(), &mut widths);
    let mut out = String::new();
    for (cells, widths) in lines.iter().zip(&widths) {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let cell = cell.as_ref();
            line.push_str(cell);
            if let Some(&width) = widths.get(i) {
                let used = cell.chars().count();
                line.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
            }
        }
        out.push_str(line.trim_end_matches(' '));
        out.push('\n');
    }
    out
}

/// Go tabwriter's `format`: find the blocks of consecutive lines in `first..end` having a cell
/// in column `known.len()` (a cell that is not the line's last), size that column per block,
/// and recurse into the next column. `out[line]` gets the widths of the line's padded cells.
fn column_widths<S: AsRef<str>>(
    lines: &[Vec<S>],
    first: usize,
    end: usize,
    known: &mut Vec<usize>,
    out: &mut [Vec<usize>],
) {
    let column = known.len();
    let has_cell = |line: usize| lines[line].len() > column + 1;
    let mut line = first;
    let mut done = first;
    while line < end {
        if !has_cell(line) {
            line += 1;
            continue;
        }
        for w in &mut out[done..line] {
            w.clone_from(known);
        }
        let start = line;
        let mut width = MIN_WIDTH;
        while line < end && has_cell(line) {
            width = width.max(lines[line][column].as_ref().chars().count() + PADDING);
            line += 1;
        }
        known.push(width);
        column_widths(lines, start, line, known, out);
        known.pop();
        done = line;
    }
    for w in &mut out[done..end] {
        w.clone_from(known);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn align_like_tabwriter() {
        let lines = |rows: &[&[&str]]| -> Vec<Vec<String>> {
            rows.iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect()
        };
        // Columns: widest cell + 3, at least 10; the last cell is never padded.
        assert_eq!(
            align(&lines(&[
                &["CONTAINER ID", "IMAGE", "NAMES"],
                &["abc", "nginx:latest", "web"]
            ])),
            "CONTAINER ID   IMAGE          NAMES\nabc            nginx:latest   web\n"
        );
        // Trailing spaces dropped when the last cell is empty.
        assert_eq!(
            align(&lines(&[&["a", ""], &["b", "x"]])),
            "a\nb         x\n"
        );
        // A line without that column ends the column's block (Go tabwriter semantics).
        assert_eq!(
            align(&lines(&[&["aaaaaaaaaaaa", "1"], &["single"], &["b", "2"]])),
            "aaaaaaaaaaaa   1\nsingle\nb         2\n"
        );
        // Widths count characters, not bytes.
        assert_eq!(
            align(&lines(&[&["héllo", "x"], &["h", "y"]])),
            "héllo     x\nh         y\n"
        );
        assert_eq!(align::<String>(&[]), "");
    }

    #[test]
    fn table() {
        let rows = vec![
            json!({"ID": "0123456789ab", "Image": "nginx:latest", "Status": "Up 2 minutes", "Names": "web"}),
            json!({"ID": "ba9876543210", "Image": "redis", "Status": "Exited (0) 1 hour ago", "Names": "cache"}),
        ];
        let headers = [
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ];
        let t = Template::parse(r"table {{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}").unwrap();
        assert_eq!(
            render_table(&t, &headers, &rows).unwrap(),
            "CONTAINER ID   IMAGE          STATUS                  NAMES\n\
             0123456789ab   nginx:latest   Up 2 minutes            web\n\
             ba9876543210   redis          Exited (0) 1 hour ago   cache\n"
        );
        // Short columns are still 10 wide, as in `docker ps` with no containers.
        let t = Template::parse(r"table {{.Image}}\t{{.Names}}").unwrap();
        assert_eq!(
            render_table(&t, &headers, &[]).unwrap(),
            "IMAGE     NAMES\n"
        );
        // Unknown fields get their upper-cased name; functions apply to the header too.
        let t = Template::parse(r"table {{.Foo}}\t{{.Names | lower}}\t{{.State.Status}}").unwrap();
        assert_eq!(
            render_table(
                &t,
                &headers,
                &[json!({"Foo": 1, "Names": "WEB", "State": {"Status": "up"}})]
            )
            .unwrap(),
            "FOO       names     STATUS\n1         web       up\n"
        );
        // Errors in a row are reported.
        let t = Template::parse(r"table {{.ID.X}}").unwrap();
        assert!(render_table(&t, &headers, &rows).is_err());
    }
}
