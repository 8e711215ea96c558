//! One line of grub.cfg read as GRUB's shell reads it, and the `linux` command
//! found in an entry's lines.

/// One line of grub.cfg as GRUB's shell reads it (GRUB manual, "Shell-like
/// scripting"): words end at spaces, tabs and the metacharacters `{ } | & ; < >`;
/// single quotes keep every character; double quotes keep all but a backslash
/// before `$`, `"` or `\`; outside quotes a backslash keeps the next character;
/// adjacent quoted and plain parts are one word; a `#` that starts a word starts
/// a comment.
#[derive(Debug, Default)]
pub(super) struct Line {
    /// The words, quotes and escapes resolved.
    pub(super) words: Vec<String>,
    /// The line with each quoted or escaped character blanked to `_` (as many
    /// bytes as it had, so offsets stay the line's) and the comment cut off:
    /// where braces and `;` are syntax.
    pub(super) code: String,
}

impl Line {
    pub(super) fn read(line: &str) -> Line {
        let mut read = Line::default();
        let mut word: Option<String> = None;
        let mut quote: Option<char> = None;
        let mut chars = line.chars().peekable();
        let blank =
            |code: &mut String, c: char| code.extend(std::iter::repeat_n('_', c.len_utf8()));
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, ' ' | '\t') => {
                    read.words.extend(word.take());
                    read.code.push(c);
                }
                // Metacharacters end a word and are one of their own.
                (None, '{' | '}' | '|' | '&' | ';' | '<' | '>') => {
                    read.words.extend(word.take());
                    read.words.push(c.to_string());
                    read.code.push(c);
                }
                (None, '#') if word.is_none() => break,
                (None, '\'') | (None, '"') => {
                    quote = Some(c);
                    word.get_or_insert_default();
                    read.code.push(c);
                }
                (None, '\\') | (Some('"'), '\\')
                    if quote.is_none() || matches!(chars.peek(), Some('$' | '"' | '\\')) =>
                {
                    read.code.push('_');
                    let word = word.get_or_insert_default();
                    if let Some(next) = chars.next() {
                        word.push(next);
                        blank(&mut read.code, next);
                    }
                }
                (None, c) => {
                    word.get_or_insert_default().push(c);
                    read.code.push(c);
                }
                (Some(q), c) if c == q => {
                    quote = None;
                    read.code.push(c);
                }
                (Some(_), c) => {
                    word.get_or_insert_default().push(c);
                    blank(&mut read.code, c);
                }
            }
        }
        read.words.extend(word);
        read
    }

    /// `menuentry "Title" --class x {` → `Title`.
    pub(super) fn title(&self) -> String {
        self.words.get(1).cloned().unwrap_or_default()
    }

    /// `--hotkey 't'`, `--hotkey=t` → `t` (GRUB also names keys like `backspace`;
    /// only single characters can be typed here).
    pub(super) fn hotkey(&self) -> Option<char> {
        let at = self
            .words
            .iter()
            .skip(2)
            .position(|w| w == "--hotkey" || w.starts_with("--hotkey="))?
            + 2;
        let value = match self.words[at].strip_prefix("--hotkey=") {
            Some(value) => value,
            None => self.words.get(at + 1)?,
        };
        let mut chars = value.chars();
        chars.next().filter(|_| chars.next().is_none())
    }

    /// The commands inside a one-line block (`{ linux ... ; initrd ... }`) of
    /// `line` (the text this was read from): between its first and last brace,
    /// split at each `;` outside quotes.
    pub(super) fn block_commands(&self, line: &str) -> Vec<String> {
        let (Some(open), Some(close)) = (self.code.find('{'), self.code.rfind('}')) else {
            return Vec::new();
        };
        let mut commands = Vec::new();
        let mut from = open + 1;
        for (at, _) in self.code[..close]
            .match_indices(';')
            .filter(|(at, _)| *at > open)
        {
            commands.push(&line[from..at]);
            from = at + 1;
        }
        commands.push(&line[from.min(close)..close]);
        commands
            .into_iter()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The `linux` (or `linuxefi`) command in one line of an entry as GRUB's
/// editor shows it: where the command's arguments end, as a byte offset into
/// `line` (a console argument goes there), and the arguments. A command ends
/// at a `;`, a `}` or the end of the line (outside quotes); a one-line entry
/// (`linux /k a; initrd /i; `) has more commands after it on the same line.
pub fn linux_command(line: &str) -> Option<(usize, &str)> {
    let read = Line::read(line);
    let code = read.code.as_str();
    let mut start = 0;
    for (end, _) in code
        .match_indices([';', '{', '}'])
        .chain(std::iter::once((code.len(), "")))
    {
        let command = &code[start..end];
        let word = command.trim_start();
        let name_len = word.find(char::is_whitespace).unwrap_or(word.len());
        if matches!(&word[..name_len], "linux" | "linuxefi") {
            let args_from = start + (command.len() - word.len()) + name_len;
            // The arguments, trailing blanks left out: the console goes right after them.
            let args_end = args_from + line[args_from..end].trim_end().len();
            return Some((args_end, line[args_from..args_end].trim()));
        }
        start = end + 1;
    }
    None
}

/// The index of the body's `linux` (or `linuxefi`) line.
pub(super) fn linux_line(body: &[String]) -> Option<usize> {
    body.iter()
        .position(|l| matches!(l.split_whitespace().next(), Some("linux" | "linuxefi")))
}
