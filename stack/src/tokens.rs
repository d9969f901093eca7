//! The event loop's mio tokens, made and read in this one place: every source the loop waits
//! on is a [`Source`], and a token says which.

use mio::Token;

use crate::ids::{Id as _, LinkId, ListenerId};

/// What woke the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The waker: control requests or HTTP queries are waiting.
    Wake,
    /// SIGHUP, SIGINT, SIGTERM or SIGQUIT.
    Signal,
    /// A link's device is readable.
    Link(LinkId),
    /// A listener socket is readable: its client hung up (or wrote, which it should not).
    Listener(ListenerId),
}

const WAKE: usize = 1;
const SIGNAL: usize = 2;
/// Links are `FIRST_LINK + key`, below the listeners.
const FIRST_LINK: usize = 16;
/// Listeners are `FIRST_LISTENER + id`.
const FIRST_LISTENER: usize = 1 << 20;

impl Source {
    /// The token to register the source with.
    pub fn token(self) -> Token {
        Token(match self {
            Source::Wake => WAKE,
            Source::Signal => SIGNAL,
            Source::Link(id) => FIRST_LINK + id.index(),
            Source::Listener(id) => FIRST_LISTENER + id.index(),
        })
    }

    /// The source `token` was registered for; `None` for a token the loop never gives out.
    pub fn of(token: Token) -> Option<Source> {
        match token.0 {
            WAKE => Some(Source::Wake),
            SIGNAL => Some(Source::Signal),
            t if t >= FIRST_LISTENER => {
                Some(Source::Listener(ListenerId::from_index(t - FIRST_LISTENER)))
            }
            t if t >= FIRST_LINK => Some(Source::Link(LinkId::from_index(t - FIRST_LINK))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_comes_back_from_its_token() {
        for source in [
            Source::Wake,
            Source::Signal,
            Source::Link(LinkId::from_index(0)),
            Source::Link(LinkId::from_index(7)),
            Source::Listener(ListenerId::FIRST),
            Source::Listener(ListenerId::from_index(123_456)),
        ] {
            assert_eq!(Source::of(source.token()), Some(source));
        }
        assert_eq!(Source::of(Token(0)), None);
        assert_eq!(Source::of(Token(15)), None);
    }
}
