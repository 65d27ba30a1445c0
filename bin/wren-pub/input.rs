//! Where `wren-pub`'s payloads come from besides `-m`: a file (`-f`), all of stdin
//! (`-s`) or stdin line by line (`-l`), with mosquitto_pub's rules and messages.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;

use crate::options::MAX_PAYLOAD;

/// `-f`: the whole file is one message; an empty file is an empty message.
/// The error text is mosquitto's two lines.
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let failed = |first: String| format!("{first}Error loading input file \"{shown}\".\n");
    let file = File::open(path)
        .map_err(|_| failed(format!("Error: Unable to open file \"{shown}\".\n")))?;
    let mut payload = Vec::new();
    file.take(MAX_PAYLOAD as u64 + 1)
        .read_to_end(&mut payload)
        .map_err(|e| failed(format!("Error: Unable to read file \"{shown}\": {e}.\n")))?;
    if payload.len() > MAX_PAYLOAD {
        return Err(failed(format!(
            "Error: File must be less than {MAX_PAYLOAD} bytes.\n\n"
        )));
    }
    Ok(payload)
}

/// `-s`: everything `input` holds is one message, which must not be empty.
pub fn read_all(input: impl Read) -> Result<Vec<u8>, String> {
    let failed = |first: &str| format!("{first}Error loading input from stdin.\n");
    let mut payload = Vec::new();
    input
        .take(MAX_PAYLOAD as u64 + 1)
        .read_to_end(&mut payload)
        .map_err(|e| failed(&format!("Error: Unable to read stdin: {e}.\n")))?;
    if payload.len() > MAX_PAYLOAD {
        return Err(failed(&format!(
            "Error: Message length must be less than {MAX_PAYLOAD} bytes.\n\n"
        )));
    }
    if payload.is_empty() {
        return Err(failed("Error: Zero length input.\n"));
    }
    Ok(payload)
}

/// `-l`: one message per line, as mosquitto_pub reads them: the `\n` is dropped
/// (a `\r` before it is kept), an empty line is an empty message, and a last line
/// without `\n` is sent too.
pub struct Lines<R> {
    input: R,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `input`.
    pub fn new(input: R) -> Lines<R> {
        Lines { input }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        let mut line = Vec::new();
        // One byte over the largest payload tells a line too long to publish.
        let limit = MAX_PAYLOAD as u64 + 2;
        match (&mut self.input).take(limit).read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if line.len() > MAX_PAYLOAD {
                    return Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a line of input is longer than {MAX_PAYLOAD} bytes"),
                    )));
                }
                Some(Ok(line))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Vec<u8>> {
        Lines::new(input).map(Result::unwrap).collect()
    }

    #[test]
    fn lines_keep_carriage_returns_and_empty_lines() {
        assert_eq!(
            lines(b"one\r\n\ntwo\nlast"),
            [&b"one\r"[..], b"", b"two", b"last"].map(<[u8]>::to_vec)
        );
        assert_eq!(lines(b""), Vec::<Vec<u8>>::new());
        assert_eq!(lines(b"\n"), [Vec::<u8>::new()]);
    }

    #[test]
    fn empty_stdin_is_refused_for_s() {
        assert_eq!(
            read_all(&b""[..]).unwrap_err(),
            "Error: Zero length input.\nError loading input from stdin.\n"
        );
        assert_eq!(read_all(&b"a\nb"[..]).unwrap(), b"a\nb");
    }

    #[test]
    fn a_missing_file_is_named() {
        assert_eq!(
            read_file(Path::new("/nonexistent/x")).unwrap_err(),
            "Error: Unable to open file \"/nonexistent/x\".\nError loading input file \"/nonexistent/x\".\n"
        );
    }
}
