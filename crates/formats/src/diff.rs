//! Unified diffs of two texts, from `similar` (Myers' algorithm, linear
//! memory, with a deadline).

/// A unified diff (`diff -u` style, 3 lines of context) of two texts, from
/// `similar` (Myers' algorithm, linear memory, with a deadline).
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .timeout(std::time::Duration::from_secs(5))
        .diff_lines(old, new);
    diff.unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_is_unified() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n", "x", "y");
        assert_eq!(d, "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
        assert_eq!(unified_diff("a\n", "a\n", "x", "y"), "");
        let d = unified_diff("a", "a\nb", "x", "y");
        assert!(
            d.contains("-a\n\\ No newline at end of file\n+a\n+b\n\\ No newline"),
            "{d}"
        );
    }

    #[test]
    fn diff_of_a_large_file_with_edits_at_both_ends_is_small_and_quick() {
        let old: String = (0..60_000).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replacen("line 1\n", "LINE 1\n", 1)
            .replace("line 59998\n", "LINE 59998\n");
        let t = std::time::Instant::now();
        let d = unified_diff(&old, &new, "x", "y");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(
            d.contains("-line 1\n+LINE 1\n") && d.contains("-line 59998\n+LINE 59998\n"),
            "{d}"
        );
    }
}
