//! Detach keys: the key sequence that lets a terminal go from an attached container and leave
//! it running (docker's `--detach-keys`, `detachKeys` in `~/.docker/config.json`).
//!
//! docker's syntax: a comma-separated list of `ctrl-<a-z @ [ \ ] ^ _>` or single characters
//! (`ctrl-p,ctrl-q`, the default; `ctrl-a,x`). An empty spec disables detaching, as podman's
//! does. Parsed once at the edge into [`DetachKeys`]; [`Matcher`] finds the sequence in what the
//! user types, holding back a partial match as docker's escape proxy does, so the keys
//! themselves never reach the container.
//!
//! Hand-written: docker's `term.ToBytes` and escape proxy are a few lines of Go with no Rust
//! counterpart.

use super::FlagError;

/// A parsed detach sequence; empty when detaching is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

impl Default for DetachKeys {
    /// docker's default, ctrl-p ctrl-q.
    fn default() -> Self {
        DetachKeys(vec![0x10, 0x11])
    }
}

/// docker's control keys, by their code: `ctrl-@` is 0, `ctrl-a` 1, ..., `ctrl-_` 31.
const CTRL: &str = "@abcdefghijklmnopqrstuvwxyz[\\]^_";

impl DetachKeys {
    /// Parse docker's syntax; `""` disables detaching.
    pub fn parse(spec: &str) -> Result<DetachKeys, FlagError> {
        if spec.is_empty() {
            return Ok(DetachKeys(Vec::new()));
        }
        let bad = || FlagError::BadDetachKeys(spec.to_string());
        spec.split(',')
            .map(|key| {
                let mut chars = key.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii() => Ok(c as u8),
                    _ => {
                        let name = key.strip_prefix("ctrl-").ok_or_else(bad)?;
                        let mut n = name.chars();
                        match (n.next(), n.next()) {
                            (Some(c), None) => CTRL.find(c).map(|i| i as u8).ok_or_else(bad),
                            _ => Err(bad()),
                        }
                    }
                }
            })
            .collect::<Result<Vec<u8>, FlagError>>()
            .map(DetachKeys)
    }

    /// The keys, in order; none when detaching is disabled.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }
}

/// Finds the detach sequence in a stream of input.
#[derive(Debug)]
pub struct Matcher {
    keys: DetachKeys,
    /// How many keys of the sequence the input has matched so far (held back).
    matched: usize,
}

impl Matcher {
    pub fn new(keys: DetachKeys) -> Matcher {
        Matcher { keys, matched: 0 }
    }

    /// The bytes of `data` to pass on, and whether the sequence completed (what followed it
    /// is dropped: the user is leaving). A partial match at the end is held back until the next
    /// call tells whether it was the sequence.
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let keys = self.keys.bytes();
        if keys.is_empty() {
            return (data.to_vec(), false);
        }
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if b != keys[self.matched] && self.matched > 0 {
                out.extend_from_slice(&keys[..self.matched]);
                self.matched = 0;
            }
            if b == keys[self.matched] {
                self.matched += 1;
                if self.matched == keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// docker's `detachKeys` from its client configuration (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`), when set; unreadable or malformed files are ignored, as docker's
/// other settings there are by den.
pub fn from_docker_config() -> Option<String> {
    let path = match (std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME")) {
        (Some(d), _) => std::path::PathBuf::from(d).join("config.json"),
        (None, Some(h)) => std::path::PathBuf::from(h).join(".docker/config.json"),
        (None, None) => return None,
    };
    // docker's config is small; a larger file is not one.
    let meta = std::fs::metadata(&path).ok()?;
    if meta.len() > 1 << 20 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    v.get("detachKeys")?.as_str().map(String::from)
}

/// The detach keys for an attach: the flag, else docker's configured ones, else ctrl-p ctrl-q.
pub fn choose(flag: Option<&str>) -> Result<DetachKeys, FlagError> {
    match flag {
        Some(f) => DetachKeys::parse(f),
        None => match from_docker_config() {
            Some(c) => DetachKeys::parse(&c),
            None => Ok(DetachKeys::default()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_syntax_parses() {
        assert_eq!(
            DetachKeys::parse("ctrl-p,ctrl-q").unwrap(),
            DetachKeys::default()
        );
        assert_eq!(DetachKeys::parse("ctrl-a").unwrap().bytes(), &[1]);
        assert_eq!(
            DetachKeys::parse("ctrl-@,ctrl-_").unwrap().bytes(),
            &[0, 31]
        );
        assert_eq!(
            DetachKeys::parse("ctrl-[,ctrl-\\,ctrl-],ctrl-^")
                .unwrap()
                .bytes(),
            &[27, 28, 29, 30]
        );
        assert_eq!(DetachKeys::parse("a,ctrl-z,Q").unwrap().bytes(), b"a\x1aQ");
        assert!(!DetachKeys::parse("").unwrap().enabled());
    }

    #[test]
    fn bad_specs_name_themselves() {
        for bad in [
            "ctrl-",
            "ctrl-1",
            "ctrl-P",
            "ab",
            "ctrl-a,,ctrl-b",
            "alt-x",
            "é",
            "ctrl-pq",
            ",",
        ] {
            let e = DetachKeys::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{bad}: {e}");
            assert!(crate::error::Diagnose::hint(&e).unwrap().contains("ctrl-"));
        }
    }

    #[test]
    fn the_sequence_is_found_and_held_back() {
        let mut m = Matcher::new(DetachKeys::default());
        assert_eq!(m.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        // split across reads: the ctrl-p is held until the next read decides
        assert_eq!(m.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(m.feed(b"\x11rest"), (vec![], true));
        // a ctrl-p not followed by ctrl-q goes through, late but whole
        let mut m = Matcher::new(DetachKeys::default());
        assert_eq!(m.feed(b"\x10"), (vec![], false));
        assert_eq!(m.feed(b"a"), (b"\x10a".to_vec(), false));
        // ctrl-p ctrl-p ctrl-q: the first ctrl-p passes, the rest detaches
        assert_eq!(m.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        // disabled: everything passes
        let mut m = Matcher::new(DetachKeys::parse("").unwrap());
        assert_eq!(m.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
        // a one-key sequence
        let mut m = Matcher::new(DetachKeys::parse("ctrl-a").unwrap());
        assert_eq!(m.feed(b"ab\x01c"), (b"ab".to_vec(), true));
    }
}
