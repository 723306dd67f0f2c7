//! An event's `format` file: its field names and how its `print fmt` lays them out in `trace`.
//!
//! Field names changed across kernels (`fl_blocker` became `blocker`, `fl_type` became `type`),
//! while the printed labels stayed. So lockfair never hard-codes either: it reads which field
//! each conversion of the print format prints, and asks for a field by its possible names.

use thiserror::Error;

/// What is wrong with a `format` file.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("the format of event {event} has no `{what}` line")]
    Missing { event: String, what: &'static str },
    #[error("the print format of event {event} is not a C string: {why}")]
    PrintFmt { event: String, why: &'static str },
    #[error(
        "event {event} has none of the fields {candidates:?} (this kernel names them otherwise; its fields: {have:?})"
    )]
    NoField {
        event: String,
        candidates: Vec<String>,
        have: Vec<String>,
    },
}

/// One field of the binary record (only the name matters for text; the rest is kept for
/// filters and messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
}

/// One `%` conversion of the print format: the literal text before it and the field it prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversion {
    pub before: String,
    pub field: Option<String>,
    /// The conversion letter: `x` prints hexadecimal, `d`/`u` decimal, `p` a pointer, ...
    pub letter: char,
}

/// An event as its `format` file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFormat {
    pub name: String,
    pub id: u32,
    pub fields: Vec<Field>,
    pub conversions: Vec<Conversion>,
    /// Literal text after the last conversion.
    pub after: String,
}

impl EventFormat {
    /// Parses the text of `events/<system>/<name>/format`.
    pub fn parse(text: &str) -> Result<EventFormat, FormatError> {
        let value = |key: &'static str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::trim)
        };
        let name = value("name:").unwrap_or_default().to_string();
        let missing = |what| FormatError::Missing {
            event: name.clone(),
            what,
        };
        let id = value("ID:")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| missing("ID"))?;
        let fields = text.lines().filter_map(parse_field).collect();
        let print = value("print fmt:").ok_or_else(|| missing("print fmt"))?;
        let (conversions, after) = parse_print_fmt(print).map_err(|why| FormatError::PrintFmt {
            event: name.clone(),
            why,
        })?;
        Ok(EventFormat {
            name,
            id,
            fields,
            conversions,
            after,
        })
    }

    /// The first of `candidates` this event has, as a field name.
    pub fn field(&self, candidates: &[&str]) -> Result<&str, FormatError> {
        candidates
            .iter()
            .find_map(|c| self.fields.iter().find(|f| f.name == *c))
            .map(|f| f.name.as_str())
            .ok_or_else(|| FormatError::NoField {
                event: self.name.clone(),
                candidates: candidates.iter().map(|c| c.to_string()).collect(),
                have: self.fields.iter().map(|f| f.name.clone()).collect(),
            })
    }

    /// Which conversion prints the first of `candidates`: where its value sits in a line.
    pub fn printed(&self, candidates: &[&str]) -> Result<usize, FormatError> {
        let name = self.field(candidates)?;
        self.conversions
            .iter()
            .position(|c| c.field.as_deref() == Some(name))
            .ok_or_else(|| FormatError::NoField {
                event: format!("{} (printed)", self.name),
                candidates: candidates.iter().map(|c| c.to_string()).collect(),
                have: self
                    .conversions
                    .iter()
                    .filter_map(|c| c.field.clone())
                    .collect(),
            })
    }

    /// Splits an event's printed text (after `name: `) into one value per conversion, using the
    /// literal text between them. `None` if the text does not follow this format.
    pub fn split<'t>(&self, mut text: &'t str) -> Option<Vec<&'t str>> {
        let mut values = Vec::with_capacity(self.conversions.len());
        for (i, c) in self.conversions.iter().enumerate() {
            text = text.strip_prefix(c.before.as_str())?;
            if i > 0 && c.before.is_empty() {
                // `%s%s`: the previous conversion took the text of both.
                values.push("");
                continue;
            }
            // The value runs to the next literal that is not empty.
            let next = self.conversions[i + 1..]
                .iter()
                .map(|c| c.before.as_str())
                .find(|b| !b.is_empty());
            let end = match next {
                Some(lit) => text.find(lit)?,
                None if self.after.is_empty() => text.len(),
                None => text.rfind(self.after.as_str())?,
            };
            values.push(&text[..end]);
            text = &text[end..];
        }
        Some(values)
    }
}

/// `\tfield:unsigned long i_ino;\toffset:16;\tsize:8;\tsigned:0;`
fn parse_field(line: &str) -> Option<Field> {
    let rest = line.trim().strip_prefix("field:")?;
    let mut parts = rest.split(';').map(str::trim);
    let decl = parts.next()?;
    let decl = decl.split('[').next()?.trim_end();
    let name = decl
        .rsplit([' ', '*'])
        .next()
        .filter(|n| !n.is_empty())?
        .to_string();
    let mut offset = 0;
    let mut size = 0;
    let mut signed = false;
    for p in parts {
        if let Some((k, v)) = p.split_once(':') {
            match k {
                "offset" => offset = v.parse().ok()?,
                "size" => size = v.parse().ok()?,
                "signed" => signed = v == "1",
                _ => {}
            }
        }
    }
    Some(Field {
        name,
        offset,
        size,
        signed,
    })
}

