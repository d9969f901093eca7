//! Counter structs of the daemon, each counter with the text `stats` gives for it (the HELP
//! line of `tunmcastctl stats --prometheus`), written once.

/// A struct of `u64` counters, each with its one-line description, and `described()`.
macro_rules! counters {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field:ident: $help:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Clone)]
        $vis struct $name {
            $(#[doc = $help] pub $field: u64,)*
        }

        impl $name {
            /// Every counter: name, value, what it counts.
            pub fn described(&self) -> Vec<(&'static str, u64, &'static str)> {
                vec![$((stringify!($field), self.$field, $help),)*]
            }

            /// Adds every counter of `other` to this one's.
            // Not every set of counters is ever summed (a host's are not).
            #[allow(dead_code)]
            pub fn add(&mut self, other: &$name) {
                $(self.$field += other.$field;)*
            }
        }
    };
}

pub(crate) use counters;
