//! The envelope every reply travels in, defined once.

use serde::ser::{Serialize, Serializer};

/// A reply: `{"ok":true, ...the body's fields}` or `{"ok":false,"error":"..."}`, `"ok"`
/// always first, so that a reader can tell the two apart from the first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    /// The request was carried out; the body's fields follow `"ok":true`.
    Ok(T),
    /// The request was refused; the error says why, and nothing changed.
    Err(String),
}

impl<T> Reply<T> {
    /// A refusal saying `message`.
    pub fn refuse(message: impl std::fmt::Display) -> Reply<T> {
        Reply::Err(message.to_string())
    }

    /// Whether it says `"ok":true`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Ok(_))
    }
}

impl<T: Serialize> Reply<T> {
    /// The reply's line: its JSON and the newline that ends it.
    pub fn to_line(&self) -> Vec<u8> {
        self.to_line_with_warning(None)
    }

    /// The reply's line with `"warning":text` as its last member when there is one: what the
    /// reply says stands, but something around it went wrong (tunmcastd: the change is in
    /// force but could not be saved to the state file).
    pub fn to_line_with_warning(&self, warning: Option<&str>) -> Vec<u8> {
        let line = Line {
            reply: self,
            warning,
        };
        let mut bytes = serde_json::to_vec(&line).expect("replies always serialize");
        bytes.push(b'\n');
        bytes
    }
}

impl<T, E: std::fmt::Display> From<Result<T, E>> for Reply<T> {
    fn from(result: Result<T, E>) -> Reply<T> {
        match result {
            Ok(body) => Reply::Ok(body),
            Err(e) => Reply::refuse(e),
        }
    }
}

impl<T: Serialize> Serialize for Reply<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Line {
            reply: self,
            warning: None,
        }
        .serialize(serializer)
    }
}

/// A reply and its warning, in the order they are written.
struct Line<'a, T> {
    reply: &'a Reply<T>,
    warning: Option<&'a str>,
}

impl<T: Serialize> Serialize for Line<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Accepted<'a, T> {
            ok: bool,
            #[serde(flatten)]
            body: &'a T,
            #[serde(skip_serializing_if = "Option::is_none")]
            warning: Option<&'a str>,
        }
        #[derive(serde::Serialize)]
        struct Refusal<'a> {
            ok: bool,
            error: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            warning: Option<&'a str>,
        }
        let warning = self.warning;
        match self.reply {
            Reply::Ok(body) => Accepted {
                ok: true,
                body,
                warning,
            }
            .serialize(serializer),
            Reply::Err(error) => Refusal {
                ok: false,
                error,
                warning,
            }
            .serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_have_one_shape_with_ok_first() {
        #[derive(serde::Serialize)]
        struct Body {
            users: u32,
        }
        assert_eq!(
            Reply::Ok(Body { users: 2 }).to_line(),
            b"{\"ok\":true,\"users\":2}\n"
        );
        assert_eq!(
            Reply::<Body>::refuse("no").to_line(),
            b"{\"ok\":false,\"error\":\"no\"}\n"
        );
        assert_eq!(Reply::Ok(()).to_line(), b"{\"ok\":true}\n");
        assert!(Reply::Ok(Body { users: 1 }).is_ok());
        assert!(!Reply::<Body>::refuse("x").is_ok());
        // A warning is the last member (once spliced into the serialised reply by the journal).
        assert_eq!(
            Reply::Ok(Body { users: 1 }).to_line_with_warning(Some("disk \"full\"")),
            b"{\"ok\":true,\"users\":1,\"warning\":\"disk \\\"full\\\"\"}\n"
        );
        assert_eq!(
            Reply::<Body>::refuse("no").to_line_with_warning(Some("w")),
            b"{\"ok\":false,\"error\":\"no\",\"warning\":\"w\"}\n"
        );
        let refused: Reply<()> = Err::<(), _>("bad \"x\"").into();
        assert_eq!(
            refused.to_line(),
            b"{\"ok\":false,\"error\":\"bad \\\"x\\\"\"}\n"
        );
    }
}
