//! docker's words for amounts: sizes and durations as go-units writes them (`4.26MB`,
//! `3 days`), and the docker CLI's `Ellipsis` for text cut to a column.
//!
//! Written rule for rule after go-units (`HumanSizeWithPrecision`, `HumanDuration`) rather than
//! taken from a Rust crate: den's listings must read exactly as docker's (no space before the
//! unit, decimal units, go-units' rounding and wording), which the tests below pin.

/// docker's (go-units) `HumanSizeWithPrecision(size, 3)`: decimal units, three significant
/// digits (`images`, `history`, `builder prune`).
pub fn human_size(size: u64) -> String {
    human_size_digits(size, 3)
}

/// docker's `units.HumanSize`: four significant digits (`16.43MB`), as `system df` and the
/// prune reports write sizes.
pub fn human_size4(size: u64) -> String {
    human_size_digits(size, 4)
}

/// go-units' HumanSizeWithPrecision: decimal units, `digits` significant digits as printf's
/// `%.Ng` gives them for these values (no exponent; trailing zeros dropped).
pub fn human_size_digits(size: u64, digits: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let whole = match v {
        v if v >= 1000.0 => 4,
        v if v >= 100.0 => 3,
        v if v >= 10.0 => 2,
        _ => 1,
    };
    let s = format!("{v:.*}", digits.saturating_sub(whole));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

/// docker's (go-units) HumanDuration.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = d.num_minutes();
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = ((d.num_seconds() as f64) / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", d.num_hours() / 24 / 365)
}

/// docker's Ellipsis: at most `n` characters, the last one "…" when cut.
pub fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(1_200_000_000), "1.2GB");
        assert_eq!(human_size(5_000), "5kB");
    }

    #[test]
    fn df_sizes_have_four_digits() {
        assert_eq!(human_size4(0), "0B");
        assert_eq!(human_size4(16_430_000), "16.43MB");
        assert_eq!(human_size4(4_261_000), "4.261MB");
        assert_eq!(human_size4(212), "212B");
        assert_eq!(human_size4(1_234_567_890), "1.235GB");
    }

    #[test]
    fn durations_like_docker() {
        let s = chrono::Duration::seconds;
        assert_eq!(human_duration(s(0)), "Less than a second");
        assert_eq!(human_duration(s(30)), "30 seconds");
        assert_eq!(human_duration(s(90)), "About a minute");
        assert_eq!(human_duration(s(600)), "10 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5 * 3600)), "5 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(90 * 86400)), "3 months");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
    }

    #[test]
    fn commands_are_cut_as_docker_cuts_them() {
        assert_eq!(ellipsis("httpd -f", 20), "httpd -f");
        assert_eq!(
            ellipsis("sh -c 'while true; do sleep 1; done'", 20)
                .chars()
                .count(),
            20
        );
        assert!(ellipsis("sh -c 'while true; do sleep 1; done'", 20).ends_with('…'));
    }
}
