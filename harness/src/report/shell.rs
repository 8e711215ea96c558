//! Command lines written for a shell to read back.

/// A command line as one string a shell would split back the same way.
pub(super) fn shell_words(binary: &str, args: &[String]) -> String {
    let quote = |s: &str| {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=,.:/@+%".contains(c))
        {
            s.to_owned()
        } else {
            crate::console::sh_quote(s)
        }
    };
    std::iter::once(binary)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_quote_what_a_shell_would_split() {
        assert_eq!(
            shell_words(
                "qemu",
                &["-m".into(), "1024M".into(), "a b".into(), "it's".into()]
            ),
            r"qemu -m 1024M 'a b' 'it'\''s'"
        );
    }
}