/// Parses `"fmt", REC->a, f(REC->b), ...` into conversions (with the field each prints) and
/// the trailing literal.
fn parse_print_fmt(print: &str) -> Result<(Vec<Conversion>, String), &'static str> {
    let (fmt, rest) = c_string(print)?;
    let args = split_args(rest);
    let mut conversions = Vec::new();
    let mut literal = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            literal.push(ch);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            literal.push('%');
            continue;
        }
        // flags, width, precision, length, then the conversion letter
        let mut conv = ' ';
        for c in chars.by_ref() {
            if c.is_ascii_alphabetic() && !"hlLqjzt".contains(c) {
                conv = c;
                break;
            }
        }
        if conv == 'p' {
            // kernel pointer extensions: %pS, %pI4, ...
            while chars.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                chars.next();
            }
        }
        let field = args.get(conversions.len()).and_then(|a| rec_field(a));
        conversions.push(Conversion {
            before: std::mem::take(&mut literal),
            field,
            letter: conv,
        });
    }
    Ok((conversions, literal))
}

/// The C string literal at the start of `s` (unescaped) and what follows it.
fn c_string(s: &str) -> Result<(String, &str), &'static str> {
    let body = s
        .strip_prefix('"')
        .ok_or("it does not start with a quote")?;
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match (escaped, c) {
            (true, 'n') => out.push('\n'),
            (true, 't') => out.push('\t'),
            (true, c) => out.push(c),
            (false, '\\') => {}
            (false, '"') => return Ok((out, &body[i + 1..])),
            (false, c) => out.push(c),
        }
        escaped = !escaped && c == '\\';
    }
    Err("the string never ends")
}

/// The arguments after the format, split at commas outside parentheses, braces and strings.
fn split_args(rest: &str) -> Vec<&str> {
    let mut args = Vec::new();
    let (mut depth, mut in_str, mut start) = (0i32, false, 0);
    let mut prev = ' ';
    for (i, c) in rest.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '{' | '[' if !in_str => depth += 1,
            ')' | '}' | ']' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                args.push(rest[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        prev = c;
    }
    args.push(rest[start..].trim());
    // The text before the first comma is what followed the closing quote: nothing.
    args.into_iter().skip(1).collect()
}

/// The first `REC->name` in an argument expression.
fn rec_field(arg: &str) -> Option<String> {
    let at = arg.find("REC->")? + "REC->".len();
    let name: String = arg[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSIX: &str = include_str!("testdata/posix_lock_inode.format");
    const SWITCH: &str = include_str!("testdata/sched_switch.format");

    #[test]
    fn reads_fields_and_what_each_conversion_prints() {
        let f = EventFormat::parse(POSIX).unwrap();
        assert_eq!(f.name, "posix_lock_inode");
        assert!(f.id > 0);
        assert!(f.fields.iter().any(|x| x.name == "i_ino" && x.size == 8));
        assert_eq!(f.field(&["fl_blocker", "blocker"]).unwrap(), "blocker");
        assert_eq!(f.field(&["fl_type", "type"]).unwrap(), "type");
        let ino = f.printed(&["i_ino"]).unwrap();
        assert!(f.conversions[ino].before.ends_with("ino=0x"));
        // dev prints s_dev twice (major, minor): the first conversion is the one found
        assert_eq!(f.conversions[1].field.as_deref(), Some("s_dev"));
    }

    #[test]
    fn an_older_kernels_names_are_found_by_their_candidates() {
        let old = POSIX
            .replace("* blocker;", "* fl_blocker;")
            .replace("REC->blocker", "REC->fl_blocker")
            .replace("char type;", "char fl_type;")
            .replace("REC->type", "REC->fl_type");
        let f = EventFormat::parse(&old).unwrap();
        assert_eq!(f.field(&["blocker", "fl_blocker"]).unwrap(), "fl_blocker");
        assert!(f.printed(&["type", "fl_type"]).is_ok());
        let err = f.field(&["no_such"]).unwrap_err().to_string();
        assert!(
            err.contains("no_such") && err.contains("fl_blocker"),
            "{err}"
        );
    }

    #[test]
    fn splits_a_printed_line_even_with_spaces_in_a_name() {
        let f = EventFormat::parse(SWITCH).unwrap();
        let line = "prev_comm=opt cgu.04 prev_pid=16902 prev_prio=120 prev_state=R+ ==> \
                    next_comm=lockfair-client next_pid=16903 next_prio=120";
        let v = f.split(line).unwrap();
        assert_eq!(v[f.printed(&["prev_comm"]).unwrap()], "opt cgu.04");
        assert_eq!(v[f.printed(&["prev_pid"]).unwrap()], "16902");
        assert_eq!(v[f.printed(&["prev_state"]).unwrap()], "R+");
        assert_eq!(v[f.printed(&["next_pid"]).unwrap()], "16903");
        assert!(f.split("something else entirely").is_none());
    }

    #[test]
    fn a_broken_format_is_an_error_not_a_panic() {
        assert!(EventFormat::parse("name: x\n").is_err());
        assert!(EventFormat::parse("name: x\nID: 3\nprint fmt: \"unterminated\n").is_err());
        assert!(EventFormat::parse("name: x\nID: 3\nprint fmt: no quote\n").is_err());
        assert_eq!(parse_field("field:;"), None);
    }
}
