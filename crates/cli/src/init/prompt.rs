//! The questions of `mailzone init` on a terminal: one line per answer, the default in
//! brackets (Enter takes it), a wrong answer explained and asked again. Plain lines, no
//! raw mode: it works on every terminal and can be driven by `expect`.

use std::io::{BufRead, Write};

use anyhow::bail;

/// Questions asked on `output`, answers read from `input`.
pub struct Prompt<R, W> {
    input: R,
    output: W,
}

impl Prompt<std::io::StdinLock<'static>, std::io::Stderr> {
    /// Questions on stderr (stdout keeps only the result), answers from stdin.
    pub fn stdio() -> Self {
        Prompt::new(std::io::stdin().lock(), std::io::stderr())
    }
}

impl<R: BufRead, W: Write> Prompt<R, W> {
    pub fn new(input: R, output: W) -> Self {
        Prompt { input, output }
    }

    /// A line of explanation before a question.
    pub fn say(&mut self, text: &str) -> anyhow::Result<()> {
        writeln!(self.output, "{text}")?;
        Ok(())
    }

    /// Asks until `parse` accepts the answer (or the default, on an empty line). The end
    /// of the input is an error naming the question.
    pub fn ask<T>(
        &mut self,
        question: &str,
        default: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        loop {
            match default {
                Some(d) if !d.is_empty() => write!(self.output, "{question} [{d}]: ")?,
                _ => write!(self.output, "{question}: ")?,
            }
            self.output.flush()?;
            let mut line = String::new();
            if self.input.read_line(&mut line)? == 0 {
                bail!("no answer to \"{question}\" (end of input)");
            }
            let answer = match line.trim() {
                "" => match default {
                    Some(d) => d,
                    None => {
                        writeln!(self.output, "  an answer is needed")?;
                        continue;
                    }
                },
                typed => typed,
            };
            match parse(answer) {
                Ok(value) => return Ok(value),
                Err(e) => writeln!(self.output, "  {e}; try again")?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(s: &str) -> Result<u32, String> {
        s.parse().map_err(|_| format!("{s:?} is not a number"))
    }

    #[test]
    fn asks_again_until_the_answer_parses_and_takes_the_default_on_enter() {
        let mut out = Vec::new();
        let mut prompt = Prompt::new(&b"x\n7\n\n"[..], &mut out);
        assert_eq!(prompt.ask("How many", Some("3"), number).unwrap(), 7);
        assert_eq!(prompt.ask("How many", Some("3"), number).unwrap(), 3);
        let err = prompt.ask("How many", None, number).unwrap_err();
        assert_eq!(err.to_string(), "no answer to \"How many\" (end of input)");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "How many [3]:   \"x\" is not a number; try again\nHow many [3]: How many [3]: How many: "
        );
    }

    #[test]
    fn an_empty_answer_without_default_is_asked_again() {
        let mut out = Vec::new();
        let mut prompt = Prompt::new(&b"\n5\n"[..], &mut out);
        assert_eq!(prompt.ask("N", None, number).unwrap(), 5);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("an answer is needed")
        );
    }
}
