//! tunmcast tools
